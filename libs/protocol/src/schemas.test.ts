import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  eventEnvelopeSchema,
  MAX_DEPS,
  expandAcceptedVerdicts,
  isSignedEvent,
  MAX_ACCEPTED_PER_EVENT,
  MAX_EVENT_BYTES,
  newEventId,
  parseAcceptedVerdictsData,
  parseDeadletterDiscardedData,
  parseEnvelope,
  parseRetryRequestedData,
  parseSignedEvent,
  parseVerdictData,
  parseWith,
  readAcceptedVerdicts,
  SystemEventType,
  signedEventSchema,
  subjectSchema,
  toBase64Url,
  verdictAbout,
  verdictsIn,
  type EventEnvelope,
  type EventId,
  type Result,
} from './index.js';
import { arbEnvelope, arbEventId, sampleEnvelope } from './testing.js';

const id = (n: number): EventId => newEventId(Date.UTC(2026, 0, 1), new Uint8Array(10).fill(n));
const ids = (count: number): EventId[] =>
  Array.from({ length: count }, (_, i) => newEventId(Date.UTC(2026, 0, 1) + i, new Uint8Array(10)));
const sig = toBase64Url(new Uint8Array(64).fill(9));

function expectSchemaError(r: Result<unknown>, label: string): void {
  expect(r.ok, `${label} was accepted`).toBe(false);
  if (!r.ok) {
    expect(r.error.code).toBe(ErrorCode.PROTOCOL_SCHEMA);
    expect(Array.isArray(r.error.details['issues'])).toBe(true);
    // Details are JSON-safe, for HTTP answers and logs.
    expect(() => JSON.stringify(r.error)).not.toThrow();
  }
}

type Mutation = readonly [label: string, mutate: (e: EventEnvelope) => unknown];
const set = (key: string, value: unknown) => (e: EventEnvelope) => ({ ...e, [key]: value });
const drop = (key: string) => (e: EventEnvelope) => {
  const copy: Record<string, unknown> = { ...e };
  delete copy[key];
  return copy;
};

// One or more representatives of every way an envelope can be invalid.
const mutations: readonly Mutation[] = [
  ['not an object', () => null],
  ['an array', (e) => [e]],
  ['unknown key', set('extra', 1)],
  ...['v', 'id', 'facility', 'device', 'seq', 'hlc', 'type', 'schema', 'subject', 'deps', 'data'].map(
    (k): Mutation => [`missing ${k}`, drop(k)],
  ),
  ['v 2', set('v', 2)],
  ['v "1"', set('v', '1')],
  ['id lowercase', (e) => ({ ...e, id: e.id.toLowerCase() })],
  ['id short', (e) => ({ ...e, id: e.id.slice(1) })],
  ['id number', set('id', 42)],
  ['facility empty', set('facility', '')],
  ['facility 65 chars', set('facility', 'f'.repeat(65))],
  ['facility with slash', set('facility', 'a/b')],
  ['device malformed', (e) => ({ ...e, device: e.device.slice(0, -1) })],
  ['device not d-prefixed', (e) => ({ ...e, device: 'x' + e.device.slice(1) })],
  ['seq 0', set('seq', 0)],
  ['seq negative', set('seq', -1)],
  ['seq fractional', set('seq', 1.5)],
  ['seq unsafe', set('seq', 2 ** 53)],
  ['seq string', set('seq', '1')],
  ['hlc malformed', set('hlc', '2026-01-01T00:00:00Z/0')],
  ['hlc impossible date', set('hlc', '2026-02-30T00:00:00.000Z/000000')],
  ['type leading digit', set('type', '1Patient')],
  ['type with dash', set('type', 'Patient-Registered')],
  ['type empty', set('type', '')],
  ['type 65 chars', set('type', 'T'.repeat(65))],
  ['schema 0', set('schema', 0)],
  ['schema fractional', set('schema', 1.5)],
  ['subject kind uppercase', (e) => ({ ...e, subject: { ...e.subject, kind: 'Patient' } })],
  ['subject kind 33 chars', (e) => ({ ...e, subject: { ...e.subject, kind: 'k'.repeat(33) } })],
  ['subject id empty', (e) => ({ ...e, subject: { ...e.subject, id: '' } })],
  ['subject id 129 chars', (e) => ({ ...e, subject: { ...e.subject, id: 'i'.repeat(129) } })],
  ['subject extra key', (e) => ({ ...e, subject: { ...e.subject, x: 1 } })],
  ['subject not object', set('subject', 'patient/1')],
  ['deps not array', set('deps', 'x')],
  ['deps too many', set('deps', ids(MAX_DEPS + 1))],
  ['deps duplicate', (e) => ({ ...e, deps: [id(1), id(1)] })],
  ['deps bad id', set('deps', ['nope'])],
  ['basis too many keys', set('basis', Object.fromEntries(ids(MAX_DEPS + 1).map((x, i) => [`f${i}`, x])))],
  ['basis bad value', set('basis', { name: 'nope' })],
  ['basis empty key', set('basis', { '': null })],
  ['basis __proto__ key', set('basis', JSON.parse('{"__proto__":null}') as unknown)],
  ['basis undefined', set('basis', undefined)],
  ['basis array', set('basis', [id(1)])],
  ['supersedes bad', set('supersedes', 'nope')],
  ['supersedes undefined', set('supersedes', undefined)],
  ['supersedes null', set('supersedes', null)],
  ['data NaN', set('data', Number.NaN)],
  ['data undefined', set('data', undefined)],
  ['data Date', set('data', new Date(0))],
  ['data nested Infinity', set('data', { a: [1, Infinity] })],
  ['data lone surrogate', set('data', '\ud800')],
];

