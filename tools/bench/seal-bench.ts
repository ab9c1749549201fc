// Part of the device section of `npm run bench`: before the cold sync, a relay takes in the
// bench device's history, verdicts it and seals its full segments (DESIGN.md §8), and the
// device receives the relay's events, as a device of a facility with a relay would have them.
// The cold sync then measures what a new tablet joining such a facility does.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketClientAdapter } from '@accord/network-ws';
import { encodeSignedEvent, SystemEventType, type DeviceId, type SignedEvent } from '@accord/protocol';
import { createRelayLogger, enrollMember, openRelayFolder, Relay } from '@accord/relay';
import { openDeviceDatabase } from '@accord/storage-level';
import { BENCH_FACILITY, openDeviceLog, rosterOf, type BenchDevice } from './log-bench.js';
import { progress } from './stats.js';

/** Events per `eventStore.append` while handing the history to the relay. */
const WRITE_BATCH = 5000;
const STALL_MS = 600_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(probe: () => boolean, what: string, show?: () => void): Promise<void> {
  const start = performance.now();
  while (!probe()) {
    if (performance.now() - start > STALL_MS) throw new Error(`bench: stalled waiting for ${what}`);
    show?.();
    await sleep(50);
  }
}

/** What {@link relaySealHistory} did. */
export interface SealedHistory {
  /** The relay's device id: the cold-sync devices trust its verdicts and seals. */
  readonly relay: DeviceId;
  /** Seconds for the relay to verdict and seal the history (its open included). */
  readonly relay_seal_s: number;
  /** `SegmentSealed` events the device received. */
  readonly seals: number;
  /** Every event the relay signed (what the device received from it). */
  readonly events: readonly SignedEvent[];
}

/**
 * A relay (in this process) verdicts and seals `device`'s history, and the device receives the
 * relay's events (verdicts and seals) over WebSocket.
 *
 * @remarks The relay's event store is given the history directly, as its ingest would have left
 * it (every event verified on the way in), so that this set-up does not take a whole cold sync of
 * its own. From there on everything is the real relay: adjudication, `AcceptedVerdicts`,
 * `SegmentSealer`, and sync with the device.
 */
export async function relaySealHistory(device: BenchDevice): Promise<SealedHistory> {
  const dir = await mkdtemp(join(tmpdir(), 'accord-bench-seal-'));
  try {
    const { layout } = await openRelayFolder(dir);
    await enrollMember(layout, BENCH_FACILITY, { id: device.key.deviceId, name: 'bench tablet' });
    const db = await openDeviceDatabase(layout.facilityDb(BENCH_FACILITY));
    for (let from = 0; from < device.events.length; from += WRITE_BATCH) {
      const batch = device.events.slice(from, from + WRITE_BATCH);
      await db.eventStore.append(
        batch.map((e) => ({ device: e.device, seq: e.seq, id: e.id, bytes: encodeSignedEvent(e) })),
      );
      progress('relay: taking in the history', from + batch.length, device.events.length);
    }
    await db.close();

    const start = performance.now();
    const relay = await Relay.start({
      data: dir,
      port: 0,
      logger: createRelayLogger({ level: 'warn', destination: 2 }),
    });
    try {
      const node = await relay.facility(BENCH_FACILITY);
      const total = device.events.length;
      const sealsDue = Math.floor(total / node.log.segmentSize);
      const sealed = (events: Iterable<{ type: string; device: string }>): number => {
        let n = 0;
        for (const e of events) if (e.type === SystemEventType.SegmentSealed && e.device === relay.id) n++;
        return n;
      };
      await until(
        () =>
          node.stats().verdicts >= total &&
          node.stats().waiting === 0 &&
          sealed(node.log.visibleEvents({ systemOnly: true })) >= sealsDue,
        'the relay to verdict and seal the history',
        () => progress('relay: verdicts', Math.min(total, node.stats().verdicts), total),
      );
      await node.settled();
      const relaySeconds = (performance.now() - start) / 1000;
      // The relay signs system events only: those are in memory (the others are read from the store).
      const relayEvents = [...node.log.visibleEvents({ systemOnly: true })].filter(
        (e) => e.device === relay.id,
      );

      // The device takes the relay's events (its root lists the relay's segment; the relay
      // already holds every event of the device's, so little else moves).
      const roster = rosterOf(device.key.deviceId, relay.id);
      const ddb = await openDeviceDatabase(join(device.dir, 'db'));
      const log = await openDeviceLog(
        ddb,
        device.key,
        roster,
        [
          new WebSocketClientAdapter({
            url: `ws://127.0.0.1:${relay.port}`,
            identity: device.key,
            facility: BENCH_FACILITY,
            roster,
            expectedPeer: relay.id,
          }),
        ],
        relay.id,
      );
      const fromRelay = (): number => {
        let n = 0;
        for (const e of log.visibleEvents({ systemOnly: true })) if (e.device === relay.id) n++;
        return n;
      };
      await until(
        () => fromRelay() >= relayEvents.length,
        'the device to receive the relay’s events',
        () => progress('device: relay events received', fromRelay(), relayEvents.length),
      );
      await log.settled();
      const seals = sealed(log.visibleEvents({ systemOnly: true }));
      await log.close();
      await ddb.close();
      return { relay: relay.id, relay_seal_s: relaySeconds, seals, events: relayEvents };
    } finally {
      await relay.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
