// Model-based convergence test: 2–6 in-process devices with real logs on in-memory
// storage, connected by a seeded fake network that partitions, drops (as disconnects),
// duplicates, reorders and truncates. After the faults stop and the network heals,
// every device must hold the same events, the same Automerge heads and byte-identical
// projections, equal to a reference fold of the union of all acknowledged events.
//
// One more enrolled device runs a modified client (`hostileDevice`): it writes out-of-range
// and made-up root-index entries, skips sequence numbers, stamps far-future clocks, re-signs
// honest devices' event ids, signs one seq twice and pads events with thousands of unknown keys.
// The honest devices must still converge among themselves, hold every acknowledged event and
// keep serving projections (issue #13).
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { tentative, type LogState } from '@accord/domain';
import {
  canonicalEncode,
  type EventId,
  type FacilityId,
  type JsonValue,
  type SignedEvent,
} from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import {
  FakeNetwork,
  REPO_SYNC_THROTTLE_MS,
  compareReplicas,
  propertyBudget,
  seedEntropy,
} from '@accord/testkit';
import {
  DEFAULT_MAX_DRIFT_MS,
  formatHlc,
  MAX_HLC_COUNTER,
  MAX_HLC_WALL_MS,
  parseHlc,
} from '@accord/protocol';
import type { HostileDevice } from '@accord/testkit';
import { DeviceLog } from './device-log.js';
import { hostileDevice, makeFacility, type TestFacility } from './testing.js';

const FACILITY = 'model-facility' as FacilityId;

interface Node {
  readonly name: string;
  readonly store: MemoryEventStore;
  readonly storage: MemoryStorageAdapter;
  log: DeviceLog;
}

interface World {
  readonly net: FakeNetwork;
  readonly facility: TestFacility;
  /** The honest devices. */
  readonly nodes: Node[];
  /** The modified client, and the log its documents live in (it syncs like any device). */
  readonly hostile: { readonly node: Node; readonly client: HostileDevice };
  /** True once a hostile command ran: incidents are then expected. */
  attacked: boolean;
  /** Every event some device acknowledged, by id. */
  readonly acknowledged: Map<EventId, SignedEvent>;
  counter: number;
}

type DraftKind = 'register' | 'update' | 'stock' | 'vaccinate' | 'checkin';

async function openNode(
  world: World,
  index: number,
  store: MemoryEventStore,
  storage: MemoryStorageAdapter,
): Promise<DeviceLog> {
  const name = `n${index}`;
  return DeviceLog.open({
    facility: FACILITY,
    key: world.facility.keys[index]!,
    eventStore: store,
    storage,
    roster: world.facility.roster,
    network: [world.net.adapter(name)],
  });
}

function draftFor(
  world: World,
  kind: DraftKind,
  node: Node,
  pick: number,
): { type: string; data: JsonValue } {
  const n = ++world.counter;
  const patients = node.log.tentative().patients();
  const patient = patients.length > 0 ? patients[pick % patients.length]! : undefined;
  switch (kind) {
    case 'update':
      if (patient !== undefined) {
        return {
          type: 'PatientDemographicsUpdated',
          data: { patientId: patient.id, changes: { givenName: `G${n}` } },
        };
      }
      break;
    case 'stock':
      return {
        type: 'StockReceived',
        data: { lot: `L${pick % 3}`, antigen: 'BCG', quantity: 10, expiry: '2030-01-01' },
      };
    case 'vaccinate':
      if (patient !== undefined) {
        return {
          type: 'VaccinationAdministered',
          data: { patientId: patient.id, antigen: 'BCG', dose: 1, lot: `L${pick % 3}`, date: '2026-11-01' },
        };
      }
      break;
    case 'checkin':
      if (patient !== undefined)
        return { type: 'PatientCheckedIn', data: { patientId: patient.id, encounterId: `E${n}` } };
      break;
    case 'register':
      break;
  }
  return {
    type: 'PatientRegistered',
    data: {
      patientId: `P${n}`,
      nationalId: `N${n}`,
      givenName: 'Ama',
      familyName: `F${n}`,
      birthDate: '2020-01-01',
      sex: 'female',
    },
  };
}

