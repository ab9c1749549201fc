// Issue #10: a 422 RULE_NEGATIVE_STOCK heals itself. A device records a vaccination from a lot that
// holds no stock; the relay's 422 reaches every device. Another device then records a receipt for
// that lot, and the relay accepts the vaccination by itself: every device shows it accepted, with
// no RetryRequested anywhere in the log, and the acceptance supersedes the 422 by its higher relay
// seq. Real relay (LevelDB in a temp dir, WebSockets on port 0), two devices with their own logs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeviceLog } from '@accord/log';
import { SystemEventType, type EventId, type FacilityId } from '@accord/protocol';
import { tempDir, type TempDir } from '@accord/testkit';
import type { Relay } from './relay.js';
import {
  bcg,
  enrolledWith,
  eventually,
  registration,
  stock,
  verdictsAbout,
  TestRoster,
  startTestRelay,
} from './testing.js';

const FACILITY = 'clinic-restock' as FacilityId;

describe('a 422 negative stock is accepted by the relay once stock arrives (issue #10)', () => {
  let dir: TempDir;
  let relay: Relay;
  const roster = new TestRoster(FACILITY);
  const logs: DeviceLog[] = [];

  /** An enrolled device whose log syncs with the relay over a real WebSocket. */
  async function device(name: string): Promise<DeviceLog> {
    const { log } = await enrolledWith(relay, dir.path, roster, { facility: FACILITY, name });
    logs.push(log);
    return log;
  }

  beforeAll(async () => {
    dir = await tempDir('accord-relay-restock-');
    relay = await startTestRelay(dir.path, roster);
  });

  afterAll(async () => {
    for (const log of logs) await log.close();
    await relay.stop();
    await dir.cleanup();
  });

  it('turns the 422 into an acceptance on every device without a retry', async () => {
    const front = await device('Front desk');
    const store = await device('Store room');
    const { event: patient } = await front.append(registration('P1'));
    const { event: dose } = await front.append(bcg('P1', 'LOT-EMPTY'));
    for (const log of [front, store]) {
      await eventually(() => log.get(dose.id)?.status === 'deadletter', 'the 422 on both devices');
      expect(log.get(patient.id)?.status).toBe('accepted');
    }
    const [rejected] = verdictsAbout(store.visibleEvents(), dose.id, relay.id);
    expect(rejected?.verdict).toMatchObject({
      outcome: 'deadletter',
      code: 422,
      rule: 'RULE_NEGATIVE_STOCK',
      details: { lot: 'LOT-EMPTY', balance: 0, requested: 1, retriesWhen: 'stock' },
    });

    const { event: receipt } = await store.append(stock('LOT-EMPTY', 4));
    for (const log of [front, store]) {
      await eventually(() => log.get(dose.id)?.status === 'accepted', 'the acceptance on both devices');
      expect(log.get(receipt.id)?.status).toBe('accepted');
      expect(log.confirmed().lot('LOT-EMPTY')?.balance).toBe(3);
      expect(log.list({ status: 'deadletter' })).toEqual([]);
    }
    // Healed by the relay alone: nobody asked for a retry, and the 422 is superseded, not erased.
    const seqOf = (log: DeviceLog, id: EventId) =>
      verdictsAbout(log.visibleEvents(), id, relay.id).map(({ event, verdict }) => ({
        relaySeq: event.seq,
        outcome: verdict.outcome,
        seq: verdict.outcome === 'accepted' ? verdict.seq : null,
      }));
    for (const log of [front, store]) {
      expect([...log.visibleEvents()].filter((e) => e.type === SystemEventType.RetryRequested)).toEqual([]);
      const [no, yes] = seqOf(log, dose.id);
      expect([no?.outcome, yes?.outcome]).toEqual(['deadletter', 'accepted']);
      expect(yes!.relaySeq).toBeGreaterThan(no!.relaySeq);
      // Judged again right after the receipt was folded: the next confirmed seq.
      expect(yes!.seq).toBe(seqOf(log, receipt.id)[0]!.seq! + 1);
    }
    expect((await relay.facility(FACILITY)).openDeadletters()).toEqual([]);
  });
});
