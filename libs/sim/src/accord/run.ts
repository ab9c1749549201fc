import { DomainEventType, prepareDraft, utcDate } from '@accord/domain';
import type { DeviceLog } from '@accord/log';
import { deviceKeyFromSeed, type DeviceId, type EventId } from '@accord/protocol';
import { installSimEntropy } from '../entropy.js';
import { planFaults } from '../faults.js';
import { SimNetwork } from '../network.js';
import { Prng } from '../prng.js';
import { SimRepoNetwork } from '../repo-network.js';
import type { SystemResult } from '../result.js';
import { Scheduler } from '../scheduler.js';
import type { Scenario } from '../scenario.js';
import { RELAY_NODE } from '../scenario.js';
import { installSimTimers } from '../timers.js';
import { interpretAction, planWorkload } from '../workload.js';
import { disagreeingPairs, projectionFingerprint } from '../symptoms.js';
import { measure } from './measure.js';
import {
  closeAll,
  openAll,
  processSteps,
  settle,
  type Holder,
  type RelayLife,
  type Run,
} from './processes.js';
import { sharedSyncVerifier } from './verifier.js';

export type { RelayLife } from './processes.js';

/** What {@link runAccord} shows a caller at the end of a run, before the logs close. */
export interface AccordFinalState {
  /** Every simulated tablet's log (its node name and facility number beside it), in node order. */
  readonly devices: readonly {
    readonly node: string;
    readonly facility: number;
    readonly log: DeviceLog;
    /** The events its `log.append` acknowledged to its user, in order: none of them may be lost. */
    readonly acknowledged: readonly EventId[];
  }[];
  /**
   * With a relay: each facility's relay log (`FacilityNode.log`), the relay's device id, and the
   * problems its node reported (as `<simulated ms> <message>`: a catch-up that ran out of time, a
   * failed round), in facility order.
   */
  readonly relays: readonly {
    readonly facility: number;
    readonly relay: DeviceId;
    readonly log: DeviceLog;
    readonly problems: readonly string[];
    /** Its processes: a crash or a restore ends one and (at the restart) opens the next. */
    readonly lives: readonly Readonly<RelayLife>[];
  }[];
}

/** Options of {@link runAccord}. */
export interface RunAccordOptions {
  /**
   * Called once at the end of the run, after simulated time has reached the scenario's duration
   * and before any log closes: property tests compare the devices' full state here.
   */
  readonly inspect?: (state: AccordFinalState) => void | Promise<void>;
}

/**
 * Runs Accord on a scenario: every facility's tablets are real `DeviceLog`s on in-memory stores,
 * syncing over {@link SimRepoNetwork} with the scenario's link faults and partitions (with each
 * other when `p2p`), and with `relay` each facility's relay is the real relay core
 * (`FacilityNode` of `@accord/relay`: adjudicator, signed verdicts, seals, catch-up after a
 * restore); on simulated timers, clock (skew per node) and entropy; the planned users of
 * {@link planWorkload} append through `log.append`.
 *
 * @remarks Deterministic: the same scenario gives the same result, byte for byte. Signatures are
 * made and checked on this thread ({@link syncSigner}, {@link sharedSyncVerifier}). A crash is
 * real: the process's log (or relay node) stops at once, its disk is what its stores held at that
 * instant, and the restart opens a new log on it. `relayRestore` replaces the relay by a copy of
 * its disk taken earlier. Installs the simulated timers and entropy for the run's length: one run
 * at a time per process.
 */
export async function runAccord(s: Scenario, opts: RunAccordOptions = {}): Promise<SystemResult> {
  const root = new Prng(s.seed);
  const scheduler = new Scheduler();
  const faults = planFaults(s, root.stream('faults'));
  const network = new SimNetwork(scheduler, root.stream('network/accord'), faults, s.network);
  const restoreTimers = installSimTimers(scheduler, s.epochMs);
  const restoreEntropy = installSimEntropy(root.stream('entropy/accord'));
  const run: Run = {
    s,
    scheduler,
    faults,
    sim: new SimRepoNetwork(scheduler, network),
    verifier: sharedSyncVerifier(),
    relayKey: s.relay ? await deviceKeyFromSeed(root.stream(`${RELAY_NODE}/key`).bytes(32)) : undefined,
    facilities: [],
    closing: [],
    check: () => undefined,
  };
  try {
    await openAll(run, root);
    const result = await drive(run, root, network);
    await opts.inspect?.({
      devices: run.facilities.flatMap((f) =>
        f.tablets.map((t) => ({ node: t.node, facility: t.facility, log: t.log, acknowledged: t.own })),
      ),
      relays: run.facilities.flatMap((f) =>
        f.relay === undefined
          ? []
          : [
              {
                facility: f.index,
                relay: run.relayKey!.deviceId,
                log: f.relay.node.log,
                problems: f.relay.problems,
                lives: f.relay.lives,
              },
            ],
      ),
    });
    return result;
  } finally {
    await closeAll(run);
    restoreEntropy();
    restoreTimers();
  }
}

