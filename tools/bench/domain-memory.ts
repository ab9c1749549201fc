// Resident memory per event of the domain's projections (issue #12's growth target): builds a
// `ProjectionFolder` with a source over `n` bench-like patient registrations accepted by
// `AcceptedVerdicts` of 1000 (verdicts added first, as a log's start-up scan reads them), builds the
// confirmed and a tentative view, and reports the retained heap per event after a forced collection,
// minus the heap once the folder is dropped. The folder's own id strings are counted (it parses its
// events back from the source); the bench holds the verdicts outside the measure. A second figure
// counts the verdicts too, parsed inside the measure as a device's log holds them (resident, with
// their targets: a 26-character id string and an array slot per accepted event).
// Usage: node --expose-gc --conditions=@accord/source --import tsx tools/bench/domain-memory.ts [n...]
import type { EventId, SignedEvent } from '@accord/protocol';
import { ProjectionFolder } from '@accord/domain';
import { EventFactory, testDeviceId } from '@accord/domain/testing';
import { draft } from './log-bench.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');
const heap = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

/** CPU time of the last build (the folder and both views; no forced collection), in ms. */
let buildCpuMs = 0;

/** Builds the folder and both views, and returns the heap while they are held. */
function build(
  relay: ReturnType<typeof testDeviceId>,
  verdicts: () => readonly SignedEvent[],
  ids: readonly EventId[],
  source: { event(id: EventId): SignedEvent },
  n: number,
): number {
  const cpu = process.cpuUsage();
  const folder = new ProjectionFolder(relay, source);
  for (const v of verdicts()) folder.add(v);
  for (const id of ids) folder.add(source.event(id));
  const confirmed = folder.confirmed();
  const tentative = folder.tentative();
  if (confirmed.appliedCount !== n || tentative.appliedCount !== n) throw new Error('not folded');
  const used = process.cpuUsage(cpu);
  buildCpuMs = (used.user + used.system) / 1000;
  const held = heap();
  if (folder.size === 0) throw new Error('unreachable');
  return held;
}

function measure(n: number, verdictsInside: boolean): number {
  const f = new EventFactory({ salt: 7 });
  const device = testDeviceId(1);
  const encoded = new Map<EventId, string>();
  const ids: EventId[] = [];
  const events: SignedEvent[] = [];
  for (let i = 0; i < n; i++) {
    const d = draft(i);
    const e = f.event(device, d.type, d.data);
    ids.push(e.id);
    events.push(e);
  }
  const verdicts: SignedEvent[] = [];
  for (let i = 0; i < n; i += 1000) verdicts.push(f.acceptAll(events.slice(i, i + 1000)));
  for (const e of events) encoded.set(e.id, JSON.stringify(e));
  events.length = 0;
  const source = { event: (id: EventId): SignedEvent => JSON.parse(encoded.get(id)!) as SignedEvent };
  const before = heap();
  const encodedVerdicts = verdictsInside ? verdicts.map((v) => JSON.stringify(v)) : [];
  if (verdictsInside) verdicts.length = 0;
  // Parsed inside `build` (a temporary made here could stay alive in this frame's registers).
  const held = verdictsInside
    ? build(f.relay, () => encodedVerdicts.map((v) => JSON.parse(v) as SignedEvent), ids, source, n)
    : build(f.relay, () => verdicts, ids, source, n);
  const after = heap();
  void before;
  return (held - after) / n;
}

for (const arg of process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['100000', '300000']) {
  const n = Number(arg);
  console.log(
    `${n} events: ${measure(n, false).toFixed(0)} B/event retained by the folder and its views (built in ${buildCpuMs.toFixed(0)} ms of CPU)`,
  );
  console.log(
    `${n} events: ${measure(n, true).toFixed(0)} B/event with the relay's AcceptedVerdicts (as a device holds them)`,
  );
}
