// One full pass with the TypeScript SDK 1.x Client over one transport: connect, list tools, run the scenario.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { Recorder, ScenarioStop } from './recorder.mjs';
import { runScenario } from './scenario.mjs';
import { SERVE, childEnv, scratch, startHttp } from './servers.mjs';

async function connect(kind, command, dir) {
  if (kind === 'stdio') {
    const transport = new StdioClientTransport({ command, args: SERVE, env: childEnv(dir), stderr: 'ignore' });
    return { transport, stop: async () => {} };
  }
  const server = await startHttp(command, dir);
  return { transport: new StreamableHTTPClientTransport(server.url), stop: server.stop };
}

/** Run the scenario over `kind` ('stdio' or 'http'); returns the JSON-ready summary for that transport. */
export async function sdkRun(kind, command) {
  const { dir, cleanup } = scratch(kind);
  const started = Date.now();
  const { transport, stop } = await connect(kind, command, dir);
  const client = new Client({ name: 'insights-host-check', version: '1.0.0' });
  let aborted = null;
  let listed = [];
  try {
    await client.connect(transport);
    listed = (await client.listTools()).tools.map((tool) => tool.name).sort();
    const recorder = new Recorder(client, transport);
    try {
      await runScenario(recorder);
    } catch (error) {
      if (!(error instanceof ScenarioStop)) throw error;
      aborted = error.message;
    }
    return { transport: kind, aborted, seconds: (Date.now() - started) / 1000, ...recorder.summary(listed) };
  } finally {
    await client.close().catch(() => {});
    await stop();
    cleanup();
  }
}
