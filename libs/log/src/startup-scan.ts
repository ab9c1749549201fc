import { compareHlc, HybridClock, type SignedEvent } from '@accord/protocol';
import type { DeviceLogOptions } from './api.js';
import type { OwnSeqMarkState } from './own-seq-mark.js';
import type { LogEventStore, LogStoredEvent } from './ports.js';
import { parseStoredEvent } from './stored-events.js';

/** What {@link startupScan} found: the log is built from it before any document is loaded. */
export interface StartupState {
  /** Stored events that are damaged (checksum, or bytes that no longer parse to their slot). */
  readonly corrupt: { device: string; seq: number }[];
  /** The HLC, resumed from this device's own stamps and a bounded peer stamp. */
  readonly hlc: HybridClock;
  /** The highest own sequence number ever handed out, as far as the store and the mark know. */
  readonly highestOwnSeq: number;
  /** Acknowledged own events the store no longer holds (see {@link IntegrityReport.own}). */
  readonly ownLoss: { readonly from: number; readonly to: number } | undefined;
  /** True when mark and store disagree, the store is damaged or set aside, or there is no mark. */
  readonly suspicious: boolean;
  /** Sync-document chunks dropped because their checksum failed. */
  readonly corruptChunks: number;
}

/**
 * The start-up scans: corrupt sync-document chunks dropped, then one pass over the event store
 * (each intact event handed to `onEvent` as it is read, and not kept: the log does not hold its
 * history in memory; damaged ones listed for repair), the HLC resumed, the own-sequence mark
 * compared with the store; then `afterStartupScan`. Nothing here touches the Repo. `clock` is the log's
 * injected clock (it bounds which peer stamp the HLC may observe).
 */
export async function startupScan(
  opts: DeviceLogOptions,
  clock: () => number,
  onEvent: (event: SignedEvent) => void,
): Promise<StartupState> {
  const store = opts.eventStore;
  // Corrupt sync-document chunks are dropped; peers (and our event store) supply them again.
  // First, while the heap is small: the scan reads every stored document (≈ 15 MB of buffers at
  // 100k events, freed only by a later collection), which at the end stacked on the event scan's
  // garbage and made the open's peak.
  const { corrupt: damagedChunks } = await opts.storage.scan();
  for (const key of damagedChunks) await opts.storage.remove([...key]);
  const corruptChunks = damagedChunks.length;
  // The HLC resumes from this device's own stamps only (made by its own clock or through bounded
  // observation); another device's stamp is only observed, under the same drift bound as at run
  // time, or one tablet in a wrong year would pull every restarted peer into it (issue #13).
  const ceiling = HybridClock.ceiling(clock());
  let ownStamp = undefined as SignedEvent['hlc'] | undefined;
  let other = undefined as SignedEvent['hlc'] | undefined;
  let highestOwnSeq = 0;
  // One pass over the store: intact events are handed on, damaged ones listed for repair.
  const corrupt: { device: string; seq: number }[] = [];
  const skipped = ({ device, seq }: { device: string; seq: number }): void =>
    void corrupt.push({ device, seq });
  for await (const stored of relayFirst(store, opts.relay ?? undefined, skipped)) {
    // No second validation (a quarter of start-up time at 100k events): see parseStoredEvent.
    const event = parseStoredEvent(stored);
    if (event === undefined) {
      corrupt.push({ device: stored.device, seq: stored.seq });
      continue;
    }
    if (event.device === opts.key.deviceId) {
      if (ownStamp === undefined || compareHlc(event.hlc, ownStamp) > 0) ownStamp = event.hlc;
      if (event.seq > highestOwnSeq) highestOwnSeq = event.seq;
    } else if (
      compareHlc(event.hlc, ceiling) <= 0 &&
      (other === undefined || compareHlc(event.hlc, other) > 0)
    ) {
      other = event.hlc;
    }
    onEvent(event);
  }
  const hlc = new HybridClock({ wallClock: clock, ...(ownStamp !== undefined ? { last: ownStamp } : {}) });
  if (other !== undefined) hlc.observe(other);
  // A damaged own event still used its sequence number: never hand that number out again.
  highestOwnSeq = Math.max(highestOwnSeq, await store.highestSeq(opts.key.deviceId));
  const own = await readOwnMark(opts, highestOwnSeq, corrupt);

  await opts.afterStartupScan?.();
  return {
    corrupt,
    hlc,
    highestOwnSeq: own.next - 1,
    ownLoss: own.loss,
    suspicious: own.suspicious,
    corruptChunks,
  };
}

/**
 * Every stored event, the trusted relay's first: its verdicts then name the events read after
 * them, so the confirmed fold takes each accepted event while the scan has it in hand. In plain
 * (device, seq) order, a device whose id sorts before the relay's is read before any verdict, and
 * the fold reads all of its accepted events back from the store once the verdicts arrive: at 100k
 * events that added about 30 MB to the peak RSS of the bench's served device (#12).
 */
async function* relayFirst(
  store: LogEventStore,
  relay: string | undefined,
  onSkipped: (slot: { device: string; seq: number }) => void,
): AsyncIterable<LogStoredEvent> {
  if (relay !== undefined) yield* store.iterate({ device: relay, skipCorrupt: true, onSkipped });
  const others = (slot: { device: string; seq: number }): void => {
    if (slot.device !== relay) onSkipped(slot);
  };
  for await (const stored of store.iterate({ skipCorrupt: true, onSkipped: others }))
    if (stored.device !== relay) yield stored;
}

/**
 * Compares the own-sequence mark with what the store holds: the next number is above both, a
 * mark above the store is a loss of acknowledged events (reported, repaired from peers, never
 * reused), and a start after a crash, with damage, or with no mark is suspicious.
 */
async function readOwnMark(
  opts: DeviceLogOptions,
  storeHighest: number,
  corrupt: readonly { device: string }[],
): Promise<{ next: number; loss?: { from: number; to: number }; suspicious: boolean }> {
  const damaged = opts.storeSetAside !== undefined || corrupt.some((c) => c.device === opts.key.deviceId);
  if (opts.ownSeqMark === undefined) return { next: storeHighest + 1, suspicious: damaged };
  let state: OwnSeqMarkState | undefined;
  let unreadable = false;
  try {
    state = await opts.ownSeqMark.read();
  } catch {
    unreadable = true; // as good as no mark: the check with peers decides
  }
  if (state === undefined)
    return { next: storeHighest + 1, suspicious: damaged || unreadable || storeHighest > 0 };
  const loss = state.acked > storeHighest ? { from: storeHighest + 1, to: state.acked } : undefined;
  return {
    next: Math.max(storeHighest, state.acked) + 1,
    ...(loss === undefined ? {} : { loss }),
    suspicious: damaged || loss !== undefined || !state.clean,
  };
}
