// `accord sync-centre` against a real device agent (real LevelDB, real WebSockets to a syncing
// fake relay that writes the verdicts): every command, its tables and --json, the API's errors
// (exit 1 with the code), usage errors (exit 2), and the headers every write carries.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asFacilityId, SystemEventType, type EventId } from '@accord/protocol';
import { DeviceAgent, initDevice } from '@accord/device';
import { FakeRelay } from '@accord/device/testing';
import type { DeviceLogApi } from '@accord/log';
import { runCli, type CliIo } from './cli.js';
import { runAccord } from './test-support.js';

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    out: (line) => (out += line + '\n'),
    err: (line) => (err += line + '\n'),
    stopSignal: () => new Promise(() => {}),
    readSecret: () => Promise.resolve(''),
  };
  const code = await runCli(argv, io);
  return { code, out, err };
}

/** Resolves once `check` holds, re-checked whenever the log shows new events. */
function until(log: DeviceLogApi, check: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    if (check()) {
      resolve();
      return;
    }
    const stop = log.onEvents(() => {
      if (!check()) return;
      stop();
      resolve();
    });
  });
}

let dir: string;
let relay: FakeRelay;
let agent: DeviceAgent;
let url: string;
const ids: Record<string, EventId> = {};

async function record(lot: string): Promise<EventId> {
  const res = await fetch(`${url}/api/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      type: 'StockReceived',
      data: { lot, antigen: 'BCG', quantity: 5, expiry: '2030-01-01' },
    }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: EventId }).id;
}

async function reject(id: EventId, code: 422 | 409, rule: string, reason: string): Promise<void> {
  await until(relay.log!, () => relay.log!.get(id) !== undefined);
  await relay.log!.appendSystem({
    type: SystemEventType.Verdict,
    subject: { kind: 'event', id },
    deps: [id],
    data: { target: id, outcome: 'deadletter', code, rule, reason, details: { lot: 'L' }, ruleSet: 'test/1' },
  });
  await until(agent.log, () => agent.log.get(id)?.status === 'deadletter');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-sc-cli-'));
  relay = await FakeRelay.start({ facility: asFacilityId('clinic-1'), sync: true });
  const data = join(dir, 'tablet');
  await initDevice({ data, name: 'Tablet 1', relay: relay.url, token: relay.issueToken() });
  agent = await DeviceAgent.start({ data, rosterPollMs: 20 });
  url = `http://127.0.0.1:${agent.httpPort}`;
  for (const lot of ['L-1', 'L-2', 'L-3', 'L-4']) ids[lot] = await record(lot);
  await reject(ids['L-1']!, 422, 'RULE_EXPIRED_LOT', 'lot L-1 expired on 2026-01-01');
  await reject(ids['L-2']!, 422, 'RULE_NEGATIVE_STOCK', 'lot L-2 would go to -3');
  await reject(ids['L-3']!, 409, 'RULE_SAME_FIELD', 'quantity changed on another tablet');
}, 60_000);

afterAll(async () => {
  await agent.stop();
  await relay.close();
  await rm(dir, { recursive: true, force: true });
});