class AppendCommand implements fc.AsyncCommand<object, World> {
  constructor(
    readonly device: number,
    readonly kind: DraftKind,
    readonly pick: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_: object, world: World): Promise<void> {
    const node = world.nodes[this.device % world.nodes.length]!;
    const { event } = await node.log.append(draftFor(world, this.kind, node, this.pick));
    world.acknowledged.set(event.id, event);
    // Acknowledged means visible at once on this device.
    expect(node.log.get(event.id)?.event.id).toBe(event.id);
  }
  toString(): string {
    return `append(n${this.device}, ${this.kind}, ${this.pick})`;
  }
}

type HostileKind = 'index' | 'skip' | 'future' | 'foreign-id' | 'equivocate' | 'unknown-keys';

/** The modified client does one thing a changed build of the app could do. */
class HostileCommand implements fc.AsyncCommand<object, World> {
  constructor(
    readonly kind: HostileKind,
    readonly pick: number,
  ) {}
  check(): boolean {
    return true;
  }
  async run(_: object, world: World): Promise<void> {
    world.attacked = true;
    const h = world.hostile.client;
    const n = ++world.counter;
    const registration = (givenName: string) => ({
      type: 'PatientRegistered',
      subject: { kind: 'patient', id: `H${n}` },
      data: {
        patientId: `H${n}`,
        nationalId: `HN${n}`,
        givenName,
        familyName: 'Hostile',
        birthDate: '2020-01-01',
        sex: 'female',
      },
    });
    switch (this.kind) {
      case 'index': {
        const honest = world.nodes[this.pick % world.nodes.length]!.log.deviceId;
        const values: unknown[] = [999_999, 0, -1, 1.5, 'many', 2 ** 53];
        await h.setIndex(this.pick % 2 === 0 ? honest : `junk-${n}`, values[this.pick % values.length]);
        break;
      }
      case 'skip':
        h.continueAfter(h.nextSeq + (this.pick % 3));
        await h.write([await h.sign(registration('Skipped'))]);
        break;
      case 'future': {
        const hlc =
          this.pick % 2 === 0
            ? formatHlc(MAX_HLC_WALL_MS, MAX_HLC_COUNTER)
            : formatHlc(Date.UTC(2099, 0, 1), 0);
        await h.write([await h.sign({ ...registration('Future'), hlc })]);
        break;
      }
      case 'foreign-id': {
        const ids = [...world.acknowledged.keys()];
        if (ids.length === 0) return;
        const id = ids[this.pick % ids.length]!;
        await h.write([await h.sign({ ...registration('Forged'), id })]);
        break;
      }
      case 'equivocate': {
        const seq = h.nextSeq;
        const one = await h.sign({ ...registration('One'), seq });
        const other = await h.sign({ ...registration('Other'), seq });
        await h.write([one, other]);
        break;
      }
      case 'unknown-keys': {
        const data: Record<string, string> = { ...registration('Padded').data };
        const keys = this.pick % 2 === 0 ? 7000 : 200; // over and under the event size limit
        for (let i = 0; i < keys; i++) data[`k${i}`] = 'x';
        await h.write([await h.sign({ ...registration('Padded'), data })]);
        break;
      }
    }
  }
  toString(): string {
    return `hostile(${this.kind}, ${this.pick})`;
  }
}

class PartitionCommand implements fc.AsyncCommand<object, World> {
  constructor(readonly split: number[]) {}
  check(): boolean {
    return true;
  }
  async run(_: object, world: World): Promise<void> {
    const groups: string[][] = [[], []];
    world.nodes.forEach((node, i) => groups[(this.split[i] ?? 0) % 2]!.push(node.name));
    groups[(this.split[world.nodes.length] ?? 0) % 2]!.push(world.hostile.node.name);
    world.net.partition(groups.filter((g) => g.length > 0));
    await world.net.deliverAll();
  }
  toString(): string {
    return `partition(${this.split.join('')})`;
  }
}

