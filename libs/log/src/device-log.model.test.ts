// Model-based convergence test: 2–6 in-process devices with real logs on in-memory
// storage, connected by a seeded fake network that partitions, drops (as disconnects),
// duplicates, reorders and truncates. After the faults stop and the network heals,
// every device must hold the same events, the same Automerge heads and byte-identical
// projections, equal to a reference fold of the union of all acknowledged events.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tentative, type LogState } from '@accord/domain';
import {
  canonicalEncode,
  type EventId,
  type FacilityId,
  type JsonValue,
  type SignedEvent,
} from '@accord/protocol';
import { MemoryEventStore, MemoryStorageAdapter } from '@accord/storage-level';
import { FakeNetwork, compareReplicas, seedEntropy } from '@accord/testkit';
import { DeviceLog } from './device-log.js';
import { makeFacility, type TestFacility } from './testing.js';

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
  readonly nodes: Node[];
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

class PartitionCommand implements fc.AsyncCommand<object, World> {
  constructor(readonly split: number[]) {}
  check(): boolean {
    return true;
  }
  async run(_: object, world: World): Promise<void> {
    const groups: string[][] = [[], []];
    world.nodes.forEach((node, i) => groups[(this.split[i] ?? 0) % 2]!.push(node.name));
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

async function converge(world: World): Promise<void> {
  world.net.setFaults({ dropRate: 0, duplicateRate: 0, reorderRate: 0, truncateRate: 0 });
  world.net.heal();
  for (let round = 0; round < 50; round++) {
    await world.net.quiet();
    await Promise.all(world.nodes.map((n) => n.log.settled()));
    const sizes = world.nodes.map((n) => n.log.size());
    const heads = world.nodes.map((n) => JSON.stringify(n.log.heads()));
    if (sizes.every((s) => s === world.acknowledged.size) && heads.every((h) => h === heads[0])) return;
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
      .array(fc.nat(1), { minLength: 6, maxLength: 6 })
      .map((split) => new PartitionCommand(split)),
  },
  { weight: 1, arbitrary: fc.constant(new HealCommand()) },
  { weight: 2, arbitrary: fc.constant(new DeliverCommand()) },
  { weight: 1, arbitrary: fc.nat(5).map((d) => new RestartCommand(d)) },
);

describe('DeviceLog convergence (model)', () => {
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
          const facility = await makeFacility(FACILITY, size, netSeed);
          const net = new FakeNetwork({ seed: netSeed, ...faults });
          const world: World = { net, facility, nodes: [], acknowledged: new Map(), counter: 0 };
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
            const reference = projectionJson(world.acknowledged.values());
            const referenceIds = [...world.acknowledged.keys()].sort();
            const replicas = world.nodes.map((node) => ({
              name: node.name,
              heads: node.log.heads(),
              events: node.log
                .list()
                .map((info) => info.event.id as string)
                .sort(),
              projection: new TextDecoder().decode(canonicalEncode(node.log.tentative().toJSON())),
            }));
            const verdict = compareReplicas(replicas, { events: referenceIds, projection: reference });
            if (!verdict.ok) throw new Error(`replicas differ (net seed ${netSeed}):\n${verdict.report}`);
            for (const node of world.nodes) {
              const report = node.log.integrity();
              expect(report.holes).toEqual([]);
              expect(report.incidents).toBe(0);
            }
          } finally {
            for (const node of world.nodes) await node.log.close();
            entropy.restore();
          }
        },
      ),
      { numRuns: Number(process.env['FC_NUM_RUNS'] ?? 8) },
    );
  }, 240_000);
});
