// The relay section of `npm run bench`: how fast a relay turns a cold backlog into signed
// verdicts, next to the Ed25519 verification rate of the same machine in the same run (the
// physical limit of a relay that checks every signature), and the relay's memory while it
// works through many facilities one after another, unloading the idle ones.
//
// The relay runs in child processes (this file, started with `--child`): its resident memory
// is its own, not the generator's, and the Ed25519 rates are measured in the relay's process,
// with its flags, right before and after the backlog it is compared with.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildFacility, randomFacilityOps } from '@accord/domain/testing';
import {
  encodeSignedEvent,
  exportDeviceKey,
  eventIdFor,
  eventIdTime,
  generateDeviceKey,
  signEvent,
  type DeviceId,
  type DeviceKeyPair,
  type EventEnvelope,
  type EventId,
  type FacilityId,
  type SignedEvent,
} from '@accord/protocol';
import {
  createRelayLogger,
  enrollMember,
  openRelayFolder,
  Relay,
  type FacilityNode,
  type RelayFolderLayout,
} from '@accord/relay';
import { openDeviceDatabase } from '@accord/storage-level';
import { ensureBundle } from '../../apps/accord/bin/bundle.mjs';
import { benchVerifyRate } from './anchor-bench.js';
import { BENCH_FACILITY } from './log-bench.js';
import { mainThreadCpuS, progress, runConcurrent, settleHarness, threadCpuS } from './stats.js';
import { startBenchChild, stopBenchChild, type BenchChild } from './sync-bench.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SELF = fileURLToPath(import.meta.url);

/** Devices (tablets) recording each generated facility's history. */
const DEVICES = 4;
/** Events signed concurrently (WebCrypto signs on the thread pool: both cores). */
const SIGN_CONCURRENCY = 256;
/** Events per `eventStore.append` while writing a backlog. */
const WRITE_BATCH = 2000;
/** How long the memory run lets a finished facility sit before the relay unloads it as idle. */
const IDLE_UNLOAD_MS = 250;
/** Events whose verification (and signing) is timed for the Ed25519 reference rates. */
const CRYPTO_SAMPLE = 20_000;
/** A facility that is not verdicted within this long is reported as stalled. */
const STALL_MS = 900_000;

/** Sizes of the relay section. */
export interface RelayBenchOptions {
  /** Events in the cold backlog whose validation rate is measured (default 100k). */
  readonly events: number;
  /** Facilities of the memory run, processed one at a time (default 20; 0 skips the run). */
  readonly facilities: number;
  /** Events per facility of the memory run (default 50k). */
  readonly facilityEvents: number;
  /** Events the ingest run's devices push to the relay over the network (default 100k; 0 skips it). */
  readonly ingestEvents: number;
}

/** What the relay section measured (numbers only: they go to bench.json and the table). */
export interface RelayBenchResult {
  /** Submissions of the cold backlog verdicted per second: open + every verdict durable. */
  readonly relay_validated_per_s: number;
  /** `relay_validated_per_s` / `ed25519_verify_per_s` (target ≥ 0.5). */
  readonly relay_validated_ratio: number;
  /** Concurrent WebCrypto Ed25519 verifications per second in the relay's process (mean of before and after). */
  readonly ed25519_verify_per_s: number;
  /** Concurrent WebCrypto Ed25519 signatures per second, same process (the relay signs every verdict). */
  readonly ed25519_sign_per_s: number;
  /** Events of the cold backlog. */
  readonly relay_backlog_events: number;
  /** Seconds from the first `relay.facility()` call until every verdict is durable. */
  readonly relay_cold_s: number;
  /** Of which: opening the facility (reading the store, loading the log and the adjudicator). */
  readonly relay_open_s: number;
  /** Accepted verdicts of the cold backlog (the rest are deadletters). */
  readonly relay_accepted: number;
  /** Deadletter verdicts of the cold backlog. */
  readonly relay_deadlettered: number;
  /** Peak RSS of the relay process over the cold backlog (MB, kernel high-water mark). */
  readonly relay_rss_peak_mb_cold: number;
  /** Seconds to stop the relay after the cold backlog (closing the facility, flushing its log). */
  readonly relay_stop_s: number;
}

