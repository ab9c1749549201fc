// The anchors of the device section of `npm run bench`, measured in the same run as what they
// anchor (machines of one kind differ up to 2× from day to day, so only the ratio means much):
// - stock automerge-repo moving the same events into a new client (`automerge_repo_cold_sync_100k_s`),
//   the anchor of Accord's cold sync;
// - node:crypto Ed25519 signing on one thread (`ed25519_sign_per_s_1core`), the anchor of appends
//   (every append signs one event);
// - concurrent WebCrypto Ed25519 verification (`benchVerifyRate`), the anchor of the relay's
//   verdicts and ingest and of the simulator's deliveries.
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSignedEvent, verifyEvents, type SignedEvent } from '@accord/protocol';
import { settleHarness } from './stats.js';
import { startBenchChild, stopBenchChild } from './sync-bench.js';

/**
 * Seconds stock automerge-repo 2.5.6 takes to move `events` into a new client over loopback.
 *
 * @remarks Serving side: its own `NodeWSServerAdapter` and `NodeFSStorageAdapter`, one document
 * holding every event as an `ImmutableString` (the event's canonical JSON) keyed by event id,
 * built 100 events per change. Client: its own `BrowserWebSocketClientAdapter`, no storage, timed
 * from `find` until it holds the serving side's heads. Both are processes of their own, as
 * Accord's cold sync is; neither verifies nor stores durably what it receives.
 */
export async function benchAutomergeRepoColdSync(
  events: readonly SignedEvent[],
): Promise<{ automerge_repo_cold_sync_100k_s: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'accord-bench-anchor-'));
  const decoder = new TextDecoder();
  const file = join(dir, 'events.ndjson');
  await writeFile(file, events.map((e) => decoder.decode(encodeSignedEvent(e))).join('\n') + '\n');
  const served = await startBenchChild('anchor-serve.ts', [join(dir, 'store'), file]);
  try {
    const ready = await served.next();
    if (ready['events'] !== events.length) throw new Error('the anchor server did not load every event');
    await settleHarness();
    const client = await startBenchChild('anchor-receive.ts', [
      `ws://127.0.0.1:${String(ready['port'])}`,
      String(ready['url']),
      JSON.stringify(ready['heads']),
      String(events.length),
    ]);
    const done = await client.next();
    await new Promise((resolve) => client.child.once('exit', resolve));
    return { automerge_repo_cold_sync_100k_s: done['seconds'] as number };
  } finally {
    await stopBenchChild(served.child);
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Ed25519 signatures per second on one thread (node:crypto, synchronous), over the canonical
 * bytes of the bench's own events: the ceiling of one appending device.
 */
export function benchSignRate(events: readonly SignedEvent[]): { ed25519_sign_per_s_1core: number } {
  const { privateKey } = generateKeyPairSync('ed25519');
  const sample = events.slice(0, 20_000).map((e) => encodeSignedEvent(e));
  // Warm the path first, then time a fixed count.
  for (const bytes of sample.slice(0, 500)) sign(null, bytes, privateKey);
  const start = performance.now();
  for (const bytes of sample) sign(null, bytes, privateKey);
  const seconds = (performance.now() - start) / 1000;
  return { ed25519_sign_per_s_1core: sample.length / seconds };
}

/**
 * Concurrent WebCrypto Ed25519 verifications per second over `sample` (`verifyEvents`, on the
 * thread pool: every core), after a warm-up (key imports, thread pool). Throws if one of them does
 * not verify: the rate of a check that fails would measure something else.
 */
export async function benchVerifyRate(sample: readonly SignedEvent[]): Promise<number> {
  await verifyEvents(sample.slice(0, 1000));
  const start = performance.now();
  const results = await verifyEvents(sample);
  const rate = (sample.length / (performance.now() - start)) * 1000;
  const bad = results.filter((ok) => !ok).length;
  if (bad > 0) throw new Error(`${bad} of the sampled events do not verify`);
  return rate;
}