describe('accord sync-centre: reading', () => {
  it('status: a table with online, relay, needs attention; --json is the API’s status', async () => {
    const table = await cli('sync-centre', '--url', url, 'status');
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/^Device\s+Tablet 1 \(d/m);
    expect(table.out).toMatch(/^Online\s+yes$/m);
    expect(table.out).toMatch(/^Relay\s+connected \(last contact 20/m);
    expect(table.out).toMatch(/^Needs attention\s+3$/m);
    expect(table.out).toMatch(/^Outbox \(this device\)\s+1$/m);
    const json = await cli('sync-centre', '--url', url, 'status', '--json');
    expect(JSON.parse(json.out)).toMatchObject({
      device: agent.deviceId,
      counts: { deadletter: 3 },
      outbox: 1,
    });
  });

  it('outbox: this device’s events without a verdict, with their age', async () => {
    const { code, out } = await cli('sync-centre', '--url', url, 'outbox');
    expect(code).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^Age\s+Type\s+Subject\s+Id$/);
    expect(lines.slice(2)).toEqual([
      expect.stringMatching(new RegExp(`^\\d+ s\\s+StockReceived\\s+lot L-4\\s+${ids['L-4']}$`)),
    ]);
    const json = JSON.parse((await cli('sync-centre', '--url', url, 'outbox', '--json')).out) as unknown[];
    expect(json).toHaveLength(1);
  });

  it('conflicts: open deadletters grouped by code, each with its rule and reason', async () => {
    const { code, out } = await cli('sync-centre', '--url', url, 'conflicts');
    expect(code).toBe(0);
    const groups = out.trimEnd().split('\n\n');
    expect(groups).toHaveLength(2);
    expect(groups[0]).toMatch(
      /^422 — a business rule refused it.*\(2 events\)\nId\s+Type\s+Device\s+Rule\s+Reason\n/,
    );
    expect(groups[0]).toContain('RULE_EXPIRED_LOT');
    expect(groups[0]).toContain('lot L-2 would go to -3');
    expect(groups[1]).toMatch(/^409 — conflicts with another change.*\(1 event\)/);
    expect(groups[1]).toContain(`${ids['L-3']}  StockReceived`);
    expect(groups[1]).toContain('quantity changed on another tablet');
    const json = JSON.parse((await cli('sync-centre', '--url', url, 'conflicts', '--json')).out) as {
      id: string;
    }[];
    expect(json.map((d) => d.id).sort()).toEqual([ids['L-1'], ids['L-2'], ids['L-3']].sort());
  });

  it('inspect: the event, its verdict; an unknown id is the API’s DEVICE_NOT_FOUND, exit 1', async () => {
    const { code, out } = await cli('sync-centre', '--url', url, 'inspect', ids['L-1']!);
    expect(code).toBe(0);
    expect(out).toMatch(/^Status\s+deadletter$/m);
    expect(out).toMatch(/^Subject\s+lot L-1$/m);
    expect(out).toMatch(/^Verdict\s+rejected 422 RULE_EXPIRED_LOT: lot L-1 expired on 2026-01-01$/m);
    // Own events list their data in canonical (sorted) key order, as events from peers do.
    expect(out).toMatch(/^Data\s+\{"antigen":"BCG","expiry":"2030-01-01","lot":"L-1","quantity":5\}$/m);
    const missing = await cli('sync-centre', '--url', url, 'inspect', 'nope');
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/^accord: DEVICE_NOT_FOUND: no event nope$/m);
  });
});

