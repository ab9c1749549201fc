import { AccordError, ErrorCode, isDeviceId } from '@accord/protocol';
import type { CliIo } from './cli.js';
import { parse, port, required } from './cli-args.js';

const DURATION = /^(\d{1,6})(s|m|h|d)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

function duration(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const m = DURATION.exec(value);
  if (m === null) {
    throw new AccordError(
      ErrorCode.CLI_USAGE,
      `${flag} must look like 30m, 24h or 7d, got ${JSON.stringify(value)}`,
    );
  }
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/**
 * `accord relay --data DIR [--host H] [--port P] [--dependency-deadline D] [--await-devices D]`:
 * runs the relay until SIGTERM / SIGINT.
 */
async function relayRun(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    data: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'dependency-deadline': { type: 'string' },
    'await-devices': { type: 'string' },
    'log-level': { type: 'string' },
  });
  const data = required(values.data, '--data');
  const listen = port(values.port, '--port');
  const deadline = duration(values['dependency-deadline'], '--dependency-deadline');
  const awaitDevices = duration(values['await-devices'], '--await-devices');
  const stop = io.stopSignal();
  const { Relay, createRelayLogger } = await import('@accord/relay');
  const relay = await Relay.start({
    data,
    ...(values.host === undefined ? {} : { host: values.host }),
    ...(listen === undefined ? {} : { port: listen }),
    ...(deadline === undefined ? {} : { dependencyDeadlineMs: deadline }),
    ...(awaitDevices === undefined ? {} : { awaitDevicesMs: awaitDevices }),
    logger: createRelayLogger({ level: values['log-level'] ?? 'info', destination: 2 }),
  });
  io.out(JSON.stringify(relay.ready()));
  const signal = await stop;
  io.err(`accord: ${signal}: draining the relay`);
  await relay.stop();
  return 0;
}

/** `accord relay admin-password --data DIR`: reads the new password from stdin (or ACCORD_ADMIN_PASSWORD). */
async function adminPassword(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parse(args, { data: { type: 'string' } });
  const data = required(values.data, '--data');
  const password = process.env['ACCORD_ADMIN_PASSWORD'] ?? (await io.readSecret('New admin password: '));
  const { openRelayFolder, setAdminPassword } = await import('@accord/relay');
  const { layout } = await openRelayFolder(data);
  await setAdminPassword(layout, password);
  io.out(JSON.stringify({ event: 'admin-password-set', data: layout.dir }));
  return 0;
}

/**
 * `accord relay enroll --data DIR --facility ID [--ttl 24h]`: prints the relay's id on the first line
 * and a one-time token alone on the last, for `accord device init --relay-id ID --token -`.
 */
async function enroll(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parse(args, {
    data: { type: 'string' },
    facility: { type: 'string' },
    ttl: { type: 'string' },
  });
  const data = required(values.data, '--data');
  const facility = required(values.facility, '--facility');
  const ttlMs = duration(values.ttl, '--ttl');
  const { openRelayFolder, createEnrollmentToken } = await import('@accord/relay');
  const { layout, key } = await openRelayFolder(data);
  const token = await createEnrollmentToken(layout, facility, ttlMs === undefined ? {} : { ttlMs });
  io.err(
    `accord: relay ${key.deviceId} (first line) and a one-time enrollment token for facility ` +
      `${token.facility} (last line), valid until ${token.expires}. On the tablet: ` +
      `accord device init --data DIR --name NAME --relay ws://HOST:PORT --relay-id ${key.deviceId} --token - ` +
      '(the token on stdin, or in ACCORD_ENROLL_TOKEN)',
  );
  // The id pins the relay at enrollment: a device given it refuses any other relay's answer.
  io.out(key.deviceId);
  io.out(token.token);
  return 0;
}

/** `accord relay revoke --data DIR --device ID`: a running relay applies it within a second. */
async function revoke(args: readonly string[], io: CliIo): Promise<number> {
  const { values } = parse(args, { data: { type: 'string' }, device: { type: 'string' } });
  const data = required(values.data, '--data');
  const device = required(values.device, '--device');
  if (!isDeviceId(device)) {
    throw new AccordError(ErrorCode.CLI_USAGE, `--device must be a device id, got ${JSON.stringify(device)}`);
  }
  const { loadRelayFolder, revokeMember } = await import('@accord/relay');
  const { layout } = await loadRelayFolder(data);
  const result = await revokeMember(layout, device);
  io.out(
    JSON.stringify({
      event: 'revoked',
      device,
      facility: result.facility,
      rosterVersion: result.members.version,
    }),
  );
  return 0;
}

/** Dispatches `accord relay …`. */
export async function relayCommand(args: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'admin-password':
      return adminPassword(rest, io);
    case 'enroll':
      return enroll(rest, io);
    case 'revoke':
      return revoke(rest, io);
    default:
      if (sub !== undefined && !sub.startsWith('-')) {
        throw new AccordError(ErrorCode.CLI_USAGE, `unknown relay subcommand ${JSON.stringify(sub)}`);
      }
      return relayRun(args, io);
  }
}
