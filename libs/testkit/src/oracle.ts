/** What the convergence oracle knows about one replica. */
export interface ReplicaSnapshot {
  /** A name for the report (node name, device id). */
  name: string;
  /** Automerge heads (or any JSON-able value that must be equal across replicas). */
  heads: unknown;
  /** Ids of the events this replica holds, sorted. */
  events: string[];
  /** The replica's projection, serialized as JSON. */
  projection: string;
}

/** What every replica must equal: typically rebuilt from the merged log of all replicas. */
export interface ReferenceSnapshot {
  /** Ids of every event, sorted. */
  events: string[];
  /** The projection rebuilt from those events, as JSON. */
  projection: string;
}

/** The oracle's answer: `ok`, or a readable report naming each replica and what differs. */
export type CompareResult = { ok: true } | { ok: false; report: string };

const MAX_LISTED = 10;
const MAX_PATHS = 20;

/**
 * Checks that replicas converged: equal heads, equal event sets, equal projections, and,
 * when `reference` is given, events and projection equal to it (yjs's `compare` oracle).
 *
 * @remarks Heads are grouped by value; events and projections are compared with the
 * reference, or with the first replica when there is none. Heads are compared as sets when they are
 * arrays. Event lists are checked for duplicates and order. The report lists at most a
 * few items per difference; projections are diffed structurally when both parse as JSON.
 */
export function compareReplicas(
  replicas: readonly ReplicaSnapshot[],
  reference?: ReferenceSnapshot,
): CompareResult {
  const lines: string[] = [];
  const first = replicas[0];
  if (first === undefined)
    return reference === undefined
      ? { ok: true }
      : { ok: false, report: 'no replicas to compare with the reference' };

  for (const replica of replicas) {
    const problems = eventListProblems(replica.events);
    if (problems !== undefined) lines.push(`replica ${replica.name}: events ${problems}`);
  }

  // Heads: replicas grouped by value, so the report shows who agrees with whom.
  const headGroups = new Map<string, string[]>();
  for (const replica of replicas) {
    const key = canonical(replica.heads);
    headGroups.set(key, [...(headGroups.get(key) ?? []), replica.name]);
  }
  if (headGroups.size > 1) {
    lines.push(`heads differ (${headGroups.size} distinct values):`);
    for (const [heads, names] of headGroups) {
      lines.push(`  ${names.join(', ')}: ${abbreviate(heads)}`);
    }
  }

  const baseline = reference ?? first;
  const baselineName = reference === undefined ? `replica ${first.name}` : 'the reference';
  const baselineEvents = new Set(baseline.events);
  for (const replica of replicas) {
    if (reference === undefined && replica === first) continue;
    const mine = new Set(replica.events);
    const missing = [...baselineEvents].filter((id) => !mine.has(id));
    const extra = [...mine].filter((id) => !baselineEvents.has(id));
    if (missing.length > 0)
      lines.push(
        `replica ${replica.name} lacks ${missing.length} event(s) that ${baselineName} has: ${list(missing)}`,
      );
    if (extra.length > 0)
      lines.push(
        `replica ${replica.name} has ${extra.length} event(s) that ${baselineName} lacks: ${list(extra)}`,
      );
  }

  for (const replica of replicas) {
    if (reference === undefined && replica === first) continue;
    if (replica.projection === baseline.projection) continue;
    const diff = diffJsonText(baseline.projection, replica.projection);
    lines.push(`replica ${replica.name}: projection differs from ${baselineName}:`);
    for (const line of diff) lines.push(`  ${line}`);
  }

  return lines.length === 0 ? { ok: true } : { ok: false, report: lines.join('\n') };
}

function eventListProblems(events: readonly string[]): string | undefined {
  const seen = new Set<string>();
  const duplicates: string[] = [];
  let unsorted = false;
  events.forEach((id, i) => {
    if (seen.has(id)) duplicates.push(id);
    seen.add(id);
    const previous = events[i - 1];
    if (previous !== undefined && previous > id) unsorted = true;
  });
  if (duplicates.length > 0) return `contain duplicates: ${list(duplicates)}`;
  if (unsorted) return 'are not sorted';
  return undefined;
}

/** A stable string for equality: arrays of primitives compare as sets, objects by sorted keys. */
function canonical(value: unknown): string {
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) {
    return JSON.stringify([...(value as unknown[])].map((v) => JSON.stringify(v)).sort());
  }
  return JSON.stringify(sortKeys(value)) ?? String(value);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

function list(items: readonly string[]): string {
  const shown = items.slice(0, MAX_LISTED).join(', ');
  return items.length > MAX_LISTED ? `${shown}, … (${items.length - MAX_LISTED} more)` : shown;
}

function abbreviate(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** Lines describing how `actual` differs from `expected` (JSON texts). */
function diffJsonText(expected: string, actual: string): string[] {
  let a: unknown;
  let b: unknown;
  try {
    a = JSON.parse(expected);
    b = JSON.parse(actual);
  } catch {
    let i = 0;
    while (i < expected.length && expected[i] === actual[i]) i++;
    return [
      `texts differ at character ${i}:`,
      `  expected …${abbreviate(expected.slice(Math.max(0, i - 20)), 80)}`,
      `  actual   …${abbreviate(actual.slice(Math.max(0, i - 20)), 80)}`,
    ];
  }
  const out: string[] = [];
  diffValues(a, b, '$', out);
  if (out.length === 0) out.push('same JSON value, different text (key order or spacing)');
  return out.length > MAX_PATHS
    ? [...out.slice(0, MAX_PATHS), `… (${out.length - MAX_PATHS} more differences)`]
    : out;
}

function diffValues(expected: unknown, actual: unknown, path: string, out: string[]): void {
  if (out.length > MAX_PATHS) return;
  const bothObjects =
    expected !== null && actual !== null && typeof expected === 'object' && typeof actual === 'object';
  if (bothObjects && Array.isArray(expected) === Array.isArray(actual)) {
    if (Array.isArray(expected) && Array.isArray(actual)) {
      if (expected.length !== actual.length)
        out.push(`${path}: length ${expected.length} expected, ${actual.length} actual`);
      const n = Math.min(expected.length, actual.length);
      for (let i = 0; i < n; i++) diffValues(expected[i], actual[i], `${path}[${i}]`, out);
      return;
    }
    const e = expected as Record<string, unknown>;
    const x = actual as Record<string, unknown>;
    for (const key of new Set([...Object.keys(e), ...Object.keys(x)])) {
      const sub = `${path}.${key}`;
      if (!(key in x)) out.push(`${sub}: missing (expected ${short(e[key])})`);
      else if (!(key in e)) out.push(`${sub}: unexpected ${short(x[key])}`);
      else diffValues(e[key], x[key], sub, out);
    }
    return;
  }
  if (JSON.stringify(expected) !== JSON.stringify(actual))
    out.push(`${path}: expected ${short(expected)}, actual ${short(actual)}`);
}

function short(value: unknown): string {
  return abbreviate(JSON.stringify(value) ?? String(value), 80);
}