describe('accord sync-centre: acting', () => {
  it('retry: records a RetryRequested; again it is refused with the API’s code; a repeated --idempotency-key answers the first', async () => {
    const first = await cli('sync-centre', '--url', url, 'retry', ids['L-1']!);
    expect(first.code).toBe(0);
    expect(first.out).toMatch(new RegExp(`^Retry recorded \\(\\w+\\): ${ids['L-1']} is pending again`));
    expect(agent.log.get(ids['L-1']!)?.status).toBe('pending');
    const again = await cli('sync-centre', '--url', url, 'retry', ids['L-1']!);
    expect([again.code, again.err]).toEqual([1, expect.stringMatching(/^accord: DEVICE_NOT_DEADLETTER: /)]);

    const keyed = [
      'sync-centre',
      '--url',
      url,
      'retry',
      ids['L-2']!,
      '--idempotency-key',
      'job-42',
      '--json',
    ];
    const a = await cli(...keyed);
    const b = await cli(...keyed);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect((JSON.parse(b.out) as { id: string }).id).toBe((JSON.parse(a.out) as { id: string }).id);
    const retries = agent.log
      .list({ device: agent.deviceId })
      .filter(
        (i) =>
          i.event.type === 'RetryRequested' && (i.event.data as { target: string }).target === ids['L-2'],
      );
    expect(retries).toHaveLength(1);
  });

  it('discard with a reason, then retry-all retries what is left; audit lists it all, newest first', async () => {
    const discard = await cli(
      'sync-centre',
      '--url',
      url,
      'discard',
      ids['L-3']!,
      '--reason',
      'entered twice',
    );
    expect(discard.code).toBe(0);
    expect(discard.out).toContain(`${ids['L-3']} is resolved`);
    expect(agent.log.get(ids['L-3']!)?.status).toBe('resolved');

    await reject(ids['L-4']!, 422, 'RULE_EXPIRED_LOT', 'lot L-4 expired');
    const all = await cli('sync-centre', '--url', url, 'retry-all');
    expect([all.code, all.out]).toEqual([0, 'Retried 1 deadletter.\n']);
    expect(agent.log.get(ids['L-4']!)?.status).toBe('pending');
    const none = await cli('sync-centre', '--url', url, 'retry-all', '--json');
    expect(JSON.parse(none.out)).toEqual({ retried: [], skipped: [] });

    const audit = await cli('sync-centre', '--url', url, 'audit');
    expect(audit.code).toBe(0);
    const lines = audit.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^At\s+Action\s+Target\s+Event\s+Outcome\s+Detail$/);
    expect(audit.out).toMatch(
      new RegExp(`discard\\s+${ids['L-3']}\\s+\\w+\\s+recorded\\s+\\{"reason":"entered twice"\\}`),
    );
    expect(audit.out).toMatch(/retry-all\s+done\s+\{"retried":0,"skipped":0\}/);
    expect(audit.out).toMatch(/retry\s+\w+\s+\w+\s+replayed/);
    const limited = JSON.parse(
      (await cli('sync-centre', '--url', url, 'audit', '--limit', '2', '--json')).out,
    ) as {
      action: string;
    }[];
    expect(limited).toHaveLength(2);
  });
});