/** What the ingest run measured (absent when it was skipped). */
export interface RelayIngestResult {
  /** Events per second from {@link DEVICES} device processes into a relay process, each with a durable verdict. */
  readonly relay_ingest_per_s: number;
  /** `relay_ingest_per_s` / `ed25519_verify_per_s` of the same run (target ≥ 0.5). */
  readonly relay_ingest_ratio: number;
  /** Events pushed in the ingest run. */
  readonly relay_ingest_events: number;
}

/** What the memory run measured (absent when it was skipped). */
export interface RelayMemoryResult {
  /** Peak RSS (MB) of the relay process over the memory run (kernel high-water mark). */
  readonly relay_rss_mb_20x50k: number;
  /** RSS (MB) of the relay once every facility of the memory run is unloaded and garbage collected. */
  readonly relay_rss_settled_mb_20x50k: number;
  /** V8 heap in use (MB) at that point: what the unloaded facilities still hold in JavaScript. */
  readonly relay_heap_settled_mb_20x50k: number;
  /** Facilities of the memory run. */
  readonly relay_facilities: number;
  /** Events per facility of the memory run. */
  readonly relay_facility_events: number;
}

/** A relay child's report on one facility. */
interface FacilityReport {
  readonly event: 'facility';
  readonly facility: string;
  readonly open_s: number;
  readonly verdict_s: number;
  readonly verdicts: number;
  readonly accepted: number;
  readonly deadletters: number;
}

/** Ed25519 rates measured in a relay child. */
interface RatesReport {
  readonly event: 'rates';
  readonly verify: number;
  readonly sign: number;
}

/** A relay child's last line. */
interface DoneReport {
  readonly event: 'done';
  readonly rss_peak_mb: number;
  readonly rss_settled_mb: number;
  readonly heap_settled_mb: number;
  readonly stop_s: number;
}

/** The ingest relay child is listening. */
interface ReadyReport {
  readonly event: 'ready';
  readonly port: number;
  readonly id: DeviceId;
}

/** The ingest relay child's report: from `go` until every pushed event has a durable verdict. */
interface IngestReport {
  readonly event: 'ingest';
  readonly seconds: number;
  readonly verdicts: number;
  readonly accepted: number;
}

type ChildLine = FacilityReport | RatesReport | DoneReport | ReadyReport | IngestReport;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (bytes: number): number => bytes / 1048576;
/** The kernel's high-water mark of this process's resident memory, in MB (Linux reports KiB). */
const peakRssMb = (): number => process.resourceUsage().maxRSS / 1024;
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
const trace = process.env['ACCORD_BENCH_TRACE'] !== undefined;

/** Threads Node 20 starts before any code runs: V8's four platform workers, its delayed-task scheduler, the signal watchdog. */
const V8_PLATFORM_THREADS = 6;

/** Ids of the threads this process had before it ran any of its own code (V8's helpers, Node's own). */
const STARTUP_THREADS = new Set(trace ? await readdir('/proc/self/task').catch(() => []) : []);

/**
 * CPU per thread between two {@link threadCpuS} readings: the main thread, V8's platform threads
 * (concurrent garbage collection and compilation), the others started before `before` (libuv's
 * pool: LevelDB's reads and writes), and each thread started since (the verifier pool's workers,
 * started at the first verification; LevelDB's compaction thread), with ms per event.
 */
function threadCpuDelta(before: Map<string, number>, after: Map<string, number>, events: number): string {
  const groups = new Map<string, number>();
  // Node starts V8's platform threads (4 workers, the delayed-task scheduler) and its signal thread
  // before anything else; libuv's pool comes with the first file read, which the module loader
  // may already have made.
  const early = [...STARTUP_THREADS]
    .filter((tid) => tid !== String(process.pid))
    .map(Number)
    .sort((a, b) => a - b)
    .slice(0, V8_PLATFORM_THREADS)
    .map(String);
  for (const [tid, s] of after) {
    const name =
      tid === String(process.pid)
        ? 'main'
        : early.includes(tid)
          ? 'v8-platform'
          : STARTUP_THREADS.has(tid) || before.has(tid)
            ? 'libuv-pool'
            : `new-${tid}`;
    groups.set(name, (groups.get(name) ?? 0) + s - (before.get(tid) ?? 0));
  }
  return [...groups]
    .sort((a, b) => b[1] - a[1])
    .map(([name, s]) => `${name} ${s.toFixed(2)} s (${((s * 1e3) / events).toFixed(3)} ms/event)`)
    .join(', ');
}