class HealCommand implements fc.AsyncCommand<object, World> {
  check(): boolean {
    return true;
  }
  async run(_: object, world: World): Promise<void> {
    world.net.heal();
    await world.net.deliverAll();
  }
  toString(): string {
    return 'heal';
  }
}

class DeliverCommand implements fc.AsyncCommand<object, World> {
  check(): boolean {
    return true;
  }
  async run(_: object, world: World): Promise<void> {
    await world.net.deliverAll();
  }
  toString(): string {
    return 'deliver';
  }
}

class RestartCommand implements fc.AsyncCommand<object, World> {
  constructor(readonly device: number) {}
  check(): boolean {
    return true;
  }
  async run(_: object, world: World): Promise<void> {
    const index = this.device % world.nodes.length;
    const node = world.nodes[index]!;
    await node.log.close();
    node.log = await openNode(world, index, node.store, node.storage);
    // Everything this device acknowledged survived the restart.
    for (const event of world.acknowledged.values()) {
      if (event.device === node.log.deviceId) expect(node.log.get(event.id)?.event.id).toBe(event.id);
    }
  }
  toString(): string {
    return `restart(n${this.device})`;
  }
}

function projectionJson(events: Iterable<SignedEvent>): string {
  const state: LogState = { events: new Map([...events].map((e) => [e.id, e])), relay: null };
  return new TextDecoder().decode(canonicalEncode(tentative(state).toJSON()));
}

/** Lets the Repos' throttled sync and the logs' own timers fire, on the fake clock. */
function advanceRepoTimers(): Promise<unknown> {
  return vi.advanceTimersByTimeAsync(REPO_SYNC_THROTTLE_MS + 10);
}

async function converge(world: World): Promise<void> {
  world.net.setFaults({ dropRate: 0, duplicateRate: 0, reorderRate: 0, truncateRate: 0 });
  world.net.heal();
  const all = [...world.nodes, world.hostile.node];
  for (let round = 0; round < 50; round++) {
    await world.net.quiet();
    await Promise.all(all.map((n) => n.log.settled()));
    const sizes = world.nodes.map((n) => n.log.size());
    const heads = world.nodes.map((n) => JSON.stringify(n.log.heads()));
    const complete = world.nodes.every((n) => [...world.acknowledged.keys()].every((id) => n.log.get(id)));
    if (complete && sizes.every((s) => s === sizes[0]) && heads.every((h) => h === heads[0])) return;
  }
}

const command = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.nat(5),
        fc.constantFrom<DraftKind>('register', 'update', 'stock', 'vaccinate', 'checkin'),
        fc.nat(50),
      )
      .map(([d, k, p]) => new AppendCommand(d, k, p)),
  },
  {
    weight: 1,
    arbitrary: fc
      .array(fc.nat(1), { minLength: 7, maxLength: 7 })
      .map((split) => new PartitionCommand(split)),
  },
  { weight: 1, arbitrary: fc.constant(new HealCommand()) },
  { weight: 2, arbitrary: fc.constant(new DeliverCommand()) },
  { weight: 1, arbitrary: fc.nat(5).map((d) => new RestartCommand(d)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.constantFrom<HostileKind>('index', 'skip', 'future', 'foreign-id', 'equivocate', 'unknown-keys'),
        fc.nat(50),
      )
      .map(([kind, pick]) => new HostileCommand(kind, pick)),
  },
);

/**
 * The Repos' throttle and the logs' own timers run on Vitest's fake clock, which each quiet
 * round advances at once (and which also follows real time, so a wait outside a round, such as
 * `settled()` on a push delay, still ends): a run takes 2–4 s of wall time instead of 6–10 s of
 * mostly real timers. The limit grows with `FC_NUM_RUNS`, so that a long exploration ends with
 * fast-check's answer, not a timeout.
 */
const budget = propertyBudget(8, { baseMs: 80_000, perRunMs: 20_000 });