describe('eventEnvelopeSchema', () => {
  it('accepts arbitrary valid envelopes, returning an equal value', () => {
    fc.assert(
      fc.property(arbEnvelope(), (e) => {
        const r = parseEnvelope(e);
        expect(r.ok).toBe(true);
        if (r.ok) expect(r.value).toEqual(e);
        expect(eventEnvelopeSchema.safeParse(e).success).toBe(true);
      }),
      { numRuns: 200 },
    );
    expect(
      parseEnvelope(
        sampleEnvelope({
          basis: Object.fromEntries(ids(MAX_DEPS).map((x, i) => [`f${i}`, x])),
          deps: ids(MAX_DEPS),
        }),
      ).ok,
    ).toBe(true);
  });

  it('rejects every mutation class with PROTOCOL_SCHEMA', () => {
    fc.assert(
      fc.property(arbEnvelope(), fc.constantFrom(...mutations), (e, [label, mutate]) => {
        expectSchemaError(parseEnvelope(mutate(e)), label);
      }),
      { numRuns: 400 },
    );
    // And each one at least once, deterministically.
    for (const [label, mutate] of mutations)
      expectSchemaError(parseEnvelope(mutate(sampleEnvelope())), label);
  });

  it('names the offending field', () => {
    const r = parseEnvelope({ ...sampleEnvelope(), seq: 0 });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.message).toContain('seq');
      expect(r.error.details['issues']).toEqual([expect.objectContaining({ path: 'seq' })]);
    }
  });
});

describe('isSignedEvent (the hand-written hot path)', () => {
  const agrees = (value: unknown, label: string): void => {
    expect(isSignedEvent(value), label).toBe(signedEventSchema.safeParse(value).success);
  };

  it('agrees with signedEventSchema on valid events and on every known mutation', () => {
    fc.assert(
      fc.property(arbEnvelope(), fc.uint8Array({ minLength: 64, maxLength: 64 }), (e, s) => {
        const signed = { ...e, sig: toBase64Url(s) };
        expect(isSignedEvent(signed)).toBe(true);
        for (const [label, mutate] of mutations) agrees(mutate(signed), label);
      }),
      { numRuns: 60 },
    );
    const e = { ...sampleEnvelope(), sig };
    agrees({ ...e, sig: sig.slice(1) }, 'short sig');
    agrees({ ...e, sig: 5 }, 'sig number');
    agrees(Object.fromEntries(Object.entries(e).filter(([k]) => k !== 'sig')), 'no sig');
    agrees({ ...e, basis: {}, supersedes: id(3) }, 'both optional keys');
  });

  it('agrees with signedEventSchema when any one field is replaced by arbitrary JSON', () => {
    const keys = [...Object.keys({ ...sampleEnvelope(), sig }), 'basis', 'supersedes', 'other'];
    fc.assert(
      fc.property(arbEnvelope(), fc.constantFrom(...keys), fc.jsonValue(), (e, key, value) => {
        agrees({ ...e, sig, [key]: value }, `${key} = ${JSON.stringify(value)}`);
      }),
      { numRuns: 300 },
    );
  });
});

