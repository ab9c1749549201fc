import { describe, expect, it } from 'vitest';
import { compareReplicas, type ReplicaSnapshot } from './index.js';

const replica = (name: string, over: Partial<ReplicaSnapshot> = {}): ReplicaSnapshot => ({
  name,
  heads: ['h2', 'h1'],
  events: ['e1', 'e2', 'e3'],
  projection: JSON.stringify({ patients: { p1: { name: 'Ama' } }, stock: [5, 3] }),
  ...over,
});

const reportOf = (result: ReturnType<typeof compareReplicas>): string => (result.ok ? '' : result.report);

describe('compareReplicas', () => {
  it('accepts identical replicas, with heads in any order, and an equal reference', () => {
    const a = replica('a');
    const b = replica('b', { heads: ['h1', 'h2'] });
    expect(compareReplicas([a, b])).toEqual({ ok: true });
    expect(compareReplicas([a, b], { events: a.events, projection: a.projection })).toEqual({ ok: true });
    expect(compareReplicas([])).toEqual({ ok: true });
  });

  it('names the replicas whose heads differ, grouped by value', () => {
    const result = compareReplicas([replica('a'), replica('b'), replica('c', { heads: ['h3'] })]);
    expect(result.ok).toBe(false);
    const report = reportOf(result);
    expect(report).toContain('heads differ (2 distinct values)');
    expect(report).toMatch(/a, b: .*h1.*h2/);
    expect(report).toMatch(/c: .*h3/);
  });

  it('lists missing and extra events per replica', () => {
    const report = reportOf(compareReplicas([replica('a'), replica('b', { events: ['e1', 'e3', 'e9'] })]));
    expect(report).toContain('replica b lacks 1 event(s) that replica a has: e2');
    expect(report).toContain('replica b has 1 event(s) that replica a lacks: e9');
  });

  it('flags duplicate and unsorted event lists', () => {
    expect(reportOf(compareReplicas([replica('a', { events: ['e1', 'e1'] })]))).toContain(
      'replica a: events contain duplicates: e1',
    );
    expect(reportOf(compareReplicas([replica('a', { events: ['e2', 'e1'] })]))).toContain(
      'replica a: events are not sorted',
    );
  });

  it('diffs projections structurally, by JSON path', () => {
    const b = replica('b', {
      projection: JSON.stringify({ patients: { p1: { name: 'Ami' }, p2: {} }, stock: [5] }),
    });
    const report = reportOf(compareReplicas([replica('a'), b]));
    expect(report).toContain('replica b: projection differs from replica a:');
    expect(report).toContain('$.patients.p1.name: expected "Ama", actual "Ami"');
    expect(report).toContain('$.patients.p2: unexpected {}');
    expect(report).toContain('$.stock: length 2 expected, 1 actual');
    const missing = reportOf(
      compareReplicas([replica('a'), replica('b', { projection: '{"stock":[5,3]}' })]),
    );
    expect(missing).toContain('$.patients: missing');
  });

  it('falls back to a text diff when a projection is not JSON', () => {
    const report = reportOf(
      compareReplicas([replica('a', { projection: 'abcdef' }), replica('b', { projection: 'abcXef' })]),
    );
    expect(report).toContain('texts differ at character 3');
  });

  it('checks every replica against the reference, including the first', () => {
    const a = replica('a');
    const report = reportOf(
      compareReplicas([a, replica('b')], { events: ['e1', 'e2', 'e3', 'e4'], projection: a.projection }),
    );
    expect(report).toContain('replica a lacks 1 event(s) that the reference has: e4');
    expect(report).toContain('replica b lacks 1 event(s) that the reference has: e4');
    const projection = reportOf(
      compareReplicas([a], { events: a.events, projection: '{"stock":[5,3],"patients":{}}' }),
    );
    expect(projection).toContain('replica a: projection differs from the reference');
    expect(projection).toContain('$.patients.p1: unexpected');
  });

  it('keeps long lists short', () => {
    const many = Array.from({ length: 30 }, (_, i) => `e${String(i).padStart(2, '0')}`);
    const report = reportOf(compareReplicas([replica('a', { events: many }), replica('b', { events: [] })]));
    expect(report).toContain('lacks 30 event(s)');
    expect(report).toContain('… (20 more)');
  });
});
