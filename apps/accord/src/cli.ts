import { ErrorCode, isAccordError, isDeviceId } from '@accord/protocol';
import { parse, port, required, usage } from './cli-args.js';
import { relayCommand } from './relay-cli.js';
import { USAGE } from './usage.js';

/** Where the CLI writes and how it learns that it must stop. */
export interface CliIo {
  /** Writes one line to stdout. */
  readonly out: (line: string) => void;
  /** Writes one line to stderr. */
  readonly err: (line: string) => void;
  /** Resolves when the process is asked to stop (SIGINT / SIGTERM). */
  readonly stopSignal: () => Promise<string>;
  /** Reads one line (a password) from the user without echoing it where possible. */
  readonly readSecret: (prompt: string) => Promise<string>;
  /**
   * Writes text to stderr as it is (no newline added), for a progress bar redrawn in place with
   * `\r`; present only when stderr is a terminal (elsewhere progress goes line by line to `err`).
   */
  readonly progress?: (text: string) => void;
}

function peerUrl(value: string, flag = '--peer'): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    usage(`${flag} must be a ws://HOST:PORT URL, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:')
    usage(`${flag} must be a ws:// or wss:// URL, got ${JSON.stringify(value)}`);
  return value;
}

/**
 * The enrollment token: `--token VALUE`; with `--token -`, one line of stdin; without `--token`,
 * `ACCORD_ENROLL_TOKEN`, else one line of stdin (typed without echo on a terminal). A token on the
 * command line is visible to every user of the machine (`ps`), the other two are not.
 */
async function enrollToken(flag: string | undefined, io: CliIo): Promise<string> {
  if (flag !== undefined && flag !== '-') return flag;
  const env = process.env['ACCORD_ENROLL_TOKEN'];
  const token = (
    flag === undefined && env !== undefined ? env : await io.readSecret('Enrollment token: ')
  ).trim();
  if (token === '')
    usage('no enrollment token: give --token TOKEN, --token - (stdin) or ACCORD_ENROLL_TOKEN');
  return token;
}

async function deviceInit(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    data: { type: 'string' },
    facility: { type: 'string' },
    name: { type: 'string' },
    roster: { type: 'string' },
    relay: { type: 'string' },
    'relay-id': { type: 'string' },
    token: { type: 'string' },
    'time-zone': { type: 'string' },
  });
  if (values.relay === undefined && values.token !== undefined) usage('--token needs --relay');
  if (values.relay === undefined && values['relay-id'] !== undefined) usage('--relay-id needs --relay');
  if (values.relay !== undefined && values.roster !== undefined)
    usage('--roster cannot be used with --relay');
  if (values.relay !== undefined) peerUrl(values.relay, '--relay');
  const relayId = values['relay-id'];
  if (relayId !== undefined && !isDeviceId(relayId))
    usage(`--relay-id must be a relay id (printed by accord relay enroll), got ${JSON.stringify(relayId)}`);
  const data = required(values.data, '--data');
  const name = required(values.name, '--name');
  if (values.relay === undefined) required(values.facility, '--facility');
  const token = values.relay === undefined ? undefined : await enrollToken(values.token, io);
  if (values.relay !== undefined && relayId === undefined) {
    io.err(
      `accord: warning: the relay is not pinned (no --relay-id): whoever answers at ${values.relay} ` +
        'becomes this device’s relay. Pass the id printed by accord relay enroll.',
    );
  }
  // Loaded on demand: `accord --help` and usage errors should not pay for Automerge and LevelDB.
  const { initDevice } = await import('@accord/device');
  const { deviceId, config } = await initDevice({
    data,
    ...(values.relay === undefined || token === undefined ? {} : { relay: values.relay, token }),
    ...(relayId === undefined ? {} : { relayId }),
    ...(values.facility === undefined ? {} : { facility: values.facility }),
    name,
    ...(values.roster === undefined ? {} : { roster: values.roster }),
    ...(values['time-zone'] === undefined ? {} : { timeZone: values['time-zone'] }),
  });
  io.out(
    JSON.stringify({
      event: 'initialized',
      device: deviceId,
      facility: config.facility,
      name: config.name,
      roster: config.roster,
      ...(config.relay === undefined ? {} : { relay: config.relay }),
      ...(config.timeZone === undefined ? {} : { timeZone: config.timeZone }),
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
    'no-relay': { type: 'boolean' },
    relay: { type: 'string' },
  });
  const data = required(values.data, '--data');
  if (values.relay !== undefined) peerUrl(values.relay, '--relay');
  const listen = port(values.listen, '--listen');
  const http = port(values.http, '--http');
  const peers = (values.peer ?? []).map((p) => peerUrl(p));
  const stop = io.stopSignal();
  const { DeviceAgent } = await import('@accord/device');
  const { syncCentrePageOrNothing } = await import('./sync-centre-page.js');
  const assets = await syncCentrePageOrNothing(io.err);
  const agent = await DeviceAgent.start({
    data,
    peers,
    ...(assets === undefined ? {} : { assets }),
    ...(listen === undefined ? {} : { listen }),
    ...(values['listen-host'] === undefined ? {} : { listenHost: values['listen-host'] }),
    ...(http === undefined ? {} : { http }),
    ...(values.roster === undefined ? {} : { roster: values.roster }),
    ...(values['no-relay'] === true ? { dialRelay: false } : {}),
    ...(values.relay === undefined ? {} : { relayUrl: values.relay }),
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
    'port-base': { type: 'string' },
    devices: { type: 'string' },
    'exit-after-ready': { type: 'boolean' },
  });
  const { runDemo, DEMO_PORT_BASE, DEMO_DEFAULT_DEVICES, DEMO_MIN_DEVICES, DEMO_MAX_DEVICES } =
    await import('./demo.js');
  const devices = values.devices === undefined ? DEMO_DEFAULT_DEVICES : Number(values.devices);
  if (!Number.isInteger(devices) || devices < DEMO_MIN_DEVICES || devices > DEMO_MAX_DEVICES)
    usage(`--devices must be ${DEMO_MIN_DEVICES}-${DEMO_MAX_DEVICES}, got ${JSON.stringify(values.devices)}`);
  const portBase = port(values['port-base'], '--port-base') ?? DEMO_PORT_BASE;
  // The layout needs fixed ports up to P+10+N: 0 (any port) would make nothing bookmarkable.
  if (portBase < 1 || portBase + 10 + devices > 65535)
    usage(`--port-base must be 1-${65535 - 10 - devices} (the demo uses ports P to P+${10 + devices})`);
  return runDemo(
    {
      data: values.data ?? './data/demo',
      exitAfterReady: values['exit-after-ready'] === true,
      portBase,
      devices,
    },
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
      case 'relay':
        return await relayCommand(rest, io);
      case 'demo':
        return await demo(rest, io);
      case 'sim': {
        const { simCommand } = await import('./sim-cli.js');
        return await simCommand(rest, io);
      }
      case 'sync-centre': {
        const { syncCentreCommand } = await import('./sync-centre-cli.js');
        return await syncCentreCommand(rest, io);
      }
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