describe('accord sync-centre: errors', () => {
  it.each([
    [['sync-centre', 'status'], '--url http://127.0.0.1:PORT'],
    [['sync-centre', '--url', 'ftp://h:1', 'status'], '--url must be an http:// URL'],
    [['sync-centre', '--url', 'not a url', 'status'], '--url must be an http:// URL'],
    [['sync-centre', '--url', 'http://127.0.0.1:1'], 'sync-centre needs a command'],
    [['sync-centre', '--url', 'http://127.0.0.1:1', 'fly'], 'unknown sync-centre command "fly"'],
    [['sync-centre', '--url', 'http://127.0.0.1:1', 'inspect'], 'inspect needs an event id'],
    [['sync-centre', '--url', 'http://127.0.0.1:1', 'status', 'extra'], 'unexpected argument "extra"'],
    [['sync-centre', '--url', 'http://127.0.0.1:1', 'retry', 'a', 'b'], 'unexpected argument "b"'],
    [
      ['sync-centre', '--url', 'http://127.0.0.1:1', 'retry', 'a', '--reason', 'r'],
      '--reason does not apply to retry',
    ],
    [['sync-centre', '--url', 'http://127.0.0.1:1', 'audit', '--limit', '0'], '--limit must be an integer'],
    [
      ['sync-centre', '--url', 'http://127.0.0.1:1', 'audit', '--limit', '5000'],
      '--limit must be an integer',
    ],
    [
      ['sync-centre', '--url', 'http://127.0.0.1:1', 'retry-all', '--idempotency-key', 'a b'],
      '--idempotency-key must',
    ],
    [['sync-centre', '--url', 'http://127.0.0.1:1', 'status', '--colour'], "Unknown option '--colour'"],
  ])('%j is a usage error (exit 2)', async (argv, message) => {
    const { code, err } = await cli(...argv);
    expect(code).toBe(2);
    expect(err).toContain(`accord: CLI_USAGE: ${message}`);
  });

  it.each([
    [['sync-centre', '--url', 'http://127.0.0.1:1', 'resubmit'], 'resubmit needs --from'],
    [
      ['sync-centre', '--url', 'http://127.0.0.1:1', 'resubmit', '--from', '2026-01-01'],
      'resubmit needs --from',
    ],
    [
      ['sync-centre', '--url', 'http://127.0.0.1:1', 'integrity', '--from', '1.1.2026'],
      '--from must be a date',
    ],
    [['sync-centre', '--url', 'http://127.0.0.1:1', 'status', '--to', '2026-01-01'], '--to does not apply'],
    [['sync-centre', '--url', 'http://127.0.0.1:1', 'audit', '--admin'], '--admin does not apply'],
    [['sync-centre', '--url', 'http://127.0.0.1:1', 'resubmit', '--admin-password', 'x'], 'Unknown option'],
  ])('%j is a usage error (exit 2) before any password is asked', async (argv, message) => {
    const { code, err } = await cli(...argv);
    expect(code).toBe(2);
    expect(err).toContain(`accord: CLI_USAGE: ${message}`);
  });

  it('an agent that does not listen is CLI_UNREACHABLE (exit 1); one that answers something else is CLI_BAD_RESPONSE', async () => {
    const server = createServer((_req, res) => res.writeHead(502).end('<html>bad gateway</html>'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const bad = await cli('sync-centre', '--url', `http://127.0.0.1:${port}`, 'status');
    expect([bad.code, bad.err]).toEqual([1, expect.stringMatching(/^accord: CLI_BAD_RESPONSE: .*HTTP 502/)]);
    await new Promise((r) => server.close(r));
    const gone = await cli('sync-centre', '--url', `http://127.0.0.1:${port}`, 'status');
    expect([gone.code, gone.err]).toEqual([
      1,
      expect.stringMatching(/^accord: CLI_UNREACHABLE: .*ECONNREFUSED/),
    ]);
  });
});

describe('accord sync-centre: what a write sends', () => {
  it('declares JSON and sends a fresh Idempotency-Key per invocation, the same one when it asks again after a cut connection', async () => {
    const seen: IncomingHttpHeaders[] = [];
    let cut = false;
    const server = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => {
        if (cut) {
          cut = false;
          req.socket.destroy(); // the answer is lost
          return;
        }
        res
          .writeHead(201, { 'content-type': 'application/json' })
          .end(JSON.stringify({ id: 'E1', event: {} }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect((await cli('sync-centre', '--url', base, 'retry', 'X')).code).toBe(0);
      expect((await cli('sync-centre', '--url', base, 'retry', 'X')).code).toBe(0);
      cut = true;
      expect((await cli('sync-centre', '--url', base, 'discard', 'X')).code).toBe(0);
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(seen).toHaveLength(4);
    for (const h of seen) {
      expect(h['content-type']).toBe('application/json');
      expect(h['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    }
    const keys = seen.map((h) => h['idempotency-key']);
    expect(new Set(keys.slice(0, 3)).size).toBe(3);
    expect(keys[3]).toBe(keys[2]);
  });
});

describe('accord sync-centre as a process', () => {
  it('prints the table and exits 0; an API error exits 1 with its code; a usage error exits 2', async () => {
    const ok = await runAccord(['sync-centre', '--url', url, 'status']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^Needs attention\s+\d+$/m);
    const missing = await runAccord(['sync-centre', '--url', url, 'inspect', 'nope']);
    expect([missing.code, missing.stderr]).toEqual([1, expect.stringContaining('accord: DEVICE_NOT_FOUND:')]);
    const wrong = await runAccord(['sync-centre', 'status']);
    expect([wrong.code, wrong.stderr]).toEqual([2, expect.stringContaining('accord: CLI_USAGE:')]);
  }, 60_000);
});