function note(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

// ------------------------------------------------------------------ generating backlogs

type History = { readonly events: readonly SignedEvent[]; readonly devices: readonly DeviceId[] };

/**
 * A valid facility history of at least `count` events (registrations, demographics, stock,
 * vaccinations, encounters, appointments, merges) from {@link DEVICES} devices, unsigned.
 *
 * @remarks Every event passes the rules in generation order, and any prefix of the history is a
 * valid history too (per-device `seq` contiguous, dependencies earlier), so facilities of
 * different sizes share one generation.
 */
function generateHistory(count: number): History {
  let ops = Math.ceil(count * 1.05) + 100;
  for (;;) {
    const history = buildFacility(randomFacilityOps(ops, 20_260_101, { devices: DEVICES }), {
      devices: DEVICES,
    });
    if (history.events.length >= count) return history;
    ops = Math.ceil(ops * 1.2);
  }
}

/** Fresh device keys for `facility`, enrolled in its `members.json`, standing in for `history`'s devices. */
async function enrollDevices(
  layout: RelayFolderLayout,
  facility: FacilityId,
  history: History,
): Promise<Map<DeviceId, DeviceKeyPair>> {
  const keys = new Map<DeviceId, DeviceKeyPair>();
  for (const [i, device] of history.devices.entries()) {
    const key = await generateDeviceKey();
    keys.set(device, key);
    await enrollMember(layout, facility, { id: key.deviceId, name: `${facility} tablet ${i + 1}` });
  }
  return keys;
}

/**
 * Writes the first `count` events of `history` into facility `facility` of a relay folder, as
 * that facility's own devices (`keys`, see {@link enrollDevices}) would have submitted them:
 * every event re-signed by its device for this facility, stored in the facility's LevelDB event
 * store with no verdict. Returns the first `keep` signed events.
 */
async function writeBacklog(
  layout: RelayFolderLayout,
  facility: FacilityId,
  keys: ReadonlyMap<DeviceId, DeviceKeyPair>,
  history: History,
  count: number,
  keep = 0,
): Promise<SignedEvent[]> {
  const db = await openDeviceDatabase(layout.facilityDb(facility));
  const kept: SignedEvent[] = [];
  let writing: Promise<void> = Promise.resolve();
  // Event ids are bound to their author and seq (`eventIdFor`): the history's ids are made again
  // for this facility's devices, and every reference to them (deps, basis, supersedes) follows.
  // Events only refer to earlier ones, so the map is complete when an event is rebound.
  const rebound = new Map<string, EventId>();
  const byDevice = new Map([...keys.values()].map((k) => [k.deviceId, k]));
  const ref = (id: EventId): EventId => rebound.get(id) ?? id;
  try {
    for (let from = 0; from < count; from += WRITE_BATCH) {
      const source = history.events.slice(from, Math.min(count, from + WRITE_BATCH));
      const envelopes = source.map(({ sig: _placeholder, ...e }): EventEnvelope => {
        const device = keys.get(e.device)!.deviceId;
        const id = eventIdFor(eventIdTime(e.id), device, e.seq);
        rebound.set(e.id, id);
        return {
          ...e,
          id,
          device,
          facility,
          deps: e.deps.map(ref),
          ...(e.supersedes === undefined ? {} : { supersedes: ref(e.supersedes) }),
          ...(e.basis === undefined
            ? {}
            : {
                basis: Object.fromEntries(
                  Object.entries(e.basis).map(([field, id]) => [field, id === null ? null : ref(id)]),
                ),
              }),
        };
      });
      const signed = new Array<SignedEvent>(source.length);
      await runConcurrent(source.length, SIGN_CONCURRENCY, async (i) => {
        const envelope = envelopes[i]!;
        signed[i] = await signEvent(envelope, byDevice.get(envelope.device)!);
      });
      // Signing the next batch overlaps with writing this one.
      await writing;
      writing = db.eventStore.append(
        signed.map((e) => ({ device: e.device, seq: e.seq, id: e.id, bytes: encodeSignedEvent(e) })),
      );
      if (kept.length < keep) kept.push(...signed.slice(0, keep - kept.length));
      progress(`backlog ${facility}`, Math.min(count, from + WRITE_BATCH), count);
    }
    await writing;
  } finally {
    await db.close();
  }
  return kept;
}

// ------------------------------------------------------------------ the relay process

/** Concurrent WebCrypto Ed25519 verifications and signatures per second over `sample`. */
async function cryptoRates(sample: readonly SignedEvent[]): Promise<{ verify: number; sign: number }> {
  const verify = await benchVerifyRate(sample);
  const key = await generateDeviceKey();
  const start = performance.now();
  await runConcurrent(sample.length, SIGN_CONCURRENCY, (i) => {
    const { sig: _sig, ...envelope } = sample[i]!;
    return signEvent({ ...envelope, device: key.deviceId }, key);
  });
  const sign = (sample.length / (performance.now() - start)) * 1000;
  return { verify, sign };
}

function emit(line: ChildLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** Waits until a loaded facility has a durable verdict for each of its `submissions`. */
async function verdicted(node: FacilityNode, submissions: number, label: string): Promise<void> {
  const start = performance.now();
  const before = node.log.size();
  for (;;) {
    const s = node.stats();
    if (s.waiting === 0 && s.verdicts >= submissions) break;
    if (performance.now() - start > STALL_MS) throw new Error(`${label}: stalled at ${JSON.stringify(s)}`);
    // Verdicts are decided in one sweep, then appended (group-committed): show the appends.
    progress(label, Math.min(submissions, Math.max(0, node.log.size() - before)), submissions);
    await sleep(50);
  }
  // The round that issued the last verdicts resolves once every one of them is durable.
  await node.settled();
  progress(label, submissions, submissions);
}

/** Loads one facility, waits for its verdicts and reports (the timed part). */
async function processFacility(
  relay: Relay,
  facility: FacilityId,
  submissions: number,
  label: string,
): Promise<void> {
  const highs = { rss: 0, heap: 0, external: 0 };
  const sampler = trace
    ? setInterval(() => {
        const m = process.memoryUsage();
        highs.rss = Math.max(highs.rss, mb(m.rss));
        highs.heap = Math.max(highs.heap, mb(m.heapUsed));
        highs.external = Math.max(highs.external, mb(m.external));
      }, 100)
    : undefined;
  const windowStart = process.hrtime.bigint() / 1000n;
  const start = performance.now();
  const node = await relay.facility(facility);
  const opened = performance.now();
  await verdicted(node, submissions, label);
  const done = performance.now();
  if (sampler !== undefined) {
    clearInterval(sampler);
    note(
      `relay: ${facility} highs while verdicting: rss ${highs.rss.toFixed(0)} MB, heap ${highs.heap.toFixed(0)} MB, ` +
        // In the clock of CPU profiles (µs), to cut a profile to the timed part.
        `external ${highs.external.toFixed(0)} MB; window ${windowStart}..${process.hrtime.bigint() / 1000n} µs`,
    );
  }
  const s = node.stats();
  emit({
    event: 'facility',
    facility,
    open_s: (opened - start) / 1000,
    verdict_s: (done - opened) / 1000,
    verdicts: s.verdicts,
    // Every accepted verdict takes the next confirmed seq; the rest are deadletters.
    accepted: s.lastSeq,
    deadletters: s.verdicts - s.lastSeq,
  });
}

/**
 * The ingest run's relay side: says where it listens, waits for `go` on stdin (sent to the devices
 * at the same moment), then times until every pushed event has a durable verdict.
 */
async function ingest(relay: Relay, facility: FacilityId, events: number): Promise<void> {
  emit({ event: 'ready', port: relay.port, id: relay.id });
  for await (const line of createInterface({ input: process.stdin })) if (line.trim() === 'go') break;
  const start = performance.now();
  const cpuAtGo = process.cpuUsage();
  const mainAtGo = await mainThreadCpuS();
  const threadsAtGo = trace ? await threadCpuS() : new Map<string, number>();
  const windowStart = process.hrtime.bigint() / 1000n;
  const node = await relay.facility(facility);
  let shown = -1;
  for (;;) {
    const s = node.stats();
    if (s.waiting === 0 && s.verdicts >= events) break;
    if (performance.now() - start > STALL_MS)
      throw new Error(`relay ingest: stalled at ${JSON.stringify(s)}`);
    if (s.verdicts !== shown)
      progress('relay: ingest verdicts', Math.min(events, (shown = s.verdicts)), events);
    await sleep(50);
  }
  await node.settled();
  const seconds = (performance.now() - start) / 1000;
  if (trace) {
    const cpu = process.cpuUsage(cpuAtGo);
    const main = (await mainThreadCpuS()) - mainAtGo;
    // CPU per event swings less than the wall time on a shared machine.
    note(
      `relay: ingest took ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s of relay CPU in ${seconds.toFixed(1)} s, ` +
        `${((cpu.user + cpu.system) / 1e3 / events).toFixed(3)} ms per event, of which the main thread ` +
        `${main.toFixed(1)} s, ${((main * 1e3) / events).toFixed(3)} ms per event; ` +
        // In the clock of CPU profiles (µs), to cut a profile to the timed part.
        `window ${windowStart}..${process.hrtime.bigint() / 1000n} µs`,
    );
    note(
      `relay: ingest CPU by thread: ${threadCpuDelta(threadsAtGo, await threadCpuS(), events)}; ` +
        `released segments sent as stored: ${node.stats().servedStored}; ` +
        `relay verified ${JSON.stringify(node.log.verification())}; seal digests ${JSON.stringify(node.sealDigests())}`,
    );
  }
  progress('relay: ingest verdicts', events, events);
  const s = node.stats();
  emit({ event: 'ingest', seconds, verdicts: s.verdicts, accepted: s.lastSeq });
}

/**
 * The relay process. `cold`: measures the Ed25519 rates, verdicts one facility's backlog, measures
 * the rates again. `memory`: verdicts the facilities named on stdin one at a time, each unloaded
 * by the relay's idle sweeper before the next, until stdin ends.
 */
async function childMain(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: {
      child: { type: 'string' },
      data: { type: 'string' },
      events: { type: 'string' },
      sample: { type: 'string' },
    },
    allowPositionals: true,
  });
  const { child: mode, data, sample } = values;
  const events = Number.parseInt(values.events ?? '', 10);
  const cold = positionals[0] as FacilityId | undefined;
  if (
    data === undefined ||
    !(events > 0) ||
    !(
      (mode === 'cold' && cold !== undefined && sample !== undefined) ||
      mode === 'memory' ||
      (mode === 'ingest' && cold !== undefined)
    )
  ) {
    throw new Error(
      'usage: relay-bench.ts --child cold|memory|ingest --data DIR --events N [--sample FILE] [FACILITY]',
    );
  }
  const rates = async (): Promise<void> => {
    const lines = (await readFile(sample!, 'utf8')).split('\n').filter((l) => l !== '');
    emit({ event: 'rates', ...(await cryptoRates(lines.map((l) => JSON.parse(l) as SignedEvent))) });
  };
  if (mode === 'cold') await rates();
  gc();
  const relay = await Relay.start({
    data,
    port: 0,
    // Warnings (a failed validation round, a corrupt value) would mean a broken run: show them.
    logger: createRelayLogger({ level: 'warn', destination: 2 }),
    idleUnloadMs: mode === 'memory' ? IDLE_UNLOAD_MS : 3_600_000,
  });
  if (mode === 'cold') {
    await processFacility(relay, cold!, events, 'relay: cold backlog verdicts');
  } else if (mode === 'ingest') {
    await ingest(relay, cold!, events);
  } else {
    let n = 0;
    for await (const name of createInterface({ input: process.stdin })) {
      const facility = name as FacilityId;
      await processFacility(relay, facility, events, `relay: memory run, facility ${++n} verdicts`);
      // Idle now: the relay's own sweeper unloads it, as it would in production.
      const deadline = performance.now() + 60_000;
      while ((relay.health()['facilitiesLoaded'] as number) > 0) {
        if (performance.now() > deadline) throw new Error(`${facility} was never unloaded`);
        await sleep(IDLE_UNLOAD_MS / 5);
      }
      if (trace) {
        gc();
        const m = process.memoryUsage();
        note(
          `relay: ${facility} unloaded: rss ${mb(m.rss).toFixed(0)} MB, heap ${mb(m.heapUsed).toFixed(0)} of ${mb(m.heapTotal).toFixed(0)} MB, ` +
            `external ${mb(m.external).toFixed(0)} MB, peak ${peakRssMb().toFixed(0)} MB`,
        );
      }
    }
  }
  const peak = peakRssMb();
  // Settled: what the relay holds once idle, start-up and processing garbage collected.
  for (let i = 0; i < 5; i++) {
    gc();
    await sleep(100);
  }
  const settled = process.memoryUsage();
  const stopStart = performance.now();
  await relay.stop();
  const stopS = (performance.now() - stopStart) / 1000;
  if (mode === 'cold') await rates();
  emit({
    event: 'done',
    rss_peak_mb: peak,
    rss_settled_mb: mb(settled.rss),
    heap_settled_mb: mb(settled.heapUsed),
    stop_s: stopS,
  });
}

