// A device whose store lost its newest writes must never reuse a sequence number (issue #13,
// scenario 7). Measured: cutting the newest LevelDB `.log` of a stopped device back into the
// batch that held its last own events, the device started silently without its acknowledged
// events, took their numbers again for its next append and forked from its peers for good
// (`LOG_CONFLICTING_EVENT … used seq 7 twice`, now reported as `LOG_EQUIVOCATION`). And a byte flipped in a table file (`.ldb`)
// stopped the agent from starting at all. Real processes, real LevelDB, real WebSockets.
import { cp, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Level } from 'level';
import { initDevice } from '@accord/device';
import { eventStoreRawKey } from '@accord/storage-level';
import { AgentProcess, agentWorkspace, eventually, registration } from './test-support.js';

const { path, agents } = agentWorkspace('accord-store-loss-');

interface Own {
  loss?: { from: number; to: number; repaired: boolean };
  check: string;
  suspiciousStart: boolean;
}
interface Status {
  integrity: { holes: unknown[]; own?: Own; setAside?: { path: string; reason: string } };
}
interface Listed {
  event: { id: string; device: string; seq: number };
}

const LOG_BLOCK = 32 * 1024;
const LOG_HEADER = 7;

/** Offset of the first occurrence of `needle` in `haystack`, or -1. */
function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Cuts the newest write-ahead log of the stopped LevelDB at `dir` in the middle of the record
 * (one write batch) holding `needle`: LevelDB reads it as a torn tail, as after a disk that lost
 * the end of the log, and drops it and everything after it on the next open. Returns the cut.
 */
async function tearLogAt(
  dir: string,
  needle: Uint8Array,
): Promise<{ file: string; at: number; size: number }> {
  const logs = (await readdir(dir)).filter((f) => f.endsWith('.log')).sort();
  const file = join(dir, logs.at(-1)!);
  const bytes = new Uint8Array(await readFile(file));
  // LevelDB's log format: 32 KB blocks of records, each `crc32 u32 | length u16 LE | type u8 | payload`.
  for (let offset = 0; offset + LOG_HEADER <= bytes.length;) {
    const left = LOG_BLOCK - (offset % LOG_BLOCK);
    if (left < LOG_HEADER) {
      offset += left;
      continue;
    }
    const length = bytes[offset + 4]! | (bytes[offset + 5]! << 8);
    const payload = bytes.subarray(offset + LOG_HEADER, offset + LOG_HEADER + length);
    if (indexOf(payload, needle) >= 0) {
      const at = offset + LOG_HEADER + Math.floor(length / 2);
      await truncate(file, at);
      return { file, at, size: bytes.length };
    }
    offset += LOG_HEADER + length;
  }
  throw new Error(`no record of ${file} holds the needle`);
}

async function startPair(prefix: string): Promise<{ a: AgentProcess; b: AgentProcess; roster: string }> {
  const roster = path(`${prefix}-roster.json`);
  await initDevice({ data: path(`${prefix}-a`), facility: 'clinic-7', name: 'A', roster });
  await initDevice({ data: path(`${prefix}-b`), facility: 'clinic-7', name: 'B', roster });
  const b = await AgentProcess.start([
    '--data',
    path(`${prefix}-b`),
    '--listen',
    '0',
    '--listen-host',
    '127.0.0.1',
    '--http',
    '0',
  ]);
  agents.push(b);
  const a = await AgentProcess.start(['--data', path(`${prefix}-a`), '--peer', b.peerUrl, '--http', '0']);
  agents.push(a);
  return { a, b, roster };
}

async function appendTen(a: AgentProcess, b: AgentProcess): Promise<string[]> {
  const ids: string[] = [];
  for (let n = 1; n <= 10; n++) {
    const answer = await a.api<{ id: string; event: { seq: number } }>(
      'POST',
      '/api/events',
      registration(n),
    );
    expect(answer.status).toBe(201);
    ids.push(answer.json.id);
  }
  await eventually('B to hold all ten of A’s events', async () => {
    const listed = (await b.api<Listed[]>('GET', `/api/events?device=${a.ready.device}`)).json;
    return listed.length === 10;
  });
  return ids;
}

