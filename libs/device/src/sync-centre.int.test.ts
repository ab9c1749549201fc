// The Sync Centre's API on a real agent: real LevelDB, real WebSockets to a syncing fake relay,
// and restarts over the same data folder (the Idempotency-Key store and the audit must survive).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  asFacilityId,
  isAccordError,
  SystemEventType,
  type EventId,
  type SignedEvent,
} from '@accord/protocol';
import type { DeviceLogApi } from '@accord/log';
import { openLevel } from '@accord/storage-level';
import { DeviceAgent } from './agent.js';
import { initDevice } from './data-folder.js';
import { LevelIdempotencyStore } from './idempotency.js';
import { FakeRelay } from './testing.js';

let dir: string;
const running: DeviceAgent[] = [];
const relays: FakeRelay[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-sc-'));
});
afterEach(async () => {
  for (const a of running.splice(0).reverse()) await a.stop();
  for (const r of relays.splice(0)) await r.close();
  await rm(dir, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  readonly json: Record<string, unknown> & unknown[];
  readonly replayed: string | null;
}

async function api(
  agent: DeviceAgent,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${agent.httpPort}${path}`, {
    method,
    headers: { ...(method === 'POST' ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return {
    status: res.status,
    json: (await res.json()) as Answer['json'],
    replayed: res.headers.get('idempotent-replayed'),
  };
}

/** Resolves once `check` holds, re-checked whenever the log shows new events (no polling). */
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

/** The status events of `GET /api/stream`, awaited one by one. */
async function statusStream(agent: DeviceAgent): Promise<{
  next: () => Promise<Record<string, unknown> | undefined>;
}> {
  const res = await fetch(`http://127.0.0.1:${agent.httpPort}/api/stream`);
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  return {
    next: async () => {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (block.startsWith('event: status') && data !== undefined)
            return JSON.parse(data.slice(6)) as Record<string, unknown>;
          continue;
        }
        const { done, value } = await reader.read();
        if (done) return undefined;
        buffer += decoder.decode(value, { stream: true });
      }
    },
  };
}

const stock = (lot: string) => ({
  type: 'StockReceived',
  data: { lot, antigen: 'BCG', quantity: 5, expiry: '2030-01-01' },
});

async function rejectAll(relay: FakeRelay, ids: readonly EventId[]): Promise<void> {
  for (const id of ids) {
    await relay.log!.appendSystem({
      type: SystemEventType.Verdict,
      subject: { kind: 'event', id },
      deps: [id],
      data: {
        target: id,
        outcome: 'deadletter',
        code: 422,
        rule: 'RULE_EXPIRED_LOT',
        reason: 'the lot expired',
        details: { lot: 'L' },
        ruleSet: 'test/1',
      },
    });
  }
}

