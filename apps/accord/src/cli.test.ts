import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli, type CliIo } from './cli.js';
import { runAccord } from './test-support.js';

/** Runs the CLI in this process, capturing its output; long-running commands are stopped at once. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    out: (line) => (out += line + '\n'),
    err: (line) => (err += line + '\n'),
    stopSignal: () => Promise.resolve('SIGTERM'),
    readSecret: () => Promise.resolve('correct horse battery'),
  };
  const code = await runCli(argv, io);
  return { code, out, err };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-cli-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('help', () => {
  it.each([[[]], [['help']], [['--help']], [['-h']], [['device', '--help']]])(
    '%j prints usage naming every command',
    async (argv) => {
      const { code, out, err } = await cli(...argv);
      expect(code).toBe(0);
      expect(err).toBe('');
      for (const command of [
        'accord help',
        'accord device init',
        'accord device run',
        'accord demo',
        'accord sync-centre',
        'accord sim',
        'accord sim sweep',
        'accord sim report',
        '--exit-after-ready',
        '--peer',
        '--roster',
      ]) {
        expect(out).toContain(command);
      }
    },
  );
});

describe('usage errors', () => {
  it.each([
    [['bogus'], 'unknown command'],
    [['device'], 'subcommand'],
    [['device', 'fly'], 'unknown device subcommand'],
    [
      ['device', 'init', '--data', 'x', '--facility', 'f', '--name', 'n', '--colour', 'red'],
      "Unknown option '--colour'",
    ],
    [['device', 'init', '--facility', 'f', '--name', 'n'], '--data is required'],
    [['device', 'init', '--data'], "Option '--data <value>' argument missing"],
    [['device', 'run', '--data', 'x', '--http', 'eighty'], '--http must be a port'],
    [['device', 'run', '--data', 'x', '--listen', '70000'], '--listen must be a port'],
    [['device', 'run', '--data', 'x', '--peer', 'http://h:1'], '--peer must be a ws://'],
    [['device', 'run', '--data', 'x', 'extra'], 'positional'],
    [['demo', '--exit-after-ready=yes'], 'exit-after-ready'],
    [['help', 'me'], 'help takes no arguments'],
    [['device', 'init', '--data', 'x', '--name', 'n', '--token', 't'], '--token needs --relay'],
    [
      ['device', 'init', '--data', 'x', '--facility', 'f', '--name', 'n', '--relay-id', 'd'],
      '--relay-id needs --relay',
    ],
    [
      [
        'device',
        'init',
        '--data',
        'x',
        '--name',
        'n',
        '--relay',
        'ws://h:1',
        '--relay-id',
        'relay-1',
        '--token',
        't',
      ],
      '--relay-id must be a relay id',
    ],
    [
      ['device', 'init', '--data', 'x', '--name', 'n', '--relay', 'http://h:1', '--token', 't'],
      '--relay must be a ws://',
    ],
    [['relay', 'fly'], 'unknown relay subcommand'],
    [['relay', '--data', 'x', '--await-devices', 'soon'], '--await-devices must look like'],
    [['relay', 'enroll', '--data', 'x', '--facility', 'f', '--ttl', 'forever'], '--ttl must look like'],
    [['relay', 'revoke', '--data', 'x', '--device', 'not-a-device'], '--device must be a device id'],
  ])('%j exits 2 with CLI_USAGE', async (argv, message) => {
    const { code, out, err } = await cli(...argv);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toMatch(/^accord: CLI_USAGE: /);
    expect(err).toContain(message);
  });
});

describe('device init', () => {
  it('creates key.json with mode 0600, prints the device, and refuses re-init with exit 1', async () => {
    const data = join(dir, 'tablet');
    const first = await cli(
      'device',
      'init',
      '--data',
      data,
      '--facility',
      'clinic-1',
      '--name',
      'Front desk',
    );
    expect(first.code).toBe(0);
    const line = JSON.parse(first.out) as { event: string; device: string; roster: string };
    expect(line).toMatchObject({
      event: 'initialized',
      facility: 'clinic-1',
      name: 'Front desk',
      roster: join(data, 'roster.json'),
    });
    expect(line.device).toMatch(/^d[A-Za-z0-9_-]{43}$/);
    expect((await stat(join(data, 'key.json'))).mode & 0o777).toBe(0o600);
    const again = await cli('device', 'init', '--data', data, '--facility', 'clinic-1', '--name', 'Other');
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/^accord: DEVICE_ALREADY_INITIALIZED: /);
  });

  it('shares a roster file given with --roster and reports a bad facility', async () => {
    const roster = join(dir, 'roster.json');
    expect(
      (
        await cli(
          'device',
          'init',
          '--data',
          join(dir, 'a'),
          '--facility',
          'c',
          '--name',
          'a',
          '--roster',
          roster,
        )
      ).code,
    ).toBe(0);
    const bad = await cli(
      'device',
      'init',
      '--data',
      join(dir, 'b'),
      '--facility',
      'other',
      '--name',
      'b',
      '--roster',
      roster,
    );
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('DEVICE_ROSTER_INVALID');
    const badId = await cli(
      'device',
      'init',
      '--data',
      join(dir, 'c'),
      '--facility',
      'no spaces',
      '--name',
      'c',
    );
    expect(badId.err).toContain('DEVICE_BAD_REQUEST');
  });

  it('device run refuses an uninitialized folder with exit 1', async () => {
    const { code, err } = await cli('device', 'run', '--data', join(dir, 'nothing'));
    expect(code).toBe(1);
    expect(err).toContain('DEVICE_NOT_INITIALIZED');
  });
});

describe('relay admin commands', () => {
  it('sets the admin password, prints a one-time token alone on the last line, and revokes by id', async () => {
    const data = join(dir, 'relay');
    const set = await cli('relay', 'admin-password', '--data', data);
    expect(set.code, set.err).toBe(0);
    const { openRelayFolder, verifyAdminPassword, readMembers, enrollWithToken } =
      await import('@accord/relay');
    const { layout } = await openRelayFolder(data);
    expect(await verifyAdminPassword(layout, 'correct horse battery')).toBe(true);
    expect(await verifyAdminPassword(layout, 'wrong horse battery')).toBe(false);

    const enroll = await cli('relay', 'enroll', '--data', data, '--facility', 'clinic-9', '--ttl', '2h');
    expect(enroll.code, enroll.err).toBe(0);
    const token = enroll.out.trim().split('\n').at(-1)!;
    expect(token).toMatch(/^acc1\.[A-Za-z0-9_-]{43}$/);
    const { generateDeviceKey } = await import('@accord/protocol');
    const key = await generateDeviceKey();
    await enrollWithToken(layout, { token, device: key.deviceId, name: 'Tablet' });

    const revoke = await cli('relay', 'revoke', '--data', data, '--device', key.deviceId);
    expect(revoke.code, revoke.err).toBe(0);
    expect(JSON.parse(revoke.out)).toMatchObject({
      event: 'revoked',
      device: key.deviceId,
      facility: 'clinic-9',
    });
    expect((await readMembers(layout, 'clinic-9' as never))?.devices[0]?.revoked).toBe(true);

    const unknown = await cli(
      'relay',
      'revoke',
      '--data',
      data,
      '--device',
      (await generateDeviceKey()).deviceId,
    );
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('RELAY_UNKNOWN_DEVICE');
  });
});

describe('the accord process', () => {
  it('exits 2 with CLI_USAGE on stderr for a bad flag, 0 with usage for --help', async () => {
    const bad = await runAccord(['demo', '--nope']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('CLI_USAGE');
    const help = await runAccord(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('accord device run');
  });
});