// ------------------------------------------------------------------ driving the relay process

/** A running relay child: its report lines in order, and a way to feed it facilities. */
interface RelayChild {
  next(): Promise<ChildLine>;
  send(line: string): void;
  /** Ends the child's stdin (no more facilities). */
  close(): void;
  /** Resolves when the child has exited cleanly. */
  exited(): Promise<void>;
}

async function startChild(
  mode: 'cold' | 'memory' | 'ingest',
  data: string,
  events: number,
  extra: string[],
): Promise<RelayChild> {
  const prof = process.env['ACCORD_BENCH_CHILD_PROF'];
  // Extra V8 flags for the relay processes only, to try them (e.g. `--single-threaded-gc`).
  const flags = (process.env['ACCORD_BENCH_RELAY_FLAGS'] ?? '').split(' ').filter((f) => f !== '');
  // As `accord relay` runs (apps/accord/bin/accord.mjs): this file compiled into one bundle,
  // which runs `childMain` when started as the main module.
  const bundle = await ensureBundle(SELF, join(ROOT, 'node_modules/.cache/accord-bench/relay-bench.mjs'));
  const child = spawn(
    process.execPath,
    [
      ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []),
      '--expose-gc',
      '--max-semi-space-size=2',
      ...flags,
      bundle,
      '--child',
      mode,
      '--data',
      data,
      '--events',
      String(events),
      ...extra,
    ],
    { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    next: async () => {
      const line = await lines.next();
      if (line.done === true)
        throw new Error(`relay bench process (${mode}) ended early: exit ${await exited}`);
      return JSON.parse(line.value) as ChildLine;
    },
    send: (line) => child.stdin.write(`${line}\n`),
    close: () => child.stdin.end(),
    exited: async () => {
      const code = await exited;
      if (code !== 0) throw new Error(`relay bench process (${mode}) failed: exit ${code}`);
    },
  };
}

