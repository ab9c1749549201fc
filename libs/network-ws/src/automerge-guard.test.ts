import { deflateRawSync } from 'node:zlib';
import * as A from '@automerge/automerge';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { measureSyncMessage } from './automerge-guard.js';

const MAGIC = [0x85, 0x6f, 0x4a, 0x83];

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** A chunk: magic, (unchecked) checksum, type, length, body. */
function chunk(type: number, body: Uint8Array): Uint8Array {
  return Uint8Array.from([...MAGIC, 0, 0, 0, 0, type, ...uleb(body.length), ...body]);
}

/** The body of a chunk (after magic, checksum, type and the LEB128 length). */
function chunkBody(c: Uint8Array): Uint8Array {
  let at = 9;
  while ((c[at]! & 0x80) !== 0) at++;
  return c.subarray(at + 1);
}

function syncWith(changes: Uint8Array[]): Uint8Array {
  return A.encodeSyncMessage({ heads: [], need: [], have: [], changes });
}

/** Runs the sync protocol from `doc` to an empty peer; returns the first message carrying changes. */
function firstMessageWithChanges(doc: A.Doc<unknown>): Uint8Array {
  let a = doc;
  let b = A.init<unknown>();
  let sa = A.initSyncState();
  let sb = A.initSyncState();
  for (let i = 0; i < 4; i++) {
    let m: Uint8Array | null;
    [sa, m] = A.generateSyncMessage(a, sa);
    if (m !== null && A.decodeSyncMessage(m).changes.length > 0) return m;
    if (m !== null) [b, sb] = A.receiveSyncMessage(b, sb, m);
    let n: Uint8Array | null;
    [sb, n] = A.generateSyncMessage(b, sb);
    if (n !== null) [a, sa] = A.receiveSyncMessage(a, sa, n);
  }
  throw new Error('no message with changes');
}

