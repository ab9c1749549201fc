import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AccordError, ErrorCode, isAccordError } from '@accord/protocol';
import { USAGE } from './usage.js';

/** Where the CLI writes and how it learns that it must stop. */
export interface CliIo {
  /** Writes one line to stdout. */
  readonly out: (line: string) => void;
  /** Writes one line to stderr. */
  readonly err: (line: string) => void;
  /** Resolves when the process is asked to stop (SIGINT / SIGTERM). */
  readonly stopSignal: () => Promise<string>;
}

/** A usage error: exit code 2, `CLI_USAGE` on stderr. */
function usage(message: string): never {
  throw new AccordError(ErrorCode.CLI_USAGE, message);
}

function parse<T extends NonNullable<ParseArgsConfig['options']>>(
  args: readonly string[],
  options: T,
  positionals = false,
) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: positionals });
  } catch (e) {
    usage(e instanceof Error ? e.message : String(e));
  }
}

function port(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535)
    usage(`${flag} must be a port number 0-65535, got ${JSON.stringify(value)}`);
  return Number(value);
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') usage(`${flag} is required`);
  return value;
}

function peerUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    usage(`--peer must be a ws://HOST:PORT URL, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:')
    usage(`--peer must be a ws:// or wss:// URL, got ${JSON.stringify(value)}`);
  return value;
}

async function deviceInit(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    data: { type: 'string' },
    facility: { type: 'string' },
    name: { type: 'string' },
    roster: { type: 'string' },
  });
  // Loaded on demand: `accord --help` and usage errors should not pay for Automerge and LevelDB.
  const { initDevice } = await import('@accord/device');
  const { deviceId, config } = await initDevice({
    data: required(values.data, '--data'),
    facility: required(values.facility, '--facility'),
    name: required(values.name, '--name'),
    ...(values.roster === undefined ? {} : { roster: values.roster }),
  });
  io.out(
    JSON.stringify({
      event: 'initialized',
      device: deviceId,
      facility: config.facility,
      name: config.name,
      roster: config.roster,
    }),
  );
  return 0;
}

async function deviceRun(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    data: { type: 'string' },
    listen: { type: 'string' },
    'listen-host': { type: 'string' },
    peer: { type: 'string', multiple: true },
    http: { type: 'string' },
    roster: { type: 'string' },
  });
  const data = required(values.data, '--data');
  const listen = port(values.listen, '--listen');
  const http = port(values.http, '--http');
  const peers = (values.peer ?? []).map(peerUrl);
  const stop = io.stopSignal();
  const { DeviceAgent } = await import('@accord/device');
  const agent = await DeviceAgent.start({
    data,
    peers,
    ...(listen === undefined ? {} : { listen }),
    ...(values['listen-host'] === undefined ? {} : { listenHost: values['listen-host'] }),
    ...(http === undefined ? {} : { http }),
    ...(values.roster === undefined ? {} : { roster: values.roster }),
    onDiagnostic: (message) => io.err(`accord: ${message}`),
  });
  io.out(JSON.stringify(agent.ready()));
  const signal = await stop;
  io.err(`accord: ${signal}: stopping ${agent.name}`);
  await agent.stop();
  return 0;
}

async function demo(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    data: { type: 'string' },
    'exit-after-ready': { type: 'boolean' },
  });
  const { runDemo } = await import('./demo.js');
  return runDemo(
    { data: values.data ?? './data/demo', exitAfterReady: values['exit-after-ready'] === true },
    io,
  );
}

/**
 * Runs the `accord` command line with `argv` (without node and script) and returns the exit code.
 *
 * @remarks 0 success, 1 operational error (`accord: CODE: message` on stderr), 2 usage error
 * (`CLI_USAGE`). Long-running commands return after `io.stopSignal()` resolves and they stopped cleanly.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const [command, ...rest] = argv;
    if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
      if (command === 'help' && rest.length > 0) usage(`help takes no arguments`);
      io.out(USAGE);
      return 0;
    }
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(USAGE);
      return 0;
    }
    switch (command) {
      case 'device': {
        const [sub, ...subArgs] = rest;
        if (sub === 'init') return await deviceInit(subArgs, io);
        if (sub === 'run') return await deviceRun(subArgs, io);
        usage(
          sub === undefined
            ? 'device needs a subcommand: init or run'
            : `unknown device subcommand ${JSON.stringify(sub)}`,
        );
      }
      case 'demo':
        return await demo(rest, io);
      default:
        usage(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (e) {
    if (isAccordError(e, ErrorCode.CLI_USAGE)) {
      io.err(`accord: ${e.code}: ${e.message}`);
      io.err('Run "accord --help" for usage.');
      return 2;
    }
    if (isAccordError(e)) {
      io.err(`accord: ${e.code}: ${e.message}`);
      return 1;
    }
    io.err(`accord: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return 1;
  }
}