describe('DeviceLog convergence (model)', { timeout: budget.timeoutMs }, () => {
  beforeEach(() => {
    // Date stays real: the honest-append check below compares stamps with the wall clock.
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'],
      shouldAdvanceTime: true,
    });
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  it('converges to identical heads, events and projections after any faults', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 6 }),
        fc.integer({ min: 0, max: 0x7fffffff }),
        fc.record({
          dropRate: fc.double({ min: 0, max: 0.2, noNaN: true }),
          duplicateRate: fc.double({ min: 0, max: 0.2, noNaN: true }),
          reorderRate: fc.double({ min: 0, max: 0.3, noNaN: true }),
          truncateRate: fc.double({ min: 0, max: 0.1, noNaN: true }),
        }),
        fc.commands([command], { maxCommands: 20 }),
        async (size, netSeed, faults, commands) => {
          // Event ids and Automerge actors draw on crypto.getRandomValues: seed them too.
          const entropy = seedEntropy(netSeed);
          // The last key is the modified client's: enrolled like the others.
          const facility = await makeFacility(FACILITY, size + 1, netSeed);
          const net = new FakeNetwork({ seed: netSeed, ...faults, settle: advanceRepoTimers });
          const hostileNode = await (async (): Promise<Node> => {
            const store = new MemoryEventStore();
            const storage = new MemoryStorageAdapter();
            const log = await DeviceLog.open({
              facility: FACILITY,
              key: facility.keys[size]!,
              eventStore: store,
              storage,
              roster: facility.roster,
              network: [net.adapter('hostile')],
            });
            return { name: 'hostile', store, storage, log };
          })();
          const world: World = {
            net,
            facility,
            nodes: [],
            hostile: { node: hostileNode, client: hostileDevice(hostileNode.log, facility.keys[size]!) },
            attacked: false,
            acknowledged: new Map(),
            counter: 0,
          };
          for (let i = 0; i < size; i++) {
            const store = new MemoryEventStore();
            const storage = new MemoryStorageAdapter();
            world.nodes.push({
              name: `n${i}`,
              store,
              storage,
              log: await openNode(world, i, store, storage),
            });
          }
          try {
            await fc.asyncModelRun(() => ({ model: {}, real: world }), commands);
            await converge(world);
            const hostileId = world.hostile.node.log.deviceId;
            const replicas = world.nodes.map((node) => ({
              name: node.name,
              heads: node.log.heads(),
              events: node.log
                .list()
                .map((info) => info.event.id as string)
                .sort(),
              projection: new TextDecoder().decode(canonicalEncode(node.log.tentative().toJSON())),
            }));
            // Honest devices agree with each other; without an attack, also with the reference
            // fold of what was acknowledged.
            const verdict = world.attacked
              ? compareReplicas(replicas)
              : compareReplicas(replicas, {
                  events: [...world.acknowledged.keys()].sort(),
                  projection: projectionJson(world.acknowledged.values()),
                });
            if (!verdict.ok) throw new Error(`replicas differ (net seed ${netSeed}):\n${verdict.report}`);
            for (const node of world.nodes) {
              // Every acknowledged event is shown, whatever the modified client did.
              for (const id of world.acknowledged.keys()) expect(node.log.get(id)?.event.id).toBe(id);
              const report = node.log.integrity();
              expect(report.holes.filter((h) => h.device !== hostileId)).toEqual([]);
              expect(node.log.withheld().every((w) => w.device === hostileId)).toBe(true);
              if (!world.attacked) expect(report.incidents).toBe(0);
              // Honest appends still work after whatever the modified client wrote, also after a
              // restart (a far-future stamp must not poison the clock it resumes from).
              await node.log.append(draftFor(world, 'register', node, 0));
              await node.log.close();
              node.log = await openNode(world, world.nodes.indexOf(node), node.store, node.storage);
              const { event } = await node.log.append(draftFor(world, 'register', node, 0));
              expect(parseHlc(event.hlc).wallMs).toBeLessThanOrEqual(Date.now() + DEFAULT_MAX_DRIFT_MS);
            }
          } finally {
            for (const node of [...world.nodes, world.hostile.node]) await node.log.close();
            entropy.restore();
          }
        },
      ),
      budget.parameters,
    );
  });
});
