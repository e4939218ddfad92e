// A sample of calls through the MCP Inspector CLI (the pinned version in package.json) over stdio: tools/list, a few
// successful calls and two error calls. Each invocation starts its own server on one shared sandbox database.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { SERVE, childEnv, scratch } from './servers.mjs';

const run = promisify(execFile);
const HOSTS = fileURLToPath(new URL('..', import.meta.url));
const UNKNOWN = '00000000-0000-4000-8000-000000000000';
// Inspector 1.x prints a deprecation notice on every run; it is not part of the answer.
const BANNER = /inspector v1 is deprecated|Upgrade:\s+npx|security fixes only/;

async function inspect(command, env, method, tool, args = {}) {
  const argv = ['--no-install', '@modelcontextprotocol/inspector', '--cli'];
  for (const [key, value] of Object.entries(env)) argv.push('-e', `${key}=${value}`);
  argv.push(command, ...SERVE, '--method', method);
  if (tool) argv.push('--tool-name', tool);
  for (const [key, value] of Object.entries(args)) argv.push('--tool-arg', `${key}=${value}`);
  try {
    const { stdout } = await run('npx', argv, { cwd: HOSTS, timeout: 60_000 });
    const start = stdout.indexOf('{');
    return { exit: 0, output: JSON.parse(stdout.slice(start)) };
  } catch (error) {
    const said = `${error.stdout ?? ''}\n${error.stderr ?? ''}`
      .split('\n')
      .filter((line) => line.trim() && !BANNER.test(line))
      .join(' ');
    return { exit: error.code ?? 1, said: said.slice(-400) };
  }
}

const textOf = (output) => (output?.content ?? []).map((part) => part.text ?? '').join('\n');

/** Run the sample; returns {checks: [{call, ok, detail}], problems: [...]} where problems name the failed calls. */
export async function inspectorRun(command) {
  const { dir, cleanup } = scratch('inspector');
  const env = { INSIGHTS_SANDBOX_DB: childEnv(dir).INSIGHTS_SANDBOX_DB };
  const checks = [];
  const check = (call, reply, expect) => {
    const verdict = reply.exit === 0 ? expect(reply.output) : `inspector exited ${reply.exit}: ${reply.said}`;
    checks.push({ call, ok: verdict === true, detail: verdict === true ? 'ok' : String(verdict) });
  };
  try {
    check('tools/list', await inspect(command, env, 'tools/list'), (out) =>
      out.tools?.length > 80 && out.tools.some((t) => t.name === 'gm_get_cdm') ? true : `tools: ${out.tools?.length}`);
    let itwinId = UNKNOWN;
    check('list_itwins', await inspect(command, env, 'tools/call', 'list_itwins'), (out) => {
      itwinId = out.structuredContent?.iTwins?.[0]?.id ?? UNKNOWN;
      return !out.isError && itwinId !== UNKNOWN ? true : textOf(out);
    });
    let imodelId = UNKNOWN;
    check('list_imodels', await inspect(command, env, 'tools/call', 'list_imodels', { iTwinId: itwinId }), (out) => {
      imodelId = out.structuredContent?.iModels?.[0]?.id ?? UNKNOWN;
      return !out.isError && imodelId !== UNKNOWN ? true : textOf(out);
    });
    check('list_changesets', await inspect(command, env, 'tools/call', 'list_changesets', { iModelId: imodelId }),
      (out) => (!out.isError && Array.isArray(out.structuredContent?.changesets) ? true : textOf(out)));
    check('get_itwin (unknown id)', await inspect(command, env, 'tools/call', 'get_itwin', { iTwinId: UNKNOWN }),
      (out) => (out.isError && textOf(out).includes('iTwinNotFound') ? true : `not a readable error: ${textOf(out)}`));
    check('create_mapping (bad name)',
      await inspect(command, env, 'tools/call', 'create_mapping', { imodelId, mappingName: 'bad name' }),
      (out) => (out.isError && textOf(out).includes('Invalid arguments') ? true : `not a readable error: ${textOf(out)}`));
  } finally {
    cleanup();
  }
  return { checks, problems: checks.filter((c) => !c.ok).map((c) => `${c.call}: ${c.detail}`) };
}