describe('signedEventSchema', () => {
  it('accepts a valid envelope plus a canonical 64-byte signature, and nothing else', () => {
    fc.assert(
      fc.property(arbEnvelope(), fc.uint8Array({ minLength: 64, maxLength: 64 }), (e, s) => {
        expect(parseSignedEvent({ ...e, sig: toBase64Url(s) }).ok).toBe(true);
      }),
      { numRuns: 100 },
    );
    const e = sampleEnvelope();
    expectSchemaError(parseSignedEvent(e), 'missing sig');
    for (const bad of [
      sig.slice(1),
      sig + 'A',
      sig.slice(0, -1) + 'B',
      sig.slice(0, -1) + '=',
      toBase64Url(new Uint8Array(63)),
      5,
    ]) {
      expectSchemaError(parseSignedEvent({ ...e, sig: bad }), `sig ${String(bad)}`);
    }
    expectSchemaError(parseWith(signedEventSchema, { ...e, sig, extra: true }), 'extra key');
    for (const [label, mutate] of mutations.slice(3)) {
      expectSchemaError(parseSignedEvent({ ...(mutate(e) as object), sig }), label);
    }
  });
});

describe('subjectSchema', () => {
  it('accepts kinds with digits and dashes', () => {
    expect(subjectSchema.safeParse({ kind: 'stock-lot2', id: 'x' }).success).toBe(true);
  });
});

