// Calls tools through the TypeScript SDK 1.x `Client` exactly as a host does, and records per tool what happened:
// client-side exceptions (the host's own validation throwing), success calls that came back as errors, and error
// calls that succeeded or whose text the agent could not read.

/** Raised to end a scenario early when a success call it depends on did not succeed. */
export class ScenarioStop extends Error {}

/** The readable text of a tool result: what the agent sees. */
export function textOf(result) {
  return (result?.content ?? [])
    .filter((part) => part.type === 'text')
    .map((part) => part.text)
    .join('\n');
}

function describe(error) {
  return `${error?.name ?? 'Error'}: ${String(error?.message ?? error).slice(0, 300)}`;
}

export class Recorder {
  /** `client` is a connected SDK Client; `transport` the transport it was connected with. */
  constructor(client, transport) {
    this.client = client;
    this.tools = new Map();
    this.lastResult = undefined;
    // Keep a copy of each raw tools/call result before the SDK validates it, so that when the SDK throws the
    // scenario can still read the ids it needs and go on to the next tool (and report every failure in one run).
    const deliver = transport.onmessage;
    transport.onmessage = (message, extra) => {
      if (message?.result && Array.isArray(message.result.content)) this.lastResult = message.result;
      deliver?.(message, extra);
    };
  }

  record(name) {
    if (!this.tools.has(name)) {
      this.tools.set(name, { okCalls: 0, errorCalls: 0, thrown: [], failed: [], unexpected: [] });
    }
    return this.tools.get(name);
  }

  async call(name, args, rec, kind) {
    this.lastResult = undefined;
    try {
      return await this.client.callTool({ name, arguments: args });
    } catch (error) {
      rec.thrown.push(`${kind} call: ${describe(error)}`);
      if (this.lastResult === undefined) throw new ScenarioStop(`${name}: no result (${describe(error)})`);
      return this.lastResult;
    }
  }

  /** A call that must succeed; returns its structured content (or `{text}` for text-only tools). */
  async ok(name, args = {}) {
    const rec = this.record(name);
    rec.okCalls += 1;
    const result = await this.call(name, args, rec, 'success');
    if (result.isError) {
      rec.failed.push(textOf(result).slice(0, 300));
      throw new ScenarioStop(`${name} failed: ${textOf(result).slice(0, 300)}`);
    }
    return result.structuredContent ?? { text: textOf(result) };
  }

  /** A call that must fail with readable text containing `expected` (an error code or phrase). */
  async bad(name, args, expected) {
    const rec = this.record(name);
    rec.errorCalls += 1;
    const result = await this.call(name, args, rec, 'error');
    const text = textOf(result);
    if (!result.isError) rec.unexpected.push(`succeeded: ${text.slice(0, 200)}`);
    else if (!text.includes(expected)) rec.unexpected.push(`text lacks '${expected}': ${text.slice(0, 200)}`);
  }

  /** Per-tool findings for the listed tools; a tool is clean when each kind of call ran and nothing went wrong. */
  summary(listed) {
    const problems = {};
    for (const name of listed) {
      const rec = this.tools.get(name) ?? this.record(name);
      const found = [...rec.thrown, ...rec.failed.map((t) => `success call was an error: ${t}`), ...rec.unexpected];
      if (rec.okCalls === 0) found.push('never called on its happy path');
      if (rec.errorCalls === 0) found.push('never called with a bad argument or unknown id');
      if (found.length) problems[name] = found;
    }
    const thrownBy = listed.filter((name) => this.tools.get(name)?.thrown.length);
    const calls = [...this.tools.values()].reduce((n, r) => n + r.okCalls + r.errorCalls, 0);
    return { tools: listed.length, calls, clientExceptions: thrownBy, problems };
  }
}