async function expect<K extends ChildLine['event']>(
  child: RelayChild,
  event: K,
): Promise<Extract<ChildLine, { event: K }>> {
  const line = await child.next();
  if (line.event !== event) throw new Error(`relay bench process: expected ${event}, got ${line.event}`);
  return line as Extract<ChildLine, { event: K }>;
}

// ------------------------------------------------------------------ the ingest run

/**
 * The relay end to end: {@link DEVICES} enrolled device processes, each with its share of `events`
 * appended offline, dial a relay process at one moment (`go`) over the real authenticated sync; the
 * relay verifies every signature, stores, adjudicates and makes every verdict durable. Timed in the
 * relay process from `go` until the last verdict is durable.
 */
async function benchIngest(dir: string, events: number): Promise<{ seconds: number; accepted: number }> {
  const { layout } = await openRelayFolder(dir);
  const keys: DeviceKeyPair[] = [];
  for (let i = 0; i < DEVICES; i++) {
    const key = await generateDeviceKey();
    keys.push(key);
    await enrollMember(layout, BENCH_FACILITY, { id: key.deviceId, name: `ingest tablet ${i + 1}` });
  }
  const relay = await startChild('ingest', dir, events, [BENCH_FACILITY]);
  const ready = await expect(relay, 'ready');
  const per = Math.ceil(events / DEVICES);
  const devices: BenchChild[] = [];
  try {
    for (const [i, key] of keys.entries()) {
      const deviceDir = await mkdtemp(join(tmpdir(), 'accord-bench-ingest-'));
      const count = Math.min(per, events - i * per);
      devices.push(
        await startBenchChild('ingest-device.ts', [
          deviceDir,
          JSON.stringify(await exportDeviceKey(key)),
          ready.id,
          String(ready.port),
          String(i * per),
          String(count),
          ...keys.filter((k) => k !== key).map((k) => k.deviceId),
        ]),
      );
    }
    let filled = 0;
    for (const device of devices) {
      const line = await device.next();
      filled += line['events'] as number;
      progress('relay: ingest backlogs on the devices', filled, events);
    }
    await settleHarness();
    relay.send('go');
    for (const device of devices) device.child.stdin!.write('go\n');
    const report = await expect(relay, 'ingest');
    if (trace) {
      // Each device's CPU over the same window, before any of them stops (each answers a line).
      for (const device of devices) device.child.stdin!.write('cpu\n');
      let cpu = 0;
      let main = 0;
      for (const device of devices) {
        const line = await device.next();
        cpu += line['cpu_s'] as number;
        main += line['main_s'] as number;
      }
      note(
        `relay: ingest devices' CPU until the last verdict: ${cpu.toFixed(2)} s, ${((cpu * 1e3) / events).toFixed(3)} ms ` +
          `per event (main threads ${main.toFixed(2)} s, ${((main * 1e3) / events).toFixed(3)} ms per event)`,
      );
    }
    for (const device of devices) await stopBenchChild(device.child);
    relay.close();
    await expect(relay, 'done');
    await relay.exited();
    return { seconds: report.seconds, accepted: report.accepted };
  } finally {
    for (const device of devices) if (device.child.exitCode === null) device.child.kill('SIGKILL');
  }
}