describe('system event data', () => {
  it('parses accepted and deadletter verdicts', () => {
    fc.assert(
      fc.property(arbEventId(), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (target, seq) => {
        expect(parseVerdictData({ target, outcome: 'accepted', seq, ruleSet: 'r1' }).ok).toBe(true);
      }),
      { numRuns: 50 },
    );
    const dead = {
      target: id(1),
      outcome: 'deadletter',
      code: 422,
      rule: 'RULE_NEGATIVE_STOCK',
      reason: 'stock would go negative',
      details: { lot: 'L1', balance: 2, requested: 5 },
      ruleSet: 'r1',
    };
    const r = parseVerdictData(dead);
    expect(r.ok && r.value).toEqual(dead);
    for (const code of [500, 422, 409, 404, 410, 403])
      expect(parseVerdictData({ ...dead, code }).ok).toBe(true);
  });

  it('rejects malformed verdicts with PROTOCOL_SCHEMA', () => {
    const accepted = { target: id(1), outcome: 'accepted', seq: 1, ruleSet: 'r1' };
    const dead = {
      target: id(1),
      outcome: 'deadletter',
      code: 409,
      rule: 'R',
      reason: '',
      details: {},
      ruleSet: 'r1',
    };
    const bad: [string, unknown][] = [
      ['null', null],
      ['unknown outcome', { ...accepted, outcome: 'maybe' }],
      ['seq 0', { ...accepted, seq: 0 }],
      ['missing ruleSet', { target: id(1), outcome: 'accepted', seq: 1 }],
      ['extra key', { ...accepted, extra: 1 }],
      ['bad target', { ...accepted, target: 'x' }],
      ['accepted with deadletter fields', { ...accepted, code: 409 }],
      ['code 418', { ...dead, code: 418 }],
      ['code as string', { ...dead, code: '409' }],
      ['empty rule', { ...dead, rule: '' }],
      ['details array', { ...dead, details: [] }],
      ['details NaN', { ...dead, details: { x: Number.NaN } }],
      ['reason too long', { ...dead, reason: 'r'.repeat(4097) }],
    ];
    for (const [label, v] of bad) expectSchemaError(parseVerdictData(v), label);
  });

  it('parses AcceptedVerdicts data and states one accepted verdict per target', () => {
    const targets = ids(3);
    const data = { ruleSet: 'r1', firstSeq: 7, targets };
    const r = parseAcceptedVerdictsData(data);
    expect(r.ok && r.value).toEqual(data);
    expect(readAcceptedVerdicts(data)).toEqual(data);
    expect(expandAcceptedVerdicts(data).map((v) => [v.target, v.outcome, v.seq, v.ruleSet])).toEqual([
      [targets[0], 'accepted', 7, 'r1'],
      [targets[1], 'accepted', 8, 'r1'],
      [targets[2], 'accepted', 9, 'r1'],
    ]);
    const batch = { type: SystemEventType.AcceptedVerdicts, data };
    expect(verdictAbout(batch, targets[1]!)).toEqual({
      target: targets[1],
      outcome: 'accepted',
      seq: 8,
      ruleSet: 'r1',
    });
    expect(verdictAbout(batch, id(99))).toBeUndefined();
    expect(verdictsIn(batch)).toEqual(expandAcceptedVerdicts(data));
    const single = {
      type: SystemEventType.Verdict,
      data: { target: id(5), outcome: 'accepted', seq: 2, ruleSet: 'r1' },
    };
    expect(verdictAbout(single, id(5))).toEqual(single.data);
    expect(verdictAbout(single, id(6))).toBeUndefined();
    expect(verdictsIn(single)).toEqual([single.data]);
    expect(verdictsIn({ type: SystemEventType.Verdict, data: { target: id(5) } })).toEqual([]);
    expect(verdictAbout({ type: 'PatientRegistered', data }, targets[0]!)).toBeUndefined();
    // The largest batch still fits in one event.
    const full = {
      ruleSet: 'r1',
      firstSeq: Number.MAX_SAFE_INTEGER - MAX_ACCEPTED_PER_EVENT,
      targets: ids(MAX_ACCEPTED_PER_EVENT),
    };
    expect(parseAcceptedVerdictsData(full).ok).toBe(true);
    expect(JSON.stringify(full).length).toBeLessThan(MAX_EVENT_BYTES / 2);
  });

  it('rejects malformed AcceptedVerdicts data with PROTOCOL_SCHEMA', () => {
    const good = { ruleSet: 'r1', firstSeq: 1, targets: ids(2) };
    const bad: [string, unknown][] = [
      ['null', null],
      ['no targets', { ...good, targets: [] }],
      ['duplicate target', { ...good, targets: [id(1), id(1)] }],
      ['too many targets', { ...good, targets: ids(MAX_ACCEPTED_PER_EVENT + 1) }],
      ['bad target', { ...good, targets: ['x'] }],
      ['firstSeq 0', { ...good, firstSeq: 0 }],
      ['firstSeq fraction', { ...good, firstSeq: 1.5 }],
      ['missing ruleSet', { firstSeq: 1, targets: ids(1) }],
      ['extra key', { ...good, outcome: 'accepted' }],
    ];
    for (const [label, v] of bad) expectSchemaError(parseAcceptedVerdictsData(v), label);
    expect(readAcceptedVerdicts({ ...good, firstSeq: 0 })).toBeUndefined();
    expect(readAcceptedVerdicts({ ...good, targets: [1] })).toBeUndefined();
    expect(readAcceptedVerdicts({ ...good, targets: 'x' })).toBeUndefined();
    expect(
      verdictAbout(
        { type: SystemEventType.AcceptedVerdicts, data: { ...good, targets: [id(1), id(1)] } },
        id(1),
      ),
    ).toBeUndefined();
  });

  it('parses RetryRequested and DeadletterDiscarded data', () => {
    expect(parseRetryRequestedData({ target: id(2) })).toEqual({ ok: true, value: { target: id(2) } });
    expectSchemaError(parseRetryRequestedData({ target: id(2), why: 'x' }), 'retry extra');
    expectSchemaError(parseRetryRequestedData({}), 'retry empty');
    expect(parseDeadletterDiscardedData({ target: id(2), reason: 'leave server version' }).ok).toBe(true);
    expectSchemaError(parseDeadletterDiscardedData({ target: id(2) }), 'discard without reason');
    expectSchemaError(parseDeadletterDiscardedData({ target: 'x', reason: '' }), 'discard bad target');
  });
});
