// Enrollment through the command line pins the relay: `accord relay enroll` prints the relay's id
// with the token, `accord device init --relay-id` refuses any other relay, and the token can come
// from stdin or the environment instead of the command line (where `ps` shows it).
import { readdir } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { agentWorkspace, RelayProcess, runAccord } from './test-support.js';

const FACILITY = 'clinic-enroll';
const ws = agentWorkspace('accord-relay-enroll-');
const relays: RelayProcess[] = [];
afterAll(async () => {
  await Promise.all(relays.map((r) => r.stop('SIGKILL')));
});

/** `accord relay enroll`: the relay id (first line of stdout) and the token (last line). */
async function enroll(relay: RelayProcess): Promise<{ relayId: string; token: string }> {
  const r = await runAccord(['relay', 'enroll', '--data', relay.data, '--facility', FACILITY]);
  expect(r.code, r.stderr).toBe(0);
  const lines = r.stdout.trim().split('\n');
  expect(lines).toHaveLength(2);
  return { relayId: lines[0]!, token: lines[1]! };
}

/** The folder's entries, or none when it does not exist. */
async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

describe('accord device init with a relay', () => {
  it('refuses a relay that answers with another id than --relay-id, writing nothing; reads the token from stdin or ACCORD_ENROLL_TOKEN', async () => {
    const relay = await RelayProcess.start(ws.path('relay'), { logLevel: 'warn' });
    relays.push(relay);
    const impostor = await RelayProcess.start(ws.path('impostor'), { logLevel: 'warn' });
    relays.push(impostor);
    const { relayId, token } = await enroll(relay);
    expect(relayId).toBe(relay.id);

    // Whoever answers at the address given (a rogue relay on the LAN) is not the relay named.
    const rogueToken = (await enroll(impostor)).token;
    const wrong = await runAccord([
      'device',
      'init',
      '--data',
      ws.path('tab-wrong'),
      '--name',
      'Tablet',
      '--relay',
      impostor.url,
      '--relay-id',
      relayId,
      '--token',
      rogueToken,
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('DEVICE_ENROLL_FAILED');
    expect(wrong.stderr).toContain(relayId);
    expect(await entries(ws.path('tab-wrong'))).toEqual([]);

    const init = (data: string, tokenArgs: string[], opts: Parameters<typeof runAccord>[1] = {}) =>
      runAccord(
        [
          'device',
          'init',
          '--data',
          data,
          '--name',
          'Tablet',
          '--relay',
          relay.url,
          '--relay-id',
          relayId,
          ...tokenArgs,
        ],
        opts,
      );
    // `--token -`: the token on stdin.
    const fromStdin = await init(ws.path('tab-stdin'), ['--token', '-'], { input: `${token}\n` });
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    expect(JSON.parse(fromStdin.stdout)).toMatchObject({ event: 'initialized', relay: { id: relayId } });
    // No --token: the environment, else stdin.
    const second = await enroll(relay);
    const fromEnv = await init(ws.path('tab-env'), [], { env: { ACCORD_ENROLL_TOKEN: second.token } });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    const third = await enroll(relay);
    const piped = await init(ws.path('tab-piped'), [], { input: third.token });
    expect(piped.code, piped.stderr).toBe(0);
    // Nothing on stdin and no token anywhere: a usage error, nothing written.
    const none = await init(ws.path('tab-none'), [], { input: '' });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('CLI_USAGE');
    expect(await entries(ws.path('tab-none'))).toEqual([]);
  });
});
