#!/usr/bin/env node
// Host check: drive itwin-insights-mcp from hosts we did not write. The TypeScript SDK 1.x Client over stdio and over
// streamable HTTP calls every tool of the `all` profile once successfully and once with a bad argument or unknown id;
// the MCP Inspector CLI runs a sample over stdio. Prints one JSON summary; exits 1 when anything went wrong.
//
// Usage: node check.mjs [--command PATH_TO_itwin-insights-mcp] [--only stdio,http,inspector]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { inspectorRun } from './lib/inspector.mjs';
import { sdkRun } from './lib/sdk_run.mjs';

const { values } = parseArgs({
  options: {
    command: { type: 'string', default: 'itwin-insights-mcp' },
    only: { type: 'string', default: 'stdio,http,inspector' },
  },
});
const parts = values.only.split(',');
const versionOf = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;

const summary = {
  sdk: versionOf('@modelcontextprotocol/sdk'),
  inspector: versionOf('@modelcontextprotocol/inspector'),
  runs: [],
};
for (const kind of ['stdio', 'http']) {
  if (parts.includes(kind)) summary.runs.push(await sdkRun(kind, values.command));
}
if (parts.includes('inspector')) summary.inspectorCli = await inspectorRun(values.command);

summary.ok =
  summary.runs.every((run) => !run.aborted && Object.keys(run.problems).length === 0) &&
  (summary.inspectorCli?.problems.length ?? 0) === 0;
process.stdout.write(`${JSON.stringify(summary, null, 1)}\n`);
process.exitCode = summary.ok ? 0 : 1;