describe('a device whose store lost its newest writes', () => {
  it('never reuses a sequence number: it reports the loss, takes the lost events back from a peer and appends after them', async () => {
    const { a: first, b } = await startPair('wal');
    const ids = await appendTen(first, b);
    const originals = await Promise.all(ids.map(async (id) => (await b.text(`/api/events/${id}`)).text));
    const device = first.ready.device;
    expect(await first.stop('SIGTERM')).toMatchObject({ code: 0 });

    // The disk loses the tail of LevelDB's log from inside the batch that stored own event 7.
    const cut = await tearLogAt(path('wal-a', 'db'), eventStoreRawKey({ kind: 'event', device, seq: 7 }));
    expect(cut.at).toBeLessThan(cut.size);

    const a = await AgentProcess.start(['--data', path('wal-a'), '--peer', b.peerUrl, '--http', '0']);
    agents.push(a);
    // Appended at once: the append waits for B to show A its own history.
    const next = await a.api<{ id: string; event: { seq: number } }>('POST', '/api/events', registration(11));
    expect(next.status).toBe(201);
    expect(next.json.event.seq).toBe(11);

    const own = (await a.api<Status>('GET', '/api/status')).json.integrity.own;
    expect(own).toMatchObject({
      loss: { from: 7, to: 10, repaired: true },
      check: 'checked',
      suspiciousStart: true,
    });
    // The acknowledged events came back, byte for byte.
    for (const [i, id] of ids.entries()) expect((await a.text(`/api/events/${id}`)).text).toBe(originals[i]);
    // No fork: B takes A's next event and never saw a seq used twice.
    await eventually(
      'B to hold A’s eleventh event',
      async () => (await b.api('GET', `/api/events/${next.json.id}`)).status === 200,
    );
    expect(b.stderr).not.toContain('LOG_EQUIVOCATION');
    expect(a.stderr).not.toContain('LOG_EQUIVOCATION');
  });

  it('never reuses a sequence number after a kill and a torn log tail either', async () => {
    const { a: first, b } = await startPair('kill');
    const ids = await appendTen(first, b);
    const device = first.ready.device;
    await first.stop('SIGKILL');
    await tearLogAt(path('kill-a', 'db'), eventStoreRawKey({ kind: 'event', device, seq: 7 }));

    const a = await AgentProcess.start(['--data', path('kill-a'), '--peer', b.peerUrl, '--http', '0']);
    agents.push(a);
    const next = await a.api<{ id: string; event: { seq: number } }>('POST', '/api/events', registration(11));
    expect(next.json.event.seq).toBe(11);
    // An unclean stop is a suspicious start whatever the mark had recorded of the acknowledgements.
    expect((await a.api<Status>('GET', '/api/status')).json.integrity.own).toMatchObject({
      check: 'checked',
      suspiciousStart: true,
    });
    for (const id of ids) expect((await a.api('GET', `/api/events/${id}`)).status).toBe(200);
    await eventually(
      'B to hold A’s eleventh event',
      async () => (await b.api('GET', `/api/events/${next.json.id}`)).status === 200,
    );
    expect(b.stderr).not.toContain('LOG_EQUIVOCATION');
  });

  it('starts despite a damaged table file: sets the database aside, says so, and repairs it from a peer', async () => {
    const { a: first, b } = await startPair('ldb');
    const ids = await appendTen(first, b);
    const device = first.ready.device;
    await first.stop('SIGTERM');
    // A second start moves the write-ahead log into a table file (.ldb).
    const second = await AgentProcess.start(['--data', path('ldb-a'), '--http', '0']);
    agents.push(second);
    await second.stop('SIGTERM');

    const dbDir = path('ldb-a', 'db');
    const tables = (await readdir(dbDir)).filter((f) => f.endsWith('.ldb'));
    expect(tables.length).toBeGreaterThan(0);
    const sizes = await Promise.all(tables.map(async (t) => (await stat(join(dbDir, t))).size));
    const table = join(dbDir, tables[sizes.indexOf(Math.max(...sizes))]!);
    const bytes = new Uint8Array(await readFile(table));
    // The first byte of the first data block: the header of its first entry (or of its
    // compressed contents), which LevelDB decodes on every read of the block.
    bytes[0] = bytes[0]! ^ 0xff;
    await writeFile(table, bytes);
    // Precondition: LevelDB itself cannot read the damaged database through (checked on a copy).
    const probe = path('ldb-probe');
    await cp(dbDir, probe, { recursive: true });
    const raw = new Level(probe);
    await raw.open();
    await expect(
      (async () => {
        for await (const _ of raw.iterator()) {
          // reading every entry
        }
      })(),
    ).rejects.toThrow(/Corruption/);
    await raw.close();

    // Started alone first: it comes up, sets the damaged database aside and says so.
    const alone = await AgentProcess.start(['--data', path('ldb-a'), '--http', '0']);
    agents.push(alone);
    const status = (await alone.api<Status>('GET', '/api/status')).json.integrity;
    expect(status.setAside?.reason).toMatch(/Corruption/);
    expect(status.setAside?.path.startsWith(path('ldb-a', 'quarantine'))).toBe(true);
    expect((await readdir(status.setAside!.path)).length).toBeGreaterThan(0);
    expect(status.own?.suspiciousStart).toBe(true);
    expect(alone.stderr).toContain('set aside');
    await alone.stop('SIGTERM');

    // With its peer: what the peer holds comes back, and the sequence goes on after it.
    const a = await AgentProcess.start(['--data', path('ldb-a'), '--peer', b.peerUrl, '--http', '0']);
    agents.push(a);
    await eventually('A to hold its ten events again', async () => {
      const listed = (await a.api<Listed[]>('GET', `/api/events?device=${device}`)).json;
      return listed.length === 10;
    });
    const next = await a.api<{ id: string; event: { seq: number } }>('POST', '/api/events', registration(11));
    expect(next.json.event.seq).toBe(11);
    for (const id of ids) expect((await a.api('GET', `/api/events/${id}`)).status).toBe(200);
    expect(b.stderr).not.toContain('LOG_EQUIVOCATION');
  });
});
