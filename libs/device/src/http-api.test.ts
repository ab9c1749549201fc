import { createHash } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AccordError,
  ErrorCode,
  asDeviceId,
  asFacilityId,
  formatHlc,
  newEventId,
  SystemEventType,
  type EventId,
  type JsonValue,
  type EventEnvelope,
  type SignedEvent,
  type VerdictData,
} from '@accord/protocol';
import { makeTestDevice, sampleEnvelope, type TestDevice } from '@accord/protocol/testing';
import type {
  AppendResult,
  DeviceLogApi,
  Draft,
  EventInfo,
  EventPlace,
  EventsListener,
  IntegrityReport,
  LogCounts,
  OwnHistory,
  SecurityIncident,
  SystemDraft,
  Withheld,
} from '@accord/log';
import type { EventStatus, Projection } from '@accord/domain';
import { HttpApi, type HttpApiOptions, type NetworkControl, type PeerStatus } from './http-api.js';

const DEVICE = sampleEnvelope().device;
const FACILITY = asFacilityId('clinic-1');
const NOW = Date.UTC(2026, 2, 14, 9, 30);

/** A deferred promise, to hold an append open while the test looks at the API. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Calls made to the stub projection, to check that routes pass the right arguments. */
type ProjectionCall = [method: string, ...args: unknown[]];

/**
 * An in-memory stand-in for the device log (the real one is `@accord/log`): events are kept
 * in a map, own appends are `pending`, and the test steers failures, warnings, gates and holes.
 * `feed` makes events visible as a sync would (listeners see them); resolutions change their
 * target's status the way the real log classifies them.
 */
class FakeLog implements DeviceLogApi {
  readonly deviceId = DEVICE;
  readonly facility = FACILITY;
  readonly events = new Map<string, EventInfo>();
  readonly projectionCalls: ProjectionCall[] = [];
  holes: IntegrityReport['holes'] = [];
  held: Withheld[] = [];
  /** When set, append waits for it (after signalling `appendEntered`). */
  gate: Promise<void> | undefined;
  appendEntered = deferred();
  appendError: Error | undefined;
  appended = 0;
  readonly systemDrafts: SystemDraft[] = [];
  /** Every visible event, verdicts included (what `visibleEvents` yields). */
  readonly visible: SignedEvent[] = [];
  readonly #listeners = new Set<EventsListener>();
  #seq = 0;

  get repo(): never {
    throw new Error('the fake log has no repo');
  }