describe('Sync Centre API on a running agent', () => {
  it('keeps Idempotency-Key answers and the audit across a restart; streams live status; stops with a stream open', async () => {
    const relay = await FakeRelay.start({ facility: asFacilityId('clinic-1'), sync: true });
    relays.push(relay);
    const data = join(dir, 'a');
    await initDevice({ data, name: 'a', relay: relay.url, token: relay.issueToken() });
    let a = await DeviceAgent.start({ data, rosterPollMs: 20 });
    running.push(a);
    const stream = await statusStream(a);
    expect(await stream.next()).toMatchObject({ needsAttention: 0, outbox: 0 });

    const first = await api(a, 'POST', '/api/events', stock('L-1'), { 'idempotency-key': 'form-1' });
    const second = await api(a, 'POST', '/api/events', stock('L-2'));
    expect([first.status, second.status]).toEqual([201, 201]);
    const ids = [first.json['id'], second.json['id']] as EventId[];
    await until(relay.log!, () => ids.every((id) => relay.log!.get(id) !== undefined));
    await rejectAll(relay, ids);
    // The agent pushes the change: the stream reaches two open deadletters without being asked.
    for (let s = await stream.next(); s?.['needsAttention'] !== 2; s = await stream.next()) {
      expect(s).toBeDefined();
    }

    const retry = await api(a, 'POST', `/api/events/${ids[0]}/retry`, {}, { 'idempotency-key': 'retry-1' });
    const discard = await api(
      a,
      'POST',
      `/api/events/${ids[1]}/discard`,
      { reason: 'entered twice' },
      { 'idempotency-key': 'discard-1' },
    );
    expect([retry.status, discard.status]).toEqual([201, 201]);

    // Stopping does not wait for the open stream: it ends it. Statuses the retry and the discard
    // caused may still be in flight to the client; nothing may come after them.
    await a.stop();
    running.splice(running.indexOf(a), 1);
    let inFlight = 0;
    while ((await stream.next()) !== undefined) expect(++inFlight).toBeLessThan(10);

    a = await DeviceAgent.start({ data, rosterPollMs: 20 });
    running.push(a);
    // The retried event is pending now: without the stored key this would be a 409.
    const retryAgain = await api(a, 'POST', `/api/events/${ids[0]}/retry`, undefined, {
      'idempotency-key': 'retry-1',
    });
    expect([retryAgain.status, retryAgain.replayed, retryAgain.json['id']]).toEqual([
      201,
      'true',
      retry.json['id'],
    ]);
    expect((retryAgain.json['event'] as SignedEvent).type).toBe('RetryRequested');
    const firstAgain = await api(a, 'POST', '/api/events', stock('L-1'), { 'idempotency-key': 'form-1' });
    expect([firstAgain.status, firstAgain.json['id']]).toEqual([201, ids[0]]);
    const reused = await api(
      a,
      'POST',
      `/api/events/${ids[1]}/discard`,
      { reason: 'another reason' },
      { 'idempotency-key': 'discard-1' },
    );
    expect([reused.status, reused.json['code']]).toEqual([422, 'DEVICE_IDEMPOTENCY_MISMATCH']);

    const own = (await api(a, 'GET', `/api/events?device=${a.deviceId}`)).json as unknown as {
      event: SignedEvent;
    }[];
    expect(own.map((e) => e.event.type).sort()).toEqual([
      'DeadletterDiscarded',
      'RetryRequested',
      'StockReceived',
      'StockReceived',
    ]);

    // Derived from the log: the retry and the discard survive the restart; the replays are new.
    const audit = (await api(a, 'GET', '/api/audit')).json as unknown as Record<string, unknown>[];
    expect(audit).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          action: 'retry',
          target: ids[0],
          event: retry.json['id'],
          outcome: 'recorded',
        }),
        expect.objectContaining({
          action: 'discard',
          target: ids[1],
          event: discard.json['id'],
          outcome: 'recorded',
          detail: { reason: 'entered twice' },
        }),
        expect.objectContaining({ action: 'retry', target: ids[0], outcome: 'replayed' }),
        expect.objectContaining({
          action: 'discard',
          outcome: 'refused',
          detail: { status: 422, code: 'DEVICE_IDEMPOTENCY_MISMATCH' },
        }),
      ]),
    );
  }, 60_000);
});

describe('LevelIdempotencyStore', () => {
  it('keeps answers durably, prunes the expired ones when it opens, and never takes a damaged entry for none', async () => {
    const path = join(dir, 'db');
    let now = Date.UTC(2026, 2, 1);
    let db = await openLevel(path);
    let store = await LevelIdempotencyStore.open(db, { clock: () => now });
    await store.put('old', { fingerprint: 'f1', status: 201, result: { event: 'e1' }, at: now });
    now += 6 * 24 * 3600_000;
    await store.put('new', { fingerprint: 'f2', status: 201, result: { event: 'e2' }, at: now });
    await db.close();

    now += 2 * 24 * 3600_000; // 'old' is 8 days old, 'new' 2 days
    db = await openLevel(path);
    store = await LevelIdempotencyStore.open(db, { clock: () => now });
    expect(await store.get('old')).toBeUndefined();
    expect(await store.get('new')).toEqual({
      fingerprint: 'f2',
      status: 201,
      result: { event: 'e2' },
      at: now - 2 * 24 * 3600_000,
    });

    // Flip a byte of the stored entry: the store refuses it rather than forget the key.
    const sub = db.sublevel<Uint8Array, Uint8Array>('idempotency', {
      keyEncoding: 'view',
      valueEncoding: 'view',
    });
    const k = new TextEncoder().encode('new');
    const raw = (await sub.get(k))!;
    raw[raw.length - 2] = raw[raw.length - 2]! ^ 0xff;
    await sub.put(k, raw);
    const err: unknown = await store.get('new').catch((e: unknown) => e);
    expect(isAccordError(err) && err.code).toBe('STORAGE_CORRUPT');
    await db.close();
  });
});