async function drive(run: Run, root: Prng, network: SimNetwork): Promise<SystemResult> {
  const { s, scheduler, faults, facilities } = run;
  const tablets = facilities.flatMap((f) => f.tablets);
  const byNode = new Map(tablets.map((t) => [t.node, t]));
  const actions = planWorkload(s, root);
  const quiescentAtMs = Math.max(faults.lastFaultMs, actions.at(-1)?.atMs ?? 0);
  let convergedSince: number | undefined;

  const agreed = (): boolean =>
    facilities.every((fac) => {
      const holders: Holder[] = [...fac.tablets, ...(fac.relay === undefined ? [] : [fac.relay])];
      return (
        holders.every(
          (h) => h.up && h.held.size === fac.saved.size && h.heldRelay.size === fac.relayEvents.size,
        ) &&
        (fac.relay === undefined || fac.verdicts.size >= fac.saved.size)
      );
    });
  run.check = (): void => {
    if (scheduler.now < quiescentAtMs) return;
    if (agreed()) convergedSince ??= scheduler.now;
    else convergedSince = undefined;
  };
  const check = run.check;
  const pairsDisagreeing = (): number =>
    facilities.reduce(
      (n, fac) => n + disagreeingPairs(fac.tablets.map((t) => projectionFingerprint(t.log.tentative()))),
      0,
    );
  const checkQueues = (): void => {
    for (const t of tablets) {
      if (!t.up) continue;
      const view = t.log.tentative();
      for (const id of t.closed) {
        if (t.reappeared.has(id)) continue;
        const e = view.encounter(id);
        if (e !== undefined && (e.state === 'waiting' || e.state === 'in-progress')) t.reappeared.add(id);
      }
    }
  };
  const divergence: [number, number][] = [];
  for (let at = 0; at <= s.durationMs; at += s.sampleEveryMs) {
    scheduler.at(at, () => {
      divergence.push([at, pairsDisagreeing()]);
      checkQueues();
      check();
    });
  }
  scheduler.at(quiescentAtMs, check);

  const steps = processSteps(run, byNode);
  let next = 0;
  const due = async (atMs: number): Promise<void> => {
    for (; next < steps.length && steps[next]!.atMs <= atMs; next++) {
      await scheduler.runAsync(steps[next]!.atMs);
      await settle();
      await steps[next]!.run();
    }
    await scheduler.runAsync(atMs);
    await settle();
  };
  for (const a of actions) {
    await due(a.atMs);
    const t = byNode.get(a.node)!;
    if (!t.up) continue;
    const fac = facilities[t.facility - 1]!;
    const view = t.log.tentative();
    const intent = interpretAction(a, view, utcDate(t.clock()));
    // A draft the catalogue refuses is refused in the form and never saved, as for the baseline.
    if (intent === undefined || !prepareDraft(view, intent.draft).ok) continue;
    const { event } = await t.log.append(intent.draft);
    fac.saved.set(event.id, intent.fact);
    t.held.add(event.id);
    t.own.push(event.id);
    if (
      event.type === DomainEventType.EncounterCompleted ||
      event.type === DomainEventType.EncounterCancelled
    )
      t.closed.add(event.subject.id);
    // The listeners checked before the event was counted as saved: check again with it.
    check();
  }
  await due(s.durationMs);
  for (const f of facilities)
    if (f.relay?.up === true) f.relay.lives.at(-1)!.ownAtEnd = f.relay.node.log.ownHistory().assigned;
  checkQueues();
  check();
  return measure(run, network, divergence, quiescentAtMs, convergedSince);
}