describe('measureSyncMessage', () => {
  it('measures a real whole-document sync message at its inflated size', () => {
    const doc = A.from({ big: new A.ImmutableString('x'.repeat(2_000_000)) });
    const message = firstMessageWithChanges(doc);
    expect(message.length).toBeLessThan(20_000); // compressed on the wire…
    const measured = measureSyncMessage(message, 100_000_000);
    expect(measured.ok && measured.expandedBytes).toBeGreaterThan(2_000_000); // …2 MB once inflated
    expect(measureSyncMessage(message, 1_000_000)).toMatchObject({ ok: false, problem: 'too-large' });
  });

  it('measures uncompressed change chunks at their size', () => {
    let doc = A.from({ a: 1 });
    const before = A.getHeads(doc);
    doc = A.change(doc, (d: { a: number; b?: string }) => {
      d.b = 'y'.repeat(50_000);
    });
    const changes = A.getChanges(A.view(doc, before), doc);
    const measured = measureSyncMessage(syncWith(changes), 10_000_000);
    expect(measured.ok).toBe(true);
    if (measured.ok) {
      expect(measured.expandedBytes).toBeGreaterThanOrEqual(50_000);
      expect(measured.expandedBytes).toBeLessThan(60_000);
    }
  });

  it('refuses a compressed change chunk that inflates over the budget, and accepts it under', () => {
    const change = A.getLastLocalChange(
      A.change(A.from({ a: 1 }), (d: { a: number; b?: string }) => (d.b = 'z'.repeat(200_000))),
    )!;
    expect(change[8]).toBe(1); // an uncompressed change chunk…
    // …re-wrapped as a compressed change chunk (type 2): same body, DEFLATE-compressed.
    const compressed = chunk(2, deflateRawSync(chunkBody(change)));
    expect(compressed.length).toBeLessThan(10_000);
    expect(measureSyncMessage(syncWith([compressed]), 100_000)).toMatchObject({
      ok: false,
      problem: 'too-large',
    });
    const measured = measureSyncMessage(syncWith([compressed]), 10_000_000);
    expect(measured.ok && measured.expandedBytes).toBeGreaterThan(200_000);
  });

  it('refuses a document chunk whose deflated column is a bomb, without inflating it all', () => {
    const bomb = deflateRawSync(new Uint8Array(64 * 1024 * 1024)); // 64 MiB of zeros in ~64 KiB
    const deflatedColumn = (1 << 4) | 0b1000 | 2;
    const body = Uint8Array.from([0, 0, 0, 1, ...uleb(deflatedColumn), ...uleb(bomb.length), ...bomb]);
    const started = performance.now();
    expect(measureSyncMessage(syncWith([chunk(0, body)]), 1_000_000)).toMatchObject({
      ok: false,
      problem: 'too-large',
    });
    // Inflation stopped at the budget: far less work than inflating 64 MiB.
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('counts every deflated column of a document chunk against one budget, and refuses corrupt ones', () => {
    const deflatedColumn = (spec: number) => uleb((spec << 4) | 0b1000 | 2);
    const docWith = (...columns: Uint8Array[]): Uint8Array =>
      syncWith([
        chunk(
          0,
          Uint8Array.from([
            0, // actors
            0, // heads
            columns.length,
            ...columns.flatMap((c, i) => [...deflatedColumn(i + 1), ...uleb(c.length)]),
            0, // op columns
            ...columns.flatMap((c) => [...c]),
          ]),
        ),
      ]);
    const sixty = deflateRawSync(new Uint8Array(60_000).fill(9));
    const two = docWith(sixty, sixty);
    const measured = measureSyncMessage(two, 1_000_000);
    expect(measured.ok && measured.expandedBytes).toBeGreaterThanOrEqual(120_000);
    // Each column alone fits 100 000 bytes; the two together do not.
    expect(measureSyncMessage(docWith(sixty), 100_000)).toMatchObject({ ok: true });
    expect(measureSyncMessage(two, 100_000)).toMatchObject({ ok: false, problem: 'too-large' });
    for (const bad of [Uint8Array.from([0xff, 0xff, 0xff]), sixty.subarray(0, sixty.length - 3)]) {
      expect(measureSyncMessage(docWith(sixty, bad), 1_000_000)).toMatchObject({
        ok: false,
        problem: 'malformed',
      });
      // The next message is measured as if nothing had happened.
      expect(measureSyncMessage(two, 1_000_000)).toEqual(measured);
    }
  });

  it('refuses malformed data as malformed', () => {
    const good = chunk(0, Uint8Array.from([0, 0, 0, 0]));
    expect(measureSyncMessage(syncWith([good]), 1_000)).toMatchObject({ ok: true });
    const cases: [string, Uint8Array][] = [
      ['not a sync message', Uint8Array.from([0x42, 1, 2, 3])],
      ['bad magic', syncWith([Uint8Array.from([1, 2, 3, 4, 0, 0, 0, 0, 0, 0])])],
      ['truncated chunk', syncWith([good.subarray(0, good.length - 1)])],
      ['unknown chunk type', syncWith([chunk(7, Uint8Array.from([0]))])],
      ['corrupt deflate', syncWith([chunk(2, Uint8Array.from([0xff, 0xff, 0xff]))])],
      ['column past the end', syncWith([chunk(0, Uint8Array.from([0, 0, 1, 2, 100, 0]))])],
      [
        'overlong LEB128',
        syncWith([
          chunk(0, Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])),
        ]),
      ],
    ];
    for (const [name, message] of cases) {
      expect(measureSyncMessage(message, 1_000_000), name).toMatchObject({ ok: false, problem: 'malformed' });
    }
  });

  it('never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, asChunk) => {
        const message = asChunk ? syncWith([chunk((bytes[0] ?? 0) % 3, bytes.subarray(1))]) : bytes;
        const r = measureSyncMessage(message, 10_000);
        expect(typeof r.ok).toBe('boolean');
      }),
    );
  });
});