  async append(draft: Draft): Promise<AppendResult> {
    this.appendEntered.resolve();
    if (this.gate !== undefined) await this.gate;
    if (this.appendError !== undefined) throw this.appendError;
    this.#seq++;
    const event: SignedEvent = {
      ...sampleEnvelope({
        id: newEventId(NOW + this.#seq),
        seq: this.#seq,
        hlc: formatHlc(NOW + 1000 * this.#seq, 0),
        type: draft.type,
        data: draft.data as JsonValue,
      }),
      ...(draft.supersedes === undefined ? {} : { supersedes: draft.supersedes }),
      sig: 'fake',
    };
    this.events.set(event.id, { event, status: 'pending' });
    this.visible.push(event);
    this.appended++;
    if (draft.supersedes !== undefined) this.#resolved(draft.supersedes, event.id);
    const warn = (draft.data as { warn?: unknown } | null)?.warn;
    if (typeof warn === 'string') {
      return {
        event,
        warning: {
          outcome: 'deadletter',
          code: 422,
          rule: warn,
          reason: 'stock would go negative',
          details: {},
        } as unknown as NonNullable<AppendResult['warning']>,
      };
    }
    return { event };
  }
  async appendSystem(draft: SystemDraft): Promise<SignedEvent> {
    this.appendEntered.resolve();
    if (this.gate !== undefined) await this.gate;
    if (this.appendError !== undefined) throw this.appendError;
    this.systemDrafts.push(draft);
    this.#seq++;
    const event: SignedEvent = {
      ...sampleEnvelope({
        id: newEventId(NOW + this.#seq),
        seq: this.#seq,
        hlc: formatHlc(NOW + 1000 * this.#seq, 0),
        type: draft.type,
        subject: draft.subject,
        deps: draft.deps ?? [],
        data: draft.data,
      }),
      sig: 'fake',
    };
    this.events.set(event.id, { event, status: 'pending' });
    this.visible.push(event);
    const target = (draft.data as { target: EventId }).target;
    const info = this.events.get(target);
    if (draft.type === SystemEventType.RetryRequested && info !== undefined)
      this.events.set(target, { ...info, status: 'pending' });
    if (draft.type === SystemEventType.DeadletterDiscarded) this.#resolved(target, event.id);
    return event;
  }
  #resolved(target: EventId, by: EventId): void {
    const info = this.events.get(target);
    if (info !== undefined) this.events.set(target, { ...info, status: 'resolved', resolvedBy: by });
  }
  /** Makes events visible (as a sync would): stores their infos and tells the listeners. */
  feed(infos: readonly EventInfo[], visible: readonly SignedEvent[] = infos.map((i) => i.event)): void {
    for (const info of infos) this.events.set(info.event.id, info);
    this.visible.push(...visible);
    for (const listener of this.#listeners) listener(visible);
  }
  visibleEvents(): IterableIterator<SignedEvent> {
    return this.visible.values();
  }
  onEvents(listener: EventsListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  get listenerCount(): number {
    return this.#listeners.size;
  }
  ownHistory(): OwnHistory {
    return { assigned: this.#seq, behind: false };
  }
  get(id: EventId): EventInfo | undefined {
    return this.events.get(id);
  }
  locate(id: EventId): EventPlace | undefined {
    const event = this.events.get(id)?.event;
    return event === undefined ? undefined : { device: event.device, seq: event.seq };
  }
  list(filter: { status?: EventStatus; device?: string } = {}): EventInfo[] {
    return [...this.events.values()].filter(
      (e) =>
        (filter.status === undefined || e.status === filter.status) &&
        (filter.device === undefined || e.event.device === filter.device),
    );
  }
  outbox(): EventInfo[] {
    return this.list({ status: 'pending' });
  }
  counts(): LogCounts {
    const counts = { total: 0, pending: 0, accepted: 0, deadletter: 0, resolved: 0, outbox: 0 };
    for (const info of this.events.values()) {
      counts.total++;
      counts[info.status]++;
    }
    counts.outbox = counts.pending;
    return counts;
  }
  tentative(): Projection {
    const calls = this.projectionCalls;
    const view =
      (name: string, result: unknown) =>
      (...args: unknown[]) => {
        calls.push([name, ...args]);
        return result;
      };
    return {
      patients: view('patients', [{ id: 'p-1', givenName: 'Ada' }]),
      patient: (id: string) => {
        calls.push(['patient', id]);
        return id === 'p-1' ? { id: 'p-1', givenName: 'Ada' } : undefined;
      },
      findPatients: view('findPatients', { total: 7, patients: [{ id: 'p-1', givenName: 'Ada' }] }),
      stock: view('stock', { lots: [] }),
      queue: view('queue', { entries: [] }),
      appointments: view('appointments', { items: [] }),
      counters: view('counters', { patients: 1 }),
    } as unknown as Projection;
  }
  confirmed(): Projection {
    return this.tentative();
  }
  integrity(): IntegrityReport {
    return {
      holes: this.holes,
      corrupt: [],
      incidents: 0,
      detectedAtStart: { corruptEvents: 0, corruptChunks: 0 },
    };
  }
  withheld(): Withheld[] {
    return this.held;
  }
  incidents(): readonly SecurityIncident[] {
    return [];
  }
  rosterChanged(): void {}
  addNetworkAdapter(): void {}
  heads(): Record<string, readonly string[]> {
    return { root: ['h1'] };
  }
  async close(): Promise<void> {}
}

class FakeNetwork implements NetworkControl {
  online = true;
  toggles: boolean[] = [];
  /** The relay link's entry, when the test wants one. */
  relayPeer: PeerStatus | undefined;
  setOnline(online: boolean): void {
    this.online = online;
    this.toggles.push(online);
  }
  peers(): readonly PeerStatus[] {
    return [
      { peer: 'dpeer', connected: this.online, lastContact: '2026-03-14T09:29:00.000Z' },
      ...(this.relayPeer === undefined ? [] : [this.relayPeer]),
    ];
  }
}

const RELAY_URL = 'ws://relay.test:7400';
/** The relay of the API under test (and a device that is not it, to sign forged verdicts). */
let relay: TestDevice;
let stranger: TestDevice;
beforeAll(async () => {
  relay = await makeTestDevice();
  stranger = await makeTestDevice();
});

let log: FakeLog;
let network: FakeNetwork;
let api: HttpApi;
let base: string;

/** The API's wall clock (the audit's times): NOW unless a test moves it. */
let now = NOW;

async function start(
  maxBodyBytes?: number,
  setup: { log?: FakeLog; relay?: boolean; options?: Partial<HttpApiOptions> } = {},
): Promise<void> {
  log = setup.log ?? new FakeLog();
  network = new FakeNetwork();
  now = NOW;
  api = await HttpApi.listen({
    ...setup.options,
    log,
    network,
    identity: { device: DEVICE, name: 'Front desk', facility: FACILITY },
    clock: () => now,
    ...(maxBodyBytes === undefined ? {} : { maxBodyBytes }),
    ...(setup.relay === false ? {} : { relay: { id: relay.deviceId, url: RELAY_URL } }),
  });
  base = `http://127.0.0.1:${api.port}`;
}

beforeEach(() => start());

let verdictSeq = 0;
/** A relay statement (signed by `by`) at minute `minute` of the test day. */
function relayEvent(
  parts: Pick<EventEnvelope, 'type' | 'subject' | 'deps' | 'data'>,
  minute: number,
  by: TestDevice = relay,
): Promise<SignedEvent> {
  verdictSeq++;
  return by.sign(
    sampleEnvelope({
      id: newEventId(NOW + 60_000 * minute, new Uint8Array(10).fill(verdictSeq)),
      seq: verdictSeq,
      hlc: formatHlc(NOW + 60_000 * minute, 0),
      ...parts,
    }),
  );
}

/** A verdict about `target`, signed by `by` (default: the relay), at minute `minute` of the test day. */
function verdict(
  target: EventId,
  data: Omit<VerdictData, 'target' | 'ruleSet'> & Record<string, unknown>,
  minute: number,
  by: TestDevice = relay,
): Promise<SignedEvent> {
  const type = SystemEventType.Verdict;
  const payload = { target, ruleSet: 'rules/1', ...data } as unknown as JsonValue;
  return relayEvent(
    { type, subject: { kind: 'event', id: target }, deps: [target], data: payload },
    minute,
    by,
  );
}

/** The relay's `AcceptedVerdicts` at minute `minute`, accepting `targets` from `firstSeq` on. */
function acceptedVerdicts(
  targets: readonly EventId[],
  firstSeq: number,
  minute: number,
): Promise<SignedEvent> {
  const data = { ruleSet: 'rules/1', firstSeq, targets: [...targets] };
  return relayEvent(
    { type: SystemEventType.AcceptedVerdicts, subject: { kind: 'verdicts', id: 'f1' }, deps: [], data },
    minute,
  );
}

/** A device event (by another tablet) at minute `minute`, with the given status and verdict. */
function foreignEvent(n: number, minute: number): SignedEvent {
  return {
    ...sampleEnvelope({
      id: newEventId(NOW + 60_000 * minute, new Uint8Array(10).fill(100 + n)),
      seq: n,
      hlc: formatHlc(NOW + 60_000 * minute, 0),
      type: 'StockConsumed',
      subject: { kind: 'lot', id: `L-${n}` },
      data: { lot: `L-${n}`, quantity: 5 },
    }),
    sig: 'fake',
  };
}

const rejection = (rule: string, code: 422 | 409 | 404 = 422) => ({
  outcome: 'deadletter' as const,
  code,
  rule,
  reason: `rejected by ${rule}`,
  details: { balance: 2, requested: 5 },
});

/** Feeds a deadlettered event (and its verdict) into the fake log; returns both. */
async function deadletter(
  n: number,
  minute: number,
  rule = 'RULE_NEGATIVE_STOCK',
): Promise<{ event: SignedEvent; verdict: SignedEvent }> {
  const event = foreignEvent(n, minute);
  const v = await verdict(event.id, rejection(rule), minute + 1);
  log.feed([{ event, status: 'deadletter', verdict: v }], [event, v]);
  return { event, verdict: v };
}
afterEach(() => api.close());

async function call(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> & unknown[] }> {
  // Writes are declared JSON, as the agent requires (what a non-JSON write gets is tested apart).
  const init: RequestInit =
    method === 'POST' ? { method, headers: { 'content-type': 'application/json' } } : { method };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(base + path, init);
  expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
  return { status: res.status, json: (await res.json()) as Record<string, unknown> & unknown[] };
}

/** A raw HTTP/1.1 request without a Content-Length, its body written in chunks. */
function chunkedPost(path: string, chunks: readonly Buffer[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      base + path,
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe('GET /api/status', () => {
  it('reports identity, counts, pending, peers, integrity and the online flag', async () => {
    await call('POST', '/api/events', { type: 'PatientRegistered', data: { n: 1 } });
    const { status, json } = await call('GET', '/api/status');
    expect(status).toBe(200);
    expect(json).toMatchObject({
      device: DEVICE,
      name: 'Front desk',
      facility: FACILITY,
      online: true,
      counts: { total: 1, pending: 1, outbox: 1 },
      pending: 1,
      peers: [{ peer: 'dpeer', connected: true, lastContact: '2026-03-14T09:29:00.000Z' }],
      integrity: { holes: [], corrupt: [], incidents: 0 },
      heads: { root: ['h1'] },
    });
  });
});

describe('POST /api/events', () => {
  it('answers 201 with the durable event, which GET /api/events/:id then returns', async () => {
    const { status, json } = await call('POST', '/api/events', {
      type: 'PatientRegistered',
      data: { givenName: 'Ada' },
    });
    expect(status).toBe(201);
    const id = json['id'] as string;
    expect(log.events.has(id)).toBe(true);
    expect(json['event']).toMatchObject({ id, type: 'PatientRegistered', data: { givenName: 'Ada' } });
    expect(json).not.toHaveProperty('warning');
    const got = await call('GET', `/api/events/${id}`);
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ status: 'pending', event: { id } });
  });

  it('passes supersedes (an amend of a deadletter) through to the log', async () => {
    const { event } = await deadletter(1, 1);
    const { status, json } = await call('POST', '/api/events', {
      type: 'StockConsumed',
      data: { lot: 'L-1', quantity: 2 },
      supersedes: event.id,
    });
    expect(status).toBe(201);
    expect(json['event']).toMatchObject({ supersedes: event.id });
    expect(log.get(event.id)).toMatchObject({ status: 'resolved', resolvedBy: json['id'] });
  });

  it('carries a warning from the local rules but still records the event', async () => {
    const { status, json } = await call('POST', '/api/events', {
      type: 'StockConsumed',
      data: { warn: 'RULE_NEGATIVE_STOCK' },
    });
    expect(status).toBe(201);
    expect(json['warning']).toMatchObject({ outcome: 'deadletter', code: 422, rule: 'RULE_NEGATIVE_STOCK' });
    expect(log.appended).toBe(1);
  });

  it('answers only after append resolved', async () => {
    const gate = deferred();
    log.gate = gate.promise;
    let answered = false;
    const pending = call('POST', '/api/events', { type: 'A', data: {} }).then((r) => {
      answered = true;
      return r;
    });
    await log.appendEntered.promise;
    // A full round trip on another request proves the server had every chance to answer early.
    expect((await call('GET', '/api/status')).status).toBe(200);
    expect(answered).toBe(false);
    gate.resolve();
    expect((await pending).status).toBe(201);
  });

  it.each([
    ['not JSON', '{"type": ', 'request body is not valid JSON'],
    ['an empty body', '', 'empty'],
    ['an array', '[1,2]', 'JSON object'],
    ['a string', '"x"', 'JSON object'],
    ['no type', '{"data": {}}', 'type'],
    ['an empty type', '{"type": "", "data": {}}', 'type'],
    ['a numeric type', '{"type": 7, "data": {}}', 'type'],
    ['no data', '{"type": "A"}', 'data'],
    ['an unknown field', '{"type": "A", "data": {}, "id": "x"}', 'unknown field'],
    ['a malformed supersedes', '{"type": "A", "data": {}, "supersedes": "nope"}', 'supersedes'],
  ])('answers 400 DEVICE_BAD_REQUEST for %s and records nothing', async (_what, body, message) => {
    const { status, json } = await call('POST', '/api/events', body);
    expect(status).toBe(400);
    expect(json['code']).toBe(ErrorCode.DEVICE_BAD_REQUEST);
    expect(String(json['message'])).toContain(message);
    expect(log.appended).toBe(0);
  });

  it('answers 400 with the log code when the data fails the schema', async () => {
    log.appendError = new AccordError(ErrorCode.PROTOCOL_SCHEMA, 'data.birthDate: expected a date', {
      details: { path: 'birthDate' },
    });
    const { status, json } = await call('POST', '/api/events', {
      type: 'PatientRegistered',
      data: { birthDate: 'x' },
    });
    expect(status).toBe(400);
    expect(json).toEqual({
      code: 'PROTOCOL_SCHEMA',
      message: 'data.birthDate: expected a date',
      details: { path: 'birthDate' },
    });
  });

  it('answers 503 when the log is closed and 500 DEVICE_INTERNAL for an unexpected failure, and keeps serving', async () => {
    log.appendError = new AccordError(ErrorCode.LOG_CLOSED, 'the log is closed');
    expect((await call('POST', '/api/events', { type: 'A', data: {} })).status).toBe(503);
    log.appendError = new TypeError('boom');
    const { status, json } = await call('POST', '/api/events', { type: 'A', data: {} });
    expect(status).toBe(500);
    expect(json['code']).toBe('DEVICE_INTERNAL');
    expect((await call('GET', '/api/status')).status).toBe(200);
  });
});

describe('body cap', () => {
  it('answers 413 DEVICE_BODY_TOO_LARGE for a declared body over 1 MiB', async () => {
    const big = JSON.stringify({ type: 'A', data: { pad: 'x'.repeat(1024 * 1024) } });
    const { status, json } = await call('POST', '/api/events', big);
    expect(status).toBe(413);
    expect(json['code']).toBe('DEVICE_BODY_TOO_LARGE');
    expect(log.appended).toBe(0);
  });

  it('counts the bytes of a chunked body and stops at the cap', async () => {
    await api.close();
    await start(1000);
    const chunk = Buffer.alloc(400, 0x20);
    const res = await chunkedPost('/api/events', [chunk, chunk, chunk]);
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'DEVICE_BODY_TOO_LARGE', details: { limit: 1000 } });
    // A body just under the cap is read and parsed.
    const ok = await chunkedPost('/api/events', [Buffer.from('{"type":"A",'), Buffer.from('"data":{}}')]);
    expect(ok.status).toBe(201);
  });
});

describe("Fastify's own failures", () => {
  it("answer in our {code, message} shape with our codes, never with Fastify's error JSON", async () => {
    const cases: { what: string; path: string; init: RequestInit; status: number; code: string }[] = [
      {
        what: 'a body over the cap (Fastify counts it)',
        path: '/api/events',
        init: {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: 'x'.repeat(1024 * 1024 + 1),
        },
        status: 413,
        code: 'DEVICE_BODY_TOO_LARGE',
      },
      {
        what: 'a query parameter given twice (the schema refuses what Fastify parsed)',
        path: '/api/events?status=pending&status=accepted',
        init: {},
        status: 400,
        code: 'DEVICE_BAD_REQUEST',
      },
      {
        what: 'a path that does not decode (the router refuses it)',
        path: '/api/patients/%E0%A4%A',
        init: {},
        status: 400,
        code: 'DEVICE_BAD_REQUEST',
      },
      {
        what: 'a body that is not JSON (the parser refuses it)',
        path: '/api/network',
        init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"online":' },
        status: 400,
        code: 'DEVICE_BAD_REQUEST',
      },
    ];
    for (const c of cases) {
      const res = await fetch(base + c.path, c.init);
      const text = await res.text();
      expect([c.what, res.status], text).toEqual([c.what, c.status]);
      expect(res.headers.get('content-type'), c.what).toBe('application/json; charset=utf-8');
      const json = JSON.parse(text) as Record<string, unknown>;
      expect(json['code'], c.what).toBe(c.code);
      expect(typeof json['message'], c.what).toBe('string');
      expect(
        Object.keys(json).filter((k) => !['code', 'message', 'details'].includes(k)),
        c.what,
      ).toEqual([]);
      expect(text, c.what).not.toContain('FST_');
    }
    expect(log.appended).toBe(0);
    expect(network.toggles).toEqual([]);
  });
});

describe('routing', () => {
  it('answers 404 DEVICE_UNKNOWN_ROUTE for an unknown path', async () => {
    for (const path of ['/', '/api', '/api/nothing', '/api/events/x/y']) {
      const { status, json } = await call('GET', path);
      expect(status).toBe(404);
      expect(json['code']).toBe('DEVICE_UNKNOWN_ROUTE');
    }
  });

  it('answers 405 DEVICE_METHOD_NOT_ALLOWED for a known path with another method', async () => {
    const del = await call('DELETE', '/api/events');
    expect(del.status).toBe(405);
    expect(del.json).toMatchObject({
      code: 'DEVICE_METHOD_NOT_ALLOWED',
      details: { allow: ['GET', 'POST'] },
    });
    expect((await call('POST', '/api/status', {})).status).toBe(405);
    expect((await call('PUT', '/api/patients')).status).toBe(405);
  });

  it('answers 400 for unknown or repeated query parameters and malformed paths', async () => {
    expect((await call('GET', '/api/status?x=1')).json['code']).toBe('DEVICE_BAD_REQUEST');
    expect((await call('GET', '/api/queue?date=2026-01-01&date=2026-01-02')).status).toBe(400);
    expect((await call('GET', '/api/events/%E0%A4%A')).json['code']).toBe('DEVICE_BAD_REQUEST');
  });

  it('answers garbage on the socket with 400 and keeps serving', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(api.port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => (text += d));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    expect(reply).toContain('DEVICE_BAD_REQUEST');
    expect((await call('GET', '/api/status')).status).toBe(200);
  });
});

describe('GET /api/events', () => {
  it('lists events, filtered by status and device, and 404s an unknown id', async () => {
    await call('POST', '/api/events', { type: 'A', data: {} });
    await call('POST', '/api/events', { type: 'B', data: {} });
    expect((await call('GET', '/api/events')).json).toHaveLength(2);
    expect((await call('GET', '/api/events?status=pending')).json).toHaveLength(2);
    expect((await call('GET', '/api/events?status=accepted')).json).toHaveLength(0);
    expect((await call('GET', `/api/events?device=${DEVICE}`)).json).toHaveLength(2);
    expect((await call('GET', `/api/events?device=${asDeviceId('dother')}`)).json).toHaveLength(0);
    expect((await call('GET', '/api/outbox')).json).toHaveLength(2);
    const bad = await call('GET', '/api/events?status=lost');
    expect(bad.status).toBe(400);
    for (const id of [newEventId(NOW), 'not-an-id']) {
      const missing = await call('GET', `/api/events/${id}`);
      expect(missing.status).toBe(404);
      expect(missing.json['code']).toBe('DEVICE_NOT_FOUND');
    }
  });
});

describe('projections', () => {
  it('serves every view of the tentative projection, with today (UTC) as the default date', async () => {
    expect((await call('GET', '/api/patients')).json).toEqual([{ id: 'p-1', givenName: 'Ada' }]);
    expect((await call('GET', '/api/patients/p-1')).json).toEqual({ id: 'p-1', givenName: 'Ada' });
    expect((await call('GET', '/api/stock')).json).toEqual({ lots: [] });
    expect((await call('GET', '/api/queue')).json).toEqual({ entries: [] });
    expect((await call('GET', '/api/queue?date=2026-01-31')).status).toBe(200);
    expect((await call('GET', '/api/appointments')).json).toEqual({ items: [] });
    expect((await call('GET', '/api/appointments?date=2024-02-29')).status).toBe(200);
    expect((await call('GET', '/api/counters')).json).toEqual({ patients: 1 });
    expect(log.projectionCalls).toEqual([
      ['patients'],
      ['patient', 'p-1'],
      ['stock'],
      ['queue', '2026-03-14'],
      ['queue', '2026-01-31'],
      ['appointments', '2026-03-14'],
      ['appointments', '2024-02-29'],
      ['counters'],
    ]);
  });

  it('serves a page of patients by search text or ids, saying how many matched, and refuses bad pages', async () => {
    const page = await fetch(`${base}/api/patients?q=ada%20k&limit=20&offset=40`);
    expect(page.headers.get('accord-total')).toBe('7');
    expect(await page.json()).toEqual([{ id: 'p-1', givenName: 'Ada' }]);
    expect((await call('GET', '/api/patients?ids=p-1&ids=p%2C2')).json).toEqual([
      { id: 'p-1', givenName: 'Ada' },
    ]);
    await call('GET', '/api/patients?ids=p-3');
    // Without a query, every patient, as before (no total).
    const all = await fetch(`${base}/api/patients`);
    expect(all.headers.get('accord-total')).toBeNull();
    await all.arrayBuffer();
    expect(log.projectionCalls).toEqual([
      ['findPatients', { text: 'ada k', offset: 40, limit: 20 }],
      ['findPatients', { ids: ['p-1', 'p,2'], offset: 0, limit: 500 }],
      ['findPatients', { ids: ['p-3'], offset: 0, limit: 500 }],
      ['patients'],
    ]);
    const tooMany = Array.from({ length: 501 }, (_, i) => `p-${i}`).join('&ids=');
    for (const query of [
      'limit=0',
      'limit=501',
      'limit=ten',
      'offset=-1',
      `q=${'x'.repeat(201)}`,
      `ids=${tooMany}`,
      'search=ada',
      'q=a&q=b',
    ]) {
      const res = await call('GET', `/api/patients?${query}`);
      expect([query, res.status, res.json['code']]).toEqual([query, 400, 'DEVICE_BAD_REQUEST']);
    }
    expect(log.projectionCalls).toHaveLength(4);
  });

  it('answers 404 for an unknown patient and 400 for an impossible date', async () => {
    const missing = await call('GET', '/api/patients/p-404');
    expect(missing).toMatchObject({ status: 404, json: { code: 'DEVICE_NOT_FOUND' } });
    for (const date of ['2026-02-30', '2026-1-1', 'today', '2023-02-29']) {
      expect((await call('GET', `/api/appointments?date=${date}`)).status).toBe(400);
    }
  });

  it('serves every projection route while one device has a hole, and says what is withheld and why', async () => {
    log.holes = [{ device: 'dX', missing: [3] }];
    log.held = [{ device: asDeviceId('dX'), from: 3, reason: 'hole', missing: [3], heldBack: 2 }];
    for (const path of [
      '/api/patients',
      '/api/patients/p-1',
      '/api/stock',
      '/api/queue',
      '/api/appointments',
      '/api/counters',
    ]) {
      const res = await fetch(base + path);
      expect(res.status, path).toBe(200);
      expect(JSON.parse(res.headers.get('accord-withheld') ?? '[]')).toEqual([
        { device: 'dX', from: 3, reason: 'hole', heldBack: 2 },
      ]);
    }
    expect(log.projectionCalls.map(([name]) => name)).toEqual([
      'patients',
      'patient',
      'stock',
      'queue',
      'appointments',
      'counters',
    ]);
    expect((await call('GET', '/api/status')).json).toMatchObject({
      integrity: { holes: [{ device: 'dX' }] },
      withheld: [{ device: 'dX', from: 3, reason: 'hole', missing: [3], heldBack: 2 }],
    });
    log.holes = [];
    log.held = [];
    const clear = await fetch(base + '/api/patients');
    expect(clear.status).toBe(200);
    expect(clear.headers.get('accord-withheld')).toBeNull();
  });
});

describe('POST /api/network', () => {
  it('takes the device off and back on the network', async () => {
    const off = await call('POST', '/api/network', { online: false });
    expect(off).toMatchObject({ status: 200, json: { online: false, peers: [{ connected: false }] } });
    expect((await call('GET', '/api/status')).json['online']).toBe(false);
    expect((await call('GET', '/api/network')).json).toMatchObject({ online: false });
    const on = await call('POST', '/api/network', { online: true });
    expect(on.json['online']).toBe(true);
    expect(network.toggles).toEqual([false, true]);
  });

  it.each(['{}', '{"online": "no"}', '{"online": true, "x": 1}', 'null', 'nope'])(
    'refuses %s with 400',
    async (body) => {
      const { status, json } = await call('POST', '/api/network', body);
      expect(status).toBe(400);
      expect(json['code']).toBe('DEVICE_BAD_REQUEST');
      expect(network.toggles).toEqual([]);
    },
  );
});

/** One request with the given headers (node's request sends them as they are, Host included). */
function raw(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('requests from web pages', () => {
  const routes: [string, string, string?][] = [
    ['GET', '/api/status'],
    ['GET', '/api/patients'],
    ['GET', '/api/nothing'],
    ['POST', '/api/events', JSON.stringify({ type: 'A', data: {} })],
    ['POST', '/api/network', JSON.stringify({ online: false })],
    ['POST', `/api/events/${newEventId(NOW)}/retry`, '{}'],
    ['POST', `/api/events/${newEventId(NOW)}/discard`, JSON.stringify({ reason: 'x' })],
  ];
  const json = { 'content-type': 'application/json' };

  it.each(routes)(
    'refuses %s %s from another Host (421), another Origin or a cross-site fetch (403)',
    async (method, path, body) => {
      const port = api.port;
      expect(await raw(method, path, { ...json, host: `evil.example:${port}` }, body)).toMatchObject({
        status: 421,
        json: { code: 'DEVICE_FOREIGN_HOST', details: { host: `evil.example:${port}` } },
      });
      expect(await raw(method, path, { ...json, host: `127.0.0.1:${port + 1}` }, body)).toMatchObject({
        status: 421,
      });
      for (const origin of [
        'http://evil.example',
        'null',
        `http://127.0.0.1:${port + 1}`,
        `https://127.0.0.1:${port}`,
      ]) {
        expect(await raw(method, path, { ...json, origin }, body), origin).toMatchObject({
          status: 403,
          json: { code: 'DEVICE_FOREIGN_ORIGIN' },
        });
      }
      for (const site of ['cross-site', 'same-site']) {
        expect(await raw(method, path, { ...json, 'sec-fetch-site': site }, body)).toMatchObject({
          status: 403,
        });
      }
      expect(log.appended).toBe(0);
      expect(log.systemDrafts).toEqual([]);
      expect(network.toggles).toEqual([]);
    },
  );

  it.each(routes.filter(([m]) => m === 'POST'))(
    'refuses %s %s without Content-Type: application/json (415)',
    async (method, path, body) => {
      for (const type of [
        undefined,
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
      ]) {
        const res = await raw(method, path, type === undefined ? {} : { 'content-type': type }, body);
        expect(res, type).toMatchObject({
          status: 415,
          json: { code: 'DEVICE_UNSUPPORTED_MEDIA_TYPE', details: { contentType: type ?? null } },
        });
      }
      expect(log.appended).toBe(0);
      expect(log.systemDrafts).toEqual([]);
      expect(network.toggles).toEqual([]);
    },
  );

  it('serves its own origin by any of its loopback names', async () => {
    const port = api.port;
    for (const name of ['127.0.0.1', 'localhost', '[::1]']) {
      const own = {
        host: `${name}:${port}`,
        origin: `http://${name}:${port}`,
        'sec-fetch-site': 'same-origin',
      };
      expect((await raw('GET', '/api/status', own)).status, name).toBe(200);
      const posted = await raw(
        'POST',
        '/api/events',
        { ...own, 'content-type': 'application/json; charset=utf-8' },
        '{"type":"A","data":{}}',
      );
      expect(posted.status, name).toBe(201);
    }
    // The page at one loopback name may call the agent by another.
    expect((await raw('GET', '/api/status', { origin: `http://localhost:${port}` })).status).toBe(200);
    expect(log.appended).toBe(3);
  });
});

describe('static assets (the Sync Centre page)', () => {
  const assets = new Map([
    ['/index.html', { contentType: 'text/html; charset=utf-8', body: '<!doctype html><title>SC</title>' }],
    ['/app.js', { contentType: 'text/javascript; charset=utf-8', body: new TextEncoder().encode('x=1') }],
  ]);

  it('serves / and each asset path with its type, a strict CSP and revalidation by ETag', async () => {
    await api.close();
    await start(undefined, { options: { assets } });
    const page = await fetch(`${base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toBe('<!doctype html><title>SC</title>');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    const etag = page.headers.get('etag') ?? '';
    expect(etag).toMatch(/^".+"$/);
    const again = await fetch(`${base}/index.html`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    const js = await fetch(`${base}/app.js`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await js.text()).toBe('x=1');
    const head = await fetch(`${base}/app.js`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('3');
    // Not a file: the API's own answers, unchanged.
    expect((await call('GET', '/missing.css')).json['code']).toBe('DEVICE_UNKNOWN_ROUTE');
    expect((await call('POST', '/app.js', {})).json['code']).toBe('DEVICE_UNKNOWN_ROUTE');
    expect((await call('GET', '/api/status')).status).toBe(200);
  });

  it('keeps the guard in front of the files: another Host or a cross-site load is refused', async () => {
    await api.close();
    await start(undefined, { options: { assets } });
    const port = api.port;
    expect((await raw('GET', '/', { host: `evil.example:${port}` })).status).toBe(421);
    expect((await raw('GET', '/app.js', { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
  });

  it('refuses an asset path under /api/ when it starts', async () => {
    await expect(
      HttpApi.listen({
        log,
        network,
        identity: { device: DEVICE, name: 'x', facility: FACILITY },
        assets: new Map([['/api/status', { contentType: 'text/plain', body: 'no' }]]),
      }),
    ).rejects.toMatchObject({ code: 'DEVICE_BAD_REQUEST' });
  });

  it('serves no page without assets: / stays an unknown route', async () => {
    expect((await call('GET', '/')).json['code']).toBe('DEVICE_UNKNOWN_ROUTE');
  });
});

describe('close', () => {
  it('waits for an append in flight, answers it, then refuses connections', async () => {
    const gate = deferred();
    log.gate = gate.promise;
    const pending = call('POST', '/api/events', { type: 'A', data: {} });
    await log.appendEntered.promise;
    const closing = api.close();
    gate.resolve();
    expect((await pending).status).toBe(201);
    await closing;
    await expect(fetch(`${base}/api/status`)).rejects.toThrow();
    await start(); // afterEach closes a live server
  });
});

describe('close with a slow sender', () => {
  it('does not wait for a client that never finishes its body', async () => {
    const req = request(`${base}/api/events`, {
      method: 'POST',
      headers: { 'content-length': '100', 'content-type': 'application/json' },
    });
    const ended = new Promise<void>((resolve) => {
      req.on('error', () => resolve());
      req.on('response', (res) => {
        res.resume();
        res.on('end', resolve);
        res.on('error', () => resolve());
      });
    });
    req.write('{"type":');
    // The request has reached the handler once the server counts it in flight: poll its status route.
    await call('GET', '/api/status');
    const started = Date.now();
    await api.close();
    await ended;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(log.appended).toBe(0);
    await start();
  });
});

describe('hostile input (property)', () => {
  it('any body on any route gets a JSON answer below 500 and the server keeps serving', async () => {
    const paths = [
      '/api/events',
      '/api/network',
      '/api/status',
      '/api/patients',
      '/api/nope',
      '/api/deadletters',
      `/api/events/${newEventId(NOW)}/retry`,
      `/api/events/${newEventId(NOW)}/discard`,
      '/api/deadletters/retry-all',
      '/api/audit',
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.constantFrom('GET', 'POST', 'PUT'),
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.jsonValue().map((v) => JSON.stringify({ type: 'T', data: v })),
        ),
        // Keys reused across routes and bodies, and a malformed one.
        fc.option(fc.constantFrom('k-1', 'k-2', 'not a key')),
        async (path, method, body, key) => {
          const headers: Record<string, string> = key === null ? {} : { 'idempotency-key': key };
          const res = await fetch(
            base + path,
            method === 'GET'
              ? { method, headers }
              : { method, body, headers: { ...headers, 'content-type': 'application/json' } },
          );
          expect(res.status).toBeLessThan(500);
          const json = (await res.json()) as unknown;
          if (res.status >= 400) expect(json).toHaveProperty('code');
        },
      ),
      { numRuns: 60 },
    );
    expect((await call('GET', '/api/status')).status).toBe(200);
  });
});

describe('GET /api/deadletters', () => {
  it('lists unresolved rejections newest first, with code, rule, reason, details and the verdict', async () => {
    const older = await deadletter(1, 1, 'RULE_NEGATIVE_STOCK');
    const newer = await deadletter(2, 5, 'RULE_EXPIRED_LOT');
    const fine = foreignEvent(3, 2);
    log.feed([
      {
        event: fine,
        status: 'accepted',
        verdict: await verdict(fine.id, { outcome: 'accepted', seq: 1 }, 3),
      },
    ]);
    await call('POST', '/api/events', { type: 'A', data: {} });
    const { status, json } = await call('GET', '/api/deadletters');
    expect(status).toBe(200);
    expect(json).toEqual([
      {
        id: newer.event.id,
        type: 'StockConsumed',
        device: newer.event.device,
        seq: 2,
        hlc: newer.event.hlc,
        subject: { kind: 'lot', id: 'L-2' },
        data: { lot: 'L-2', quantity: 5 },
        code: 422,
        rule: 'RULE_EXPIRED_LOT',
        reason: 'rejected by RULE_EXPIRED_LOT',
        details: { balance: 2, requested: 5 },
        verdictId: newer.verdict.id,
        verdictHlc: newer.verdict.hlc,
        verdictAt: '2026-03-14T09:36:00.000Z',
      },
      expect.objectContaining({
        id: older.event.id,
        rule: 'RULE_NEGATIVE_STOCK',
        verdictId: older.verdict.id,
      }),
    ]);
    expect((await call('GET', '/api/deadletters?status=x')).status).toBe(400);
  });
});

describe('GET /api/events/:id with a verdict', () => {
  it('includes the latest verdict and its decoded data', async () => {
    const { event, verdict: v } = await deadletter(1, 1);
    const { status, json } = await call('GET', `/api/events/${event.id}`);
    expect(status).toBe(200);
    expect(json).toMatchObject({
      event: { id: event.id },
      status: 'deadletter',
      verdict: { id: v.id, device: relay.deviceId },
      verdictData: {
        target: event.id,
        outcome: 'deadletter',
        code: 422,
        rule: 'RULE_NEGATIVE_STOCK',
        reason: 'rejected by RULE_NEGATIVE_STOCK',
        details: { balance: 2, requested: 5 },
        ruleSet: 'rules/1',
      },
    });
    const own = await call('POST', '/api/events', { type: 'A', data: {} });
    expect((await call('GET', `/api/events/${String(own.json['id'])}`)).json).not.toHaveProperty(
      'verdictData',
    );
  });
});

describe('GET /api/events/:id: verdicts and resolvedBy', () => {
  it('lists every relay verdict about the event, oldest first, and the retry that answered it', async () => {
    const event = foreignEvent(1, 1);
    const rejected = await verdict(event.id, rejection('RULE_NEGATIVE_STOCK'), 2);
    const forged = await verdict(event.id, { outcome: 'accepted', seq: 99 }, 3, stranger);
    log.feed([{ event, status: 'deadletter', verdict: rejected }], [event, rejected, forged]);
    const fresh = await call('GET', `/api/events/${event.id}`);
    expect(fresh.json).toMatchObject({ status: 'deadletter', resolvedBy: null });
    expect(fresh.json['verdicts']).toEqual([
      {
        verdictId: rejected.id,
        seq: rejected.seq,
        outcome: 'deadletter',
        code: 422,
        rule: 'RULE_NEGATIVE_STOCK',
        reason: 'rejected by RULE_NEGATIVE_STOCK',
        details: { balance: 2, requested: 5 },
        at: '2026-03-14T09:32:00.000Z',
      },
    ]);

    const retry = await call('POST', `/api/events/${event.id}/retry`);
    expect((await call('GET', `/api/events/${event.id}`)).json).toMatchObject({
      status: 'pending',
      resolvedBy: retry.json['id'],
    });
    // The relay accepts it this time, in a batch with another event.
    const other = foreignEvent(2, 4);
    const batch = await acceptedVerdicts([other.id, event.id], 40, 5);
    log.feed([{ event, status: 'accepted', verdict: batch }], [other, batch]);
    const { json } = await call('GET', `/api/events/${event.id}`);
    expect(json).toMatchObject({ status: 'accepted', resolvedBy: retry.json['id'] });
    expect(json['verdicts']).toEqual([
      expect.objectContaining({ verdictId: rejected.id, outcome: 'deadletter' }),
      { verdictId: batch.id, seq: batch.seq, outcome: 'accepted', at: '2026-03-14T09:35:00.000Z' },
    ]);
  });

  it('names the discard that resolved a deadletter; an event without verdicts has none', async () => {
    const { event, verdict: v } = await deadletter(1, 1);
    const discard = await call('POST', `/api/events/${event.id}/discard`, { reason: 'entered twice' });
    const { json } = await call('GET', `/api/events/${event.id}`);
    expect(json).toMatchObject({ status: 'resolved', resolvedBy: discard.json['id'] });
    expect((json['verdicts'] as { verdictId: string }[]).map((x) => x.verdictId)).toEqual([v.id]);
    const own = await call('POST', '/api/events', { type: 'A', data: {} });
    expect((await call('GET', `/api/events/${String(own.json['id'])}`)).json).toMatchObject({
      status: 'pending',
      verdicts: [],
      resolvedBy: null,
    });
    // Without a relay, no device's statement is a verdict.
    await api.close();
    const seeded = log;
    await start(undefined, { log: seeded, relay: false });
    expect((await call('GET', `/api/events/${event.id}`)).json).toMatchObject({ verdicts: [] });
  });
});

describe('GET /api/environment', () => {
  let folder: string;
  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), 'accord-http-env-'));
  });
  afterEach(() => rm(folder, { recursive: true, force: true }));

  it('shows identity, versions, relay, data folder and its size read at each request, counts and integrity', async () => {
    await mkdir(join(folder, 'db'));
    await writeFile(join(folder, 'device.json'), 'x'.repeat(100));
    await writeFile(join(folder, 'db', '000001.log'), 'y'.repeat(250));
    // A link is not followed: it counts nothing.
    await symlink(join(folder, 'db', '000001.log'), join(folder, 'link'));
    await api.close();
    await start(undefined, { options: { dataFolder: folder, version: '9.9.9' } });
    await call('POST', '/api/events', { type: 'A', data: {} });
    const first = await call('GET', '/api/environment');
    expect(first.status).toBe(200);
    expect(first.json).toEqual({
      device: DEVICE,
      facility: FACILITY,
      keyFingerprint: `SHA256:${createHash('sha256')
        .update(Buffer.from(DEVICE.slice(1), 'base64url'))
        .digest('base64')
        .replace(/=+$/, '')}`,
      version: '9.9.9',
      node: process.version,
      relay: RELAY_URL,
      dataFolder: folder,
      dataFolderBytes: 350,
      counts: { total: 1, pending: 1, accepted: 0, deadletter: 0, resolved: 0, outbox: 1 },
      integrity: {
        holes: [],
        corrupt: [],
        incidents: 0,
        detectedAtStart: { corruptEvents: 0, corruptChunks: 0 },
      },
    });
    await appendFile(join(folder, 'db', '000001.log'), 'z'.repeat(50));
    expect((await call('GET', '/api/environment')).json['dataFolderBytes']).toBe(400);
    expect((await call('GET', '/api/environment?x=1')).status).toBe(400);
  });

  it('says null for the folder without one, and the package version by default', async () => {
    const { json } = await call('GET', '/api/environment');
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(json).toMatchObject({ dataFolder: null, dataFolderBytes: null, version: pkg.version });
  });
});

describe('verdicts shared in one AcceptedVerdicts event', () => {
  it('GET /api/events/:id decodes each target’s own entry; status takes the batch’s last verdict', async () => {
    const a = foreignEvent(1, 1);
    const b = foreignEvent(2, 2);
    const batch = await acceptedVerdicts([a.id, b.id], 11, 3);
    log.feed(
      [
        { event: a, status: 'accepted', verdict: batch },
        { event: b, status: 'accepted', verdict: batch },
      ],
      [a, b, batch],
    );
    for (const [e, seq] of [
      [a, 11],
      [b, 12],
    ] as const) {
      const { json } = await call('GET', `/api/events/${e.id}`);
      expect(json).toMatchObject({
        status: 'accepted',
        verdict: { id: batch.id },
        verdictData: { target: e.id, outcome: 'accepted', seq, ruleSet: 'rules/1' },
      });
    }
    expect((await call('GET', '/api/status')).json).toMatchObject({
      lastVerdict: { id: batch.id, target: b.id, outcome: 'accepted', seq: 12, hlc: batch.hlc },
      confirmedSeq: 12,
    });
  });
});

describe('GET /api/status: relay link and verdicts', () => {
  it('reports the relay link, the newest relay verdict and the highest accepted seq; forged verdicts do not count', async () => {
    expect((await call('GET', '/api/status')).json).toMatchObject({
      relay: { url: RELAY_URL, id: relay.deviceId, connected: false, lastContact: null },
      lastVerdict: null,
      confirmedSeq: 0,
    });
    network.relayPeer = {
      peer: relay.deviceId,
      connected: true,
      lastContact: '2026-03-14T09:29:30.000Z',
      direction: 'client',
      url: RELAY_URL,
      state: 'connected',
      relay: true,
    };
    const a = foreignEvent(1, 1);
    const b = foreignEvent(2, 2);
    const va = await verdict(a.id, { outcome: 'accepted', seq: 7 }, 3);
    const vb = await verdict(b.id, rejection('RULE_X', 409), 4);
    const forged = await verdict(b.id, { outcome: 'accepted', seq: 99 }, 9, stranger);
    log.feed(
      [
        { event: a, status: 'accepted', verdict: va },
        { event: b, status: 'deadletter', verdict: vb },
      ],
      [a, b, va, vb, forged],
    );
    expect((await call('GET', '/api/status')).json).toMatchObject({
      relay: {
        url: RELAY_URL,
        id: relay.deviceId,
        connected: true,
        lastContact: '2026-03-14T09:29:30.000Z',
        state: 'connected',
      },
      lastVerdict: { id: vb.id, target: b.id, outcome: 'deadletter', code: 409, hlc: vb.hlc },
      confirmedSeq: 7,
    });
    // An older verdict arriving late changes neither the newest verdict nor lowers the sequence.
    const c = foreignEvent(3, 0);
    const vc = await verdict(c.id, { outcome: 'accepted', seq: 5 }, 1);
    log.feed([{ event: c, status: 'accepted', verdict: vc }], [c, vc]);
    expect((await call('GET', '/api/status')).json).toMatchObject({
      lastVerdict: { id: vb.id },
      confirmedSeq: 7,
    });
  });

  it('counts verdicts already in the log at start, reports no relay when none is known, and unsubscribes on close', async () => {
    const seeded = new FakeLog();
    const a = foreignEvent(1, 1);
    const va = await verdict(a.id, { outcome: 'accepted', seq: 3 }, 2);
    seeded.events.set(a.id, { event: a, status: 'accepted', verdict: va });
    seeded.visible.push(a, va);
    await api.close();
    expect(log.listenerCount).toBe(0);
    await start(undefined, { log: seeded });
    expect(seeded.listenerCount).toBe(1);
    expect((await call('GET', '/api/status')).json).toMatchObject({
      lastVerdict: { id: va.id, target: a.id, outcome: 'accepted', seq: 3, hlc: va.hlc },
      confirmedSeq: 3,
    });
    await api.close();
    await start(undefined, { log: seeded, relay: false });
    expect((await call('GET', '/api/status')).json).toMatchObject({
      relay: null,
      lastVerdict: null,
      confirmedSeq: 0,
    });
  });
});

describe('POST /api/events/:id/retry', () => {
  it('records a RetryRequested for a deadletter (201 with its id); the event is pending again', async () => {
    const { event } = await deadletter(1, 1);
    const r = await call('POST', `/api/events/${event.id}/retry`);
    expect(r.status).toBe(201);
    expect(log.systemDrafts).toEqual([
      {
        type: 'RetryRequested',
        subject: { kind: 'event', id: event.id },
        data: { target: event.id },
        deps: [event.id],
      },
    ]);
    expect(r.json).toMatchObject({ event: { type: 'RetryRequested', data: { target: event.id } } });
    expect(r.json['id']).toBe((r.json['event'] as { id: string }).id);
    expect(log.get(event.id)?.status).toBe('pending');
    const again = await call('POST', `/api/events/${event.id}/retry`, {});
    expect(again.status).toBe(409);
    expect(again.json).toMatchObject({ code: 'DEVICE_NOT_DEADLETTER', details: { status: 'pending' } });
    expect(log.systemDrafts).toHaveLength(1);
  });

  it('refuses an unknown id (404), an event that is not a deadletter (409) and a body (400)', async () => {
    for (const id of [newEventId(NOW), 'nope']) {
      const r = await call('POST', `/api/events/${id}/retry`);
      expect([r.status, r.json['code']]).toEqual([404, 'DEVICE_NOT_FOUND']);
    }
    const own = await call('POST', '/api/events', { type: 'A', data: {} });
    const pending = await call('POST', `/api/events/${String(own.json['id'])}/retry`);
    expect(pending.status).toBe(409);
    expect(pending.json).toMatchObject({ code: 'DEVICE_NOT_DEADLETTER', details: { status: 'pending' } });
    const { event } = await deadletter(1, 1);
    const withBody = await call('POST', `/api/events/${event.id}/retry`, { force: true });
    expect([withBody.status, withBody.json['code']]).toEqual([400, 'DEVICE_BAD_REQUEST']);
    expect((await call('GET', `/api/events/${event.id}/retry`)).status).toBe(405);
    expect(log.systemDrafts).toHaveLength(0);
  });

  it('refuses a second resolution of an event while the first is being recorded', async () => {
    const { event } = await deadletter(1, 1);
    const gate = deferred();
    log.gate = gate.promise;
    const first = call('POST', `/api/events/${event.id}/retry`);
    await log.appendEntered.promise;
    const second = await call('POST', `/api/events/${event.id}/discard`, { reason: 'duplicate' });
    expect([second.status, second.json['code']]).toEqual([409, 'DEVICE_NOT_DEADLETTER']);
    gate.resolve();
    expect((await first).status).toBe(201);
    expect(log.systemDrafts.map((d) => d.type)).toEqual(['RetryRequested']);
  });
});

describe('POST /api/events/:id/discard', () => {
  it('records a DeadletterDiscarded with the reason; the deadletter is then resolved', async () => {
    const { event } = await deadletter(1, 1);
    const r = await call('POST', `/api/events/${event.id}/discard`, { reason: 'entered twice' });
    expect(r.status).toBe(201);
    expect(log.systemDrafts).toEqual([
      {
        type: 'DeadletterDiscarded',
        subject: { kind: 'event', id: event.id },
        data: { target: event.id, reason: 'entered twice' },
        deps: [event.id],
      },
    ]);
    expect(log.get(event.id)).toMatchObject({ status: 'resolved', resolvedBy: r.json['id'] });
    expect((await call('GET', '/api/deadletters')).json).toEqual([]);
    const again = await call('POST', `/api/events/${event.id}/discard`, { reason: 'again' });
    expect(again.json).toMatchObject({ code: 'DEVICE_NOT_DEADLETTER', details: { status: 'resolved' } });
  });

  it.each([
    ['no body', undefined],
    ['an empty object', {}],
    ['an empty reason', { reason: '  ' }],
    ['a non-string reason', { reason: 5 }],
    ['an extra field', { reason: 'x', extra: 1 }],
    ['a reason over 4096 characters', { reason: 'x'.repeat(4097) }],
    ['not JSON', '{reason'],
  ])('refuses %s with 400', async (_what, body) => {
    const { event } = await deadletter(1, 1);
    const r = await call('POST', `/api/events/${event.id}/discard`, body);
    expect([r.status, r.json['code']]).toEqual([400, 'DEVICE_BAD_REQUEST']);
    expect(log.systemDrafts).toHaveLength(0);
    expect(log.get(event.id)?.status).toBe('deadletter');
  });

  it('refuses an unknown id with 404', async () => {
    const r = await call('POST', `/api/events/${newEventId(NOW)}/discard`, { reason: 'x' });
    expect([r.status, r.json['code']]).toEqual([404, 'DEVICE_NOT_FOUND']);
  });
});

describe('POST /api/events with supersedes (amend)', () => {
  it('refuses to amend an unknown event (404) or one that is not a deadletter (409)', async () => {
    const unknown = await call('POST', '/api/events', { type: 'A', data: {}, supersedes: newEventId(NOW) });
    expect([unknown.status, unknown.json['code']]).toEqual([404, 'DEVICE_NOT_FOUND']);
    const own = await call('POST', '/api/events', { type: 'A', data: {} });
    const pending = await call('POST', '/api/events', {
      type: 'A',
      data: {},
      supersedes: own.json['id'],
    });
    expect([pending.status, pending.json['code']]).toEqual([409, 'DEVICE_NOT_DEADLETTER']);
    expect(log.appended).toBe(1);
  });
});

/** A POST declared JSON with extra headers (an `Idempotency-Key`, an `Origin`). */
async function send(
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown>; replayed: string | null }> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return {
    status: res.status,
    json: (await res.json()) as Record<string, unknown>,
    replayed: res.headers.get('idempotent-replayed'),
  };
}

const key = (k: string) => ({ 'idempotency-key': k });

describe('POST /api/deadletters/retry-all', () => {
  it('records one RetryRequested per open deadletter, oldest first, and answers them; nothing left the second time', async () => {
    const newer = await deadletter(2, 5);
    const older = await deadletter(1, 1);
    const own = await call('POST', '/api/events', { type: 'A', data: {} }); // pending: not retried
    const r = await send('/api/deadletters/retry-all', undefined);
    expect(r.status).toBe(200);
    const retried = r.json['retried'] as { id: string; event: SignedEvent }[];
    expect(retried.map((x) => x.id)).toEqual([older.event.id, newer.event.id]);
    expect(r.json['skipped']).toEqual([]);
    expect(log.systemDrafts.map((d) => [d.type, (d.data as { target: string }).target])).toEqual([
      ['RetryRequested', older.event.id],
      ['RetryRequested', newer.event.id],
    ]);
    for (const x of retried) {
      expect(x.event).toMatchObject({ type: 'RetryRequested', data: { target: x.id } });
      expect(log.get(x.id as EventId)?.status).toBe('pending');
    }
    expect(log.get(own.json['id'] as EventId)?.status).toBe('pending');
    const again = await send('/api/deadletters/retry-all', {});
    expect(again.json).toEqual({ retried: [], skipped: [] });
    expect(log.systemDrafts).toHaveLength(2);
  });

  it('retries more deadletters than one batch holds', async () => {
    const events: EventId[] = [];
    for (let n = 1; n <= 70; n++) events.push((await deadletter(n, n)).event.id);
    const r = await send('/api/deadletters/retry-all', {});
    expect((r.json['retried'] as { id: string }[]).map((x) => x.id)).toEqual(events);
    expect(log.systemDrafts).toHaveLength(70);
    expect(log.list({ status: 'deadletter' })).toEqual([]);
  });

  it('skips, with its code and reason, a deadletter whose resolution is being recorded meanwhile', async () => {
    const a = await deadletter(1, 1);
    const b = await deadletter(2, 2);
    const gate = deferred();
    log.gate = gate.promise;
    const discard = call('POST', `/api/events/${a.event.id}/discard`, { reason: 'entered twice' });
    await log.appendEntered.promise;
    log.appendEntered = deferred();
    const all = send('/api/deadletters/retry-all', {});
    // Retry-all has skipped a and is recording b's retry.
    await log.appendEntered.promise;
    gate.resolve();
    const r = await all;
    expect(r.status).toBe(200);
    expect((r.json['retried'] as { id: string }[]).map((x) => x.id)).toEqual([b.event.id]);
    const skipped = r.json['skipped'] as { id: string; code: string; reason: string }[];
    expect(skipped.map((x) => [x.id, x.code])).toEqual([[a.event.id, 'DEVICE_NOT_DEADLETTER']]);
    expect(skipped[0]?.reason).toContain('being recorded');
    expect((await discard).status).toBe(201);
    expect(log.systemDrafts.map((d) => d.type).sort()).toEqual(['DeadletterDiscarded', 'RetryRequested']);
  });

  it('refuses a body, a query, a GET, a form post and another origin, recording nothing', async () => {
    await deadletter(1, 1);
    expect((await send('/api/deadletters/retry-all', { all: true })).json['code']).toBe('DEVICE_BAD_REQUEST');
    expect((await send('/api/deadletters/retry-all?force=1', {})).json['code']).toBe('DEVICE_BAD_REQUEST');
    expect((await call('GET', '/api/deadletters/retry-all')).status).toBe(405);
    const form = await fetch(`${base}/api/deadletters/retry-all`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: '{}',
    });
    expect(form.status).toBe(415);
    const foreign = await send('/api/deadletters/retry-all', {}, { origin: 'http://evil.example' });
    expect([foreign.status, foreign.json['code']]).toEqual([403, 'DEVICE_FOREIGN_ORIGIN']);
    expect(log.systemDrafts).toHaveLength(0);
  });
});

describe('Idempotency-Key', () => {
  it('answers a repeated POST /api/events with the first answer (same status, id, warning), recording one event', async () => {
    const body = { type: 'StockConsumed', data: { lot: 'L1', warn: 'RULE_NEGATIVE_STOCK' } };
    const first = await send('/api/events', body, key('form-1'));
    const second = await send('/api/events', body, key('form-1'));
    expect(first.status).toBe(201);
    expect(first.replayed).toBeNull();
    expect(second).toMatchObject({ status: 201, replayed: 'true' });
    expect(second.json).toEqual(first.json);
    expect(second.json['warning']).toMatchObject({ rule: 'RULE_NEGATIVE_STOCK' });
    expect(log.appended).toBe(1);
    const other = await send('/api/events', body, key('form-2'));
    expect(other.json['id']).not.toBe(first.json['id']);
    expect(log.appended).toBe(2);
  });

  it('answers a repeated retry, discard, amend and retry-all with the first answer instead of a 409', async () => {
    const a = await deadletter(1, 1);
    const b = await deadletter(2, 2);
    const c = await deadletter(3, 3);
    const retry = await send(`/api/events/${a.event.id}/retry`, undefined, key('r'));
    // No body and {} are the same retry.
    const retryAgain = await send(`/api/events/${a.event.id}/retry`, {}, key('r'));
    expect([retry.status, retryAgain.status, retryAgain.replayed]).toEqual([201, 201, 'true']);
    expect(retryAgain.json['id']).toBe(retry.json['id']);

    const discard = await send(`/api/events/${b.event.id}/discard`, { reason: 'twice' }, key('d'));
    const discardAgain = await send(`/api/events/${b.event.id}/discard`, { reason: 'twice' }, key('d'));
    expect(discardAgain).toMatchObject({ status: 201, json: { id: discard.json['id'] } });

    const amendBody = { type: 'StockConsumed', data: { lot: 'L-3', quantity: 1 }, supersedes: c.event.id };
    const amend = await send('/api/events', amendBody, key('m'));
    const amendAgain = await send('/api/events', amendBody, key('m'));
    expect([amend.status, amendAgain.status]).toEqual([201, 201]);
    expect(amendAgain.json['id']).toBe(amend.json['id']);
    expect(log.appended).toBe(1);

    const d = await deadletter(4, 4);
    const all = await send('/api/deadletters/retry-all', {}, key('all'));
    const allAgain = await send('/api/deadletters/retry-all', undefined, key('all'));
    expect((all.json['retried'] as { id: string }[]).map((x) => x.id)).toEqual([d.event.id]);
    expect(allAgain).toMatchObject({ status: 200, replayed: 'true' });
    expect(allAgain.json).toEqual(all.json);
    expect(log.systemDrafts.map((x) => x.type)).toEqual([
      'RetryRequested',
      'DeadletterDiscarded',
      'RetryRequested',
    ]);
  });

  it('refuses a key reused with another body or on another route (422), recording nothing', async () => {
    const first = await send('/api/events', { type: 'A', data: { n: 1 } }, key('k-1'));
    expect(first.status).toBe(201);
    const otherBody = await send('/api/events', { type: 'A', data: { n: 2 } }, key('k-1'));
    expect([otherBody.status, otherBody.json['code']]).toEqual([422, 'DEVICE_IDEMPOTENCY_MISMATCH']);
    const { event } = await deadletter(1, 1);
    const otherRoute = await send(`/api/events/${event.id}/retry`, {}, key('k-1'));
    expect([otherRoute.status, otherRoute.json['code']]).toEqual([422, 'DEVICE_IDEMPOTENCY_MISMATCH']);
    expect(log.appended).toBe(1);
    expect(log.systemDrafts).toHaveLength(0);
    expect(log.get(event.id)?.status).toBe('deadletter');
  });

  it.each([
    ['empty', ''],
    ['with a space', 'a b'],
    ['with a slash', 'a/b'],
    ['over 128 characters', 'k'.repeat(129)],
  ])('refuses a key %s with 400, recording nothing', async (_what, k) => {
    const r = await send('/api/events', { type: 'A', data: {} }, key(k));
    expect([r.status, r.json['code']]).toEqual([400, 'DEVICE_BAD_REQUEST']);
    expect(log.appended).toBe(0);
  });

  it('accepts a 128-character key and a UUID', async () => {
    for (const k of ['k'.repeat(128), crypto.randomUUID()]) {
      expect((await send('/api/events', { type: 'A', data: {} }, key(k))).status).toBe(201);
    }
    expect(log.appended).toBe(2);
  });

  it('makes a second request with the key of one in flight wait for it, then answers the first result', async () => {
    const gate = deferred();
    log.gate = gate.promise;
    const body = { type: 'A', data: { n: 1 } };
    const first = send('/api/events', body, key('slow'));
    await log.appendEntered.promise;
    const second = send('/api/events', body, key('slow'));
    gate.resolve();
    const [a, b] = await Promise.all([first, second]);
    expect([a.status, b.status, b.replayed]).toEqual([201, 201, 'true']);
    expect(b.json['id']).toBe(a.json['id']);
    expect(log.appended).toBe(1);
  });

  it('keeps nothing for a request refused as coming from another page: the key stays free', async () => {
    const body = { type: 'A', data: {} };
    const foreign = await send('/api/events', body, { ...key('page'), origin: 'http://evil.example' });
    expect([foreign.status, foreign.json['code']]).toEqual([403, 'DEVICE_FOREIGN_ORIGIN']);
    expect(log.appended).toBe(0);
    const own = await send('/api/events', body, key('page'));
    expect([own.status, own.replayed]).toEqual([201, null]);
    expect(log.appended).toBe(1);
  });

  it('keeps nothing for a refused request: the same key works once the request can succeed', async () => {
    const own = await call('POST', '/api/events', { type: 'A', data: {} });
    const id = own.json['id'] as EventId;
    const early = await send(`/api/events/${id}/retry`, {}, key('later'));
    expect([early.status, early.json['code']]).toEqual([409, 'DEVICE_NOT_DEADLETTER']);
    const info = log.get(id)!;
    const v = await verdict(id, rejection('RULE_NEGATIVE_STOCK'), 2);
    log.feed([{ ...info, status: 'deadletter', verdict: v }], [v]);
    const now = await send(`/api/events/${id}/retry`, {}, key('later'));
    expect([now.status, now.replayed]).toEqual([201, null]);
  });
});

describe('GET /api/audit', () => {
  it('lists this device’s retries, discards, amends, retry-alls, replays, refusals and network switches, newest first', async () => {
    const a = await deadletter(1, 1);
    const b = await deadletter(2, 2);
    const c = await deadletter(3, 3);
    now = NOW + 100_000;
    const retry = await send(`/api/events/${a.event.id}/retry`, {}, key('r'));
    now = NOW + 200_000;
    await send(`/api/events/${a.event.id}/retry`, {}, key('r')); // replayed
    const discard = await send(`/api/events/${b.event.id}/discard`, { reason: 'entered twice' });
    const amend = await send('/api/events', { type: 'A', data: {}, supersedes: c.event.id });
    await call('POST', '/api/events', { type: 'A', data: {} }); // a domain fact, not an action
    now = NOW + 300_000;
    const unknown = newEventId(NOW);
    const refused = await send(`/api/events/${unknown}/discard`, { reason: 'x' });
    expect(refused.status).toBe(404);
    now = NOW + 400_000;
    await send('/api/network', { online: false });
    now = NOW + 500_000;
    await send('/api/deadletters/retry-all', {}); // nothing left to retry

    const { status, json } = await call('GET', '/api/audit');
    expect(status).toBe(200);
    const rows = json as unknown as { at: string; action: string }[];
    // A recorded action's time is its event's HLC wall time.
    const hlcTime = (answer: { json: Record<string, unknown> }): string =>
      (answer.json['event'] as SignedEvent).hlc.slice(0, 24);
    expect(rows.map((r) => r.at)).toEqual([...rows.map((r) => r.at)].sort().reverse());
    expect(json).toEqual(
      expect.arrayContaining([
        {
          at: hlcTime(retry),
          action: 'retry',
          target: a.event.id,
          event: retry.json['id'],
          outcome: 'recorded',
        },
        {
          at: new Date(NOW + 200_000).toISOString(),
          action: 'retry',
          target: a.event.id,
          event: retry.json['id'],
          outcome: 'replayed',
          detail: { key: 'r', status: 201 },
        },
        {
          at: hlcTime(discard),
          action: 'discard',
          target: b.event.id,
          event: discard.json['id'],
          outcome: 'recorded',
          detail: { reason: 'entered twice' },
        },
        {
          at: hlcTime(amend),
          action: 'amend',
          target: c.event.id,
          event: amend.json['id'],
          outcome: 'recorded',
        },
        {
          at: new Date(NOW + 300_000).toISOString(),
          action: 'discard',
          target: unknown,
          outcome: 'refused',
          detail: { status: 404, code: 'DEVICE_NOT_FOUND' },
        },
        {
          at: new Date(NOW + 400_000).toISOString(),
          action: 'network',
          outcome: 'done',
          detail: { online: false },
        },
        {
          at: new Date(NOW + 500_000).toISOString(),
          action: 'retry-all',
          outcome: 'done',
          detail: { retried: 0, skipped: 0 },
        },
      ]),
    );
    expect(rows).toHaveLength(7);
    expect(rows[0]).toMatchObject({ action: 'retry-all' });
    const limited = (await call('GET', '/api/audit?limit=2')).json as unknown as { action: string }[];
    expect(limited.map((r) => r.action)).toEqual(['retry-all', 'network']);
  });

  it('records requests refused as coming from another page; refuses a bad limit or query', async () => {
    const foreign = await fetch(`${base}/api/audit`, { headers: { origin: 'http://evil.example' } });
    expect(foreign.status).toBe(403);
    const rows = (await call('GET', '/api/audit')).json;
    expect(rows).toEqual([
      {
        at: new Date(NOW).toISOString(),
        action: 'request',
        outcome: 'refused',
        detail: { status: 403, code: 'DEVICE_FOREIGN_ORIGIN', method: 'GET', path: '/api/audit' },
      },
    ]);
    for (const q of ['limit=0', 'limit=abc', 'limit=1001', 'limit=1&limit=2', 'since=1']) {
      const r = await call('GET', `/api/audit?${q}`);
      expect([q, r.status, r.json['code']]).toEqual([q, 400, 'DEVICE_BAD_REQUEST']);
    }
  });
});

/** A live stream read with fetch: `next()` awaits the next SSE block (event or comment). */
async function openStream(headers: Record<string, string> = {}): Promise<{
  status: number;
  contentType: string | null;
  next: () => Promise<{ event?: string; data?: string; comment?: string } | undefined>;
  nextStatus: () => Promise<Record<string, unknown>>;
  close: () => void;
}> {
  const ctrl = new AbortController();
  const res = await fetch(`${base}/api/stream`, { headers, signal: ctrl.signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const next = async (): Promise<{ event?: string; data?: string; comment?: string } | undefined> => {
    for (;;) {
      const end = buffer.indexOf('\n\n');
      if (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const out: { event?: string; data?: string; comment?: string } = {};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) out.comment = line.slice(1).trim();
          else if (line.startsWith('event: ')) out.event = line.slice(7);
          else if (line.startsWith('data: ')) out.data = line.slice(6);
        }
        if (out.event === undefined && out.comment === undefined && out.data === undefined) continue; // retry:
        return out;
      }
      const { done, value } = await reader.read();
      if (done) return undefined;
      buffer += decoder.decode(value, { stream: true });
    }
  };
  const nextStatus = async (): Promise<Record<string, unknown>> => {
    for (;;) {
      const block = await next();
      if (block === undefined) throw new Error('the stream ended');
      if (block.event === 'status') return JSON.parse(block.data ?? 'null') as Record<string, unknown>;
    }
  };
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    next,
    nextStatus,
    close: () => ctrl.abort(),
  };
}

describe('GET /api/stream', () => {
  it('sends the status at once, then a new one when the log or the network changes', async () => {
    network.relayPeer = {
      peer: relay.deviceId,
      connected: true,
      lastContact: '2026-03-14T09:29:30.000Z',
      relay: true,
    };
    const stream = await openStream();
    expect(stream.status).toBe(200);
    expect(stream.contentType).toBe('text/event-stream; charset=utf-8');
    expect(await stream.nextStatus()).toEqual({
      online: true,
      relay: { connected: true, lastContact: '2026-03-14T09:29:30.000Z' },
      peers: { connected: 2, known: 2 },
      pending: 0,
      outbox: 0,
      needsAttention: 0,
      confirmedSeq: 0,
    });
    await deadletter(1, 1);
    expect(await stream.nextStatus()).toMatchObject({ needsAttention: 1 });
    const e = foreignEvent(9, 9);
    log.feed([{ event: e, status: 'accepted' }], [await acceptedVerdicts([e.id], 7, 10)]);
    expect(await stream.nextStatus()).toMatchObject({ confirmedSeq: 7, needsAttention: 1 });
    await send('/api/network', { online: false });
    expect(await stream.nextStatus()).toMatchObject({ online: false, peers: { connected: 1, known: 2 } });
    stream.close();
  });

  it('coalesces a burst of changes into one status', async () => {
    const stream = await openStream();
    expect(await stream.nextStatus()).toMatchObject({ needsAttention: 0 });
    for (let n = 1; n <= 10; n++) await deadletter(n, n);
    // Ten batches became visible: the next status already counts all ten.
    expect(await stream.nextStatus()).toMatchObject({ needsAttention: 10 });
    stream.close();
  });

  it('sends a comment heartbeat', async () => {
    await api.close();
    await start(undefined, { options: { streamHeartbeatMs: 10 } });
    const stream = await openStream();
    expect(await stream.next()).toMatchObject({ event: 'status' });
    expect(await stream.next()).toEqual({ comment: 'keep-alive' });
    stream.close();
  });

  it('serves at most maxStreams at once (503 DEVICE_TOO_MANY_STREAMS), and a slot frees when a client leaves', async () => {
    await api.close();
    await start(undefined, { options: { maxStreams: 2 } });
    const a = await openStream();
    const b = await openStream();
    await Promise.all([a.nextStatus(), b.nextStatus()]);
    const third = await call('GET', '/api/stream');
    expect([third.status, third.json['code'], third.json['details']]).toEqual([
      503,
      'DEVICE_TOO_MANY_STREAMS',
      { limit: 2 },
    ]);
    a.close();
    // The server learns of the departure when the socket closes: ask until it has.
    let again = await fetch(`${base}/api/stream`);
    for (let tries = 0; again.status === 503 && tries < 500; tries++) {
      await again.body?.cancel();
      again = await fetch(`${base}/api/stream`);
    }
    expect(again.status).toBe(200);
    await again.body?.cancel();
    b.close();
  });

  it('ends open streams when the API closes, without waiting for them', async () => {
    const stream = await openStream();
    await stream.nextStatus();
    await api.close();
    expect(await stream.next()).toBeUndefined();
  });

  it('refuses another origin, a query and HEAD', async () => {
    const foreign = await fetch(`${base}/api/stream`, { headers: { origin: 'http://evil.example' } });
    expect([foreign.status, ((await foreign.json()) as { code: string }).code]).toEqual([
      403,
      'DEVICE_FOREIGN_ORIGIN',
    ]);
    expect((await call('GET', '/api/stream?x=1')).json['code']).toBe('DEVICE_BAD_REQUEST');
    expect((await fetch(`${base}/api/stream`, { method: 'HEAD' })).status).toBe(405);
    expect((await call('POST', '/api/stream', {})).status).toBe(405);
  });
});
