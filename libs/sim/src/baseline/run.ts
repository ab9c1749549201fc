import { planFaults } from '../faults.js';
import { SimNetwork } from '../network.js';
import { Prng } from '../prng.js';
import type { SystemResult } from '../result.js';
import { sortedRecord, trafficOf } from '../result.js';
import { Scheduler, skewedClock } from '../scheduler.js';
import { disagreeingPairs, duplicatesAmong, missingPatients, projectionFingerprint } from '../symptoms.js';
import type { Scenario } from '../scenario.js';
import { RELAY_NODE, deviceNode } from '../scenario.js';
import { planWorkload } from '../workload.js';
import type { DeviceObserver, LocalEntry } from './device.js';
import { BaselineDevice } from './device.js';
import { BaselineServer } from './server.js';

/**
 * Runs the queue-based baseline on a scenario: the same planned users, faults and network as any
 * other system under test on the same seed, the server at the relay's node.
 *
 * @remarks Deterministic: every draw comes from named streams of the scenario's seed and the
 * scheduler runs on simulated time, so the same scenario gives the same result, byte for byte,
 * on any machine. `p2p` does not apply (the incumbent has no tablet-to-tablet sync); without a
 * relay there is no server and nothing syncs.
 */
export function runBaseline(s: Scenario): SystemResult {
  const root = new Prng(s.seed);
  const scheduler = new Scheduler();
  const faults = planFaults(s, root.stream('faults'));
  const network = new SimNetwork(scheduler, root.stream('network/baseline'), faults, s.network);
  const clockOf = (node: string) => skewedClock(scheduler, s.epochMs, faults.skews[node] ?? 0);
  const server = s.relay ? new BaselineServer(RELAY_NODE, clockOf(RELAY_NODE), network) : undefined;

  const deadletters = new Map<string, number>();
  let changesAppearLost = 0;
  let encounterReappeared = 0;
  let appended = 0;
  const actions = planWorkload(s, root);
  const quiescentAtMs = Math.max(faults.lastFaultMs, actions.at(-1)?.atMs ?? 0);
  let convergedSince: number | undefined;

  const facilities: BaselineDevice[][] = [];
  const check = (): void => {
    if (scheduler.now < quiescentAtMs) return;
    if (agreed()) convergedSince ??= scheduler.now;
    else convergedSince = undefined;
  };
  const observer: DeviceObserver = {
    deadlettered: (code) => deadletters.set(code, (deadletters.get(code) ?? 0) + 1),
    changeLost: () => changesAppearLost++,
    encounterReappeared: () => encounterReappeared++,
    pulled: check,
    appended: () => appended++,
  };
  const byNode = new Map<string, BaselineDevice>();
  for (let f = 1; f <= s.facilities; f++) {
    const devices: BaselineDevice[] = [];
    for (let d = 1; d <= s.devicesPerFacility; d++) {
      const node = deviceNode(f, d);
      const device = new BaselineDevice({
        node,
        facility: `f${f}`,
        scheduler,
        network,
        clock: clockOf(node),
        prng: root.stream(`${node}/baseline`),
        options: s.baseline,
        server: server === undefined ? undefined : RELAY_NODE,
        reentry: s.workload.reentry,
        observer,
      });
      devices.push(device);
      byNode.set(node, device);
    }
    facilities.push(devices);
  }

  /** Every facility's devices show what the server holds (or, with no server, what each other shows). */
  function agreed(): boolean {
    return facilities.every((devices, i) => {
      const want =
        server === undefined ? devices[0]!.fingerprint() : projectionFingerprint(server.state(`f${i + 1}`));
      return devices.every((d) => d.fingerprint() === want);
    });
  }
  function pairsDisagreeing(): number {
    return facilities.reduce((n, devices) => n + disagreeingPairs(devices.map((d) => d.fingerprint())), 0);
  }

  for (const a of actions) scheduler.at(a.atMs, () => byNode.get(a.node)!.act(a));
  for (const c of faults.crashes) {
    const device = byNode.get(c.node);
    if (device === undefined) continue; // the server's database survives its crash; the network models its downtime
    scheduler.at(c.atMs, () => device.crash());
    scheduler.at(Math.min(s.durationMs, c.atMs + c.downMs), () => device.restart());
  }
  const restore = s.relayRestore;
  if (server !== undefined && restore !== null) {
    scheduler.at(restore.fromMs, () => server.backup());
    scheduler.at(restore.atMs, () => server.restore());
  }
  const divergence: [number, number][] = [];
  for (let t = 0; t <= s.durationMs; t += s.sampleEveryMs) {
    scheduler.at(t, () => {
      divergence.push([t, pairsDisagreeing()]);
      check();
    });
  }
  scheduler.run(s.durationMs);
  check();

  const all = facilities.flat();
  const converged = agreed();
  const convergenceMs =
    converged && convergedSince !== undefined ? Math.round(convergedSince - quiescentAtMs) : null;
  const rounds =
    convergedSince === undefined || !converged
      ? null
      : Math.max(
          0,
          ...all.map((d) => d.pullTimes.filter((t) => t > quiescentAtMs && t <= convergedSince!).length),
        );

  const accepted = (d: BaselineDevice, e: LocalEntry): boolean =>
    server?.hasEvent(d.facility, e.event.id) ?? false;
  let eventsLost = 0;
  const effective = new Map<string, Set<string>>();
  for (const d of all) {
    for (const e of d.entries) {
      const atServer = accepted(d, e);
      // Dead-lettered, or accepted and then gone with a server restored from an older backup.
      if (e.state !== 'outbox' && !atServer) eventsLost++;
      if (atServer || d.view.hasEvent(e.event.id)) {
        const set = effective.get(e.fact) ?? new Set<string>();
        set.add(e.event.id);
        effective.set(e.fact, set);
      }
    }
  }
  const duplicates = duplicatesAmong(effective);

  let patientsMissing = 0;
  facilities.forEach((devices, i) => {
    const serverCopy =
      server === undefined
        ? []
        : server
            .state(`f${i + 1}`)
            .patients()
            .map((p) => p.id);
    patientsMissing += missingPatients(
      devices.map((d) => d.view),
      serverCopy,
    );
  });

  const c = network.counters;
  return {
    converged,
    convergenceMs,
    rounds,
    quiescentAtMs,
    eventsAppended: appended,
    eventsLost,
    duplicates,
    reentries: all.reduce((n, d) => n + d.reentries, 0),
    ...trafficOf(c, appended),
    deadletters: sortedRecord(deadletters),
    symptoms: {
      patientsMissing,
      encounterReappeared,
      countersDisagree: pairsDisagreeing(),
      changesAppearLost,
    },
    divergence,
    network: { ...c },
  };
}