// ------------------------------------------------------------------ the section

/**
 * Runs the relay section: builds the backlogs in a temporary relay folder and measures a relay
 * process verdicting them.
 *
 * @remarks The memory run overlaps generation with the relay (the next facility is written
 * while the relay verdicts the current one) to keep the section short; it measures memory
 * only, so it reports no rate.
 */
export async function benchRelay(
  opts: RelayBenchOptions,
): Promise<RelayBenchResult & Partial<RelayMemoryResult> & Partial<RelayIngestResult>> {
  const dir = await mkdtemp(join(tmpdir(), 'accord-bench-relay-'));
  try {
    const { layout } = await openRelayFolder(dir);
    const started = performance.now();
    const history = generateHistory(Math.max(opts.events, opts.facilities > 0 ? opts.facilityEvents : 0));
    note(`relay: generated a ${history.events.length}-event facility history from ${DEVICES} devices`);

    // Cold backlog, with the Ed25519 reference rates measured in the same process.
    const coldFacility = 'bench-cold' as FacilityId;
    const coldKeys = await enrollDevices(layout, coldFacility, history);
    const sample = await writeBacklog(layout, coldFacility, coldKeys, history, opts.events, CRYPTO_SAMPLE);
    const samplePath = join(dir, 'crypto-sample.jsonl');
    await writeFile(samplePath, sample.map((e) => `${JSON.stringify(e)}\n`).join(''));
    const coldChild = await startChild('cold', dir, opts.events, ['--sample', samplePath, coldFacility]);
    const before = await expect(coldChild, 'rates');
    const c = await expect(coldChild, 'facility');
    const after = await expect(coldChild, 'rates');
    const coldDone = await expect(coldChild, 'done');
    await coldChild.exited();
    const verify = (before.verify + after.verify) / 2;
    const sign = (before.sign + after.sign) / 2;
    const coldSeconds = c.open_s + c.verdict_s;
    note(
      `relay: Ed25519 in the relay process: ${Math.round(before.verify)} then ${Math.round(after.verify)} ` +
        `verifications/s, ${Math.round(before.sign)} then ${Math.round(after.sign)} signatures/s`,
    );
    note(
      `relay: cold backlog of ${opts.events} verdicted in ${coldSeconds.toFixed(1)} s ` +
        `(open ${c.open_s.toFixed(1)} s; ${c.accepted} accepted, ${c.deadletters} deadletters; ` +
        `peak RSS ${coldDone.rss_peak_mb.toFixed(0)} MB). The backlog's signatures were verified when it ` +
        'was stored; this window is open + adjudicate + sign and durably append every verdict.',
    );

    let ingested: Partial<RelayIngestResult> = {};
    if (opts.ingestEvents > 0) {
      const run = await benchIngest(join(dir, 'ingest'), opts.ingestEvents);
      const perSecond = opts.ingestEvents / run.seconds;
      note(
        `relay: ingest of ${opts.ingestEvents} events from ${DEVICES} device processes over the network: ` +
          `${run.seconds.toFixed(1)} s, ${Math.round(perSecond)}/s (${run.accepted} accepted), ` +
          `${(perSecond / verify).toFixed(2)} × the ${Math.round(verify)} verifications/s of this run`,
      );
      ingested = {
        relay_ingest_per_s: perSecond,
        relay_ingest_ratio: perSecond / verify,
        relay_ingest_events: opts.ingestEvents,
      };
    }

    let memory: Partial<RelayMemoryResult> = {};
    if (opts.facilities > 0) {
      const names = Array.from({ length: opts.facilities }, (_, i) => `bench-${i + 1}` as FacilityId);
      // Enrolled before the relay starts: a roster change would make it load the facility at once.
      const keys: Map<DeviceId, DeviceKeyPair>[] = [];
      for (const name of names) keys.push(await enrollDevices(layout, name, history));
      const child = await startChild('memory', dir, opts.facilityEvents, []);
      await writeBacklog(layout, names[0]!, keys[0]!, history, opts.facilityEvents);
      for (const [i, name] of names.entries()) {
        child.send(name);
        const nextName = names[i + 1];
        if (nextName !== undefined) {
          await writeBacklog(layout, nextName, keys[i + 1]!, history, opts.facilityEvents);
        }
        await expect(child, 'facility');
      }
      child.close();
      const done = await expect(child, 'done');
      await child.exited();
      note(
        `relay: memory run over ${opts.facilities} facilities of ${opts.facilityEvents} events: ` +
          `peak RSS ${done.rss_peak_mb.toFixed(0)} MB, ${done.rss_settled_mb.toFixed(0)} MB once all ` +
          `were unloaded (heap ${done.heap_settled_mb.toFixed(0)} MB)`,
      );
      memory = {
        relay_rss_mb_20x50k: done.rss_peak_mb,
        relay_rss_settled_mb_20x50k: done.rss_settled_mb,
        relay_heap_settled_mb_20x50k: done.heap_settled_mb,
        relay_facilities: opts.facilities,
        relay_facility_events: opts.facilityEvents,
      };
    }
    note(`relay: section took ${((performance.now() - started) / 1000).toFixed(0)} s`);

    const perSecond = opts.events / coldSeconds;
    return {
      relay_validated_per_s: perSecond,
      relay_validated_ratio: perSecond / verify,
      ed25519_verify_per_s: verify,
      ed25519_sign_per_s: sign,
      relay_backlog_events: opts.events,
      relay_cold_s: coldSeconds,
      relay_open_s: c.open_s,
      relay_accepted: c.accepted,
      relay_deadlettered: c.deadletters,
      relay_rss_peak_mb_cold: coldDone.rss_peak_mb,
      relay_stop_s: coldDone.stop_s,
      ...ingested,
      ...memory,
    };
  } finally {
    if (process.env['ACCORD_BENCH_KEEP'] === undefined) await rm(dir, { recursive: true, force: true });
    else note(`relay: data folder kept at ${dir}`);
  }
}

if (process.argv[1] === SELF) await childMain();
