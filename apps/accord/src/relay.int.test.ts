// A relay process and device agent processes on loopback, driven only through the `accord`
// command and the agents' HTTP API: every rejection code the relay answers with reaches every
// device, including one that only talks to a peer (P3); forged and hostile input is refused (P6).
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentProcess,
  agentWorkspace,
  enrollDevice,
  enrollmentToken,
  eventually,
  registration,
  RelayProcess,
  runAccord,
} from './test-support.js';

const { path, agents } = agentWorkspace('accord-relay-');
const FACILITY = 'clinic-a';
const OTHER_FACILITY = 'clinic-b';

/** What `GET /api/events/:id` answers. */
interface EventView {
  readonly event: { readonly id: string; readonly device: string };
  readonly status: 'pending' | 'accepted' | 'deadletter' | 'resolved';
  readonly verdict?: { readonly id: string };
  readonly verdictData?: {
    readonly outcome: string;
    readonly seq?: number;
    readonly code?: number;
    readonly rule?: string;
    readonly details?: Record<string, unknown>;
  };
}

interface Status {
  readonly relay: { connected: boolean; lastContact: string | null } | null;
  readonly peers: { peer: string; connected: boolean; url?: string; state?: string }[];
  readonly counts: Record<string, number>;
  readonly confirmedSeq: number;
}

let relay: RelayProcess;
let a: AgentProcess; // dials the relay
let b: AgentProcess; // dials the relay and listens for peers
let c: AgentProcess; // peer of b only: never talks to the relay itself
let facilityB: AgentProcess; // enrolled in another facility of the same relay
const ids: Record<string, string> = {};

async function post(agent: AgentProcess, body: unknown): Promise<string> {
  const res = await agent.api<{ id: string }>('POST', '/api/events', body);
  expect(res.status, JSON.stringify(res.json)).toBe(201);
  return res.json.id;
}

async function view(agent: AgentProcess, id: string): Promise<EventView | undefined> {
  const res = await agent.api<EventView>('GET', `/api/events/${id}`);
  return res.status === 200 ? res.json : undefined;
}

/**
 * Waits until every device holds event `id` with status `status` and the same latest verdict,
 * checks that they show the same outcome, and returns it.
 */
async function outcome(
  devices: readonly AgentProcess[],
  id: string,
  status: EventView['status'],
): Promise<EventView> {
  let views: (EventView | undefined)[] = [];
  await eventually(`${status} for ${id} on every device`, async () => {
    views = await Promise.all(devices.map((d) => view(d, id)));
    const first = views[0];
    return views.every((v) => v !== undefined && v.status === status && v.verdict?.id === first?.verdict?.id);
  }).catch((e: unknown) => {
    const seen = views.map(
      (v, i) => `${devices[i]?.ready.name}: ${v?.status ?? 'absent'} ${JSON.stringify(v?.verdictData)}`,
    );
    throw new Error(`${String(e)}\n${seen.join('\n')}`);
  });
  const [first, ...rest] = views as EventView[];
  for (const v of rest) {
    expect({ status: v.status, verdict: v.verdictData }).toEqual({
      status: first!.status,
      verdict: first!.verdictData,
    });
  }
  return first!;
}

const stock = (lot: string, quantity: number) => ({
  type: 'StockReceived',
  data: { lot, antigen: 'BCG', quantity, expiry: '2030-01-01' },
});
const bcg = (patientId: string, lot: string) => ({
  type: 'VaccinationAdministered',
  data: { patientId, antigen: 'BCG', dose: 1, lot, date: '2025-06-02' },
});
const update = (patientId: string, changes: Record<string, string>) => ({
  type: 'PatientDemographicsUpdated',
  data: { patientId, changes },
});

async function online(devices: readonly AgentProcess[], value: boolean): Promise<void> {
  for (const agent of devices) {
    const res = await agent.api('POST', '/api/network', { online: value });
    expect(res.json).toMatchObject({ online: value });
  }
}

async function patientIds(agent: AgentProcess): Promise<string[]> {
  return (await agent.api<{ id: string }[]>('GET', '/api/patients')).json.map((p) => p.id).sort();
}

beforeAll(async () => {
  relay = await RelayProcess.start(path('relay'), { dependencyDeadline: '2s' });
  const enroll = async (name: string, facility = FACILITY): Promise<void> => {
    ids[name] = await enrollDevice(relay, path(name), `tablet ${name}`, facility);
  };
  await Promise.all([enroll('a'), enroll('b'), enroll('r'), enroll('f', OTHER_FACILITY)]);
  // A device learns of devices enrolled after it from the relay, or from peers it already
  // trusts: the peer-only devices are enrolled after their peers, so they know them.
  await Promise.all([enroll('c'), enroll('q')]);
  [a, b, facilityB] = await Promise.all([
    AgentProcess.start(['--data', path('a')]),
    AgentProcess.start(['--data', path('b'), '--listen', '0', '--listen-host', '127.0.0.1']),
    AgentProcess.start(['--data', path('f')]),
  ]);
  agents.push(a, b, facilityB);
  await eventually('b to hold the roster that lists c', async () =>
    (await readFile(path('b', 'roster.json'), 'utf8')).includes(ids['c']!),
  );
  c = await AgentProcess.start(['--data', path('c'), '--no-relay', '--peer', b.peerUrl]);
  agents.push(c);
});

afterAll(async () => {
  await relay.stop('SIGKILL');
});

describe('relay and devices as processes', () => {
  it('accepts a registration and shows the same verdict on every device, the peer-only one included', async () => {
    const id = await post(a, registration(1));
    const v = await outcome([a, b, c], id, 'accepted');
    expect(v.verdictData).toMatchObject({ outcome: 'accepted', seq: expect.any(Number) as number });
    expect(await patientIds(c)).toContain('P-1');
  });

  it('answers a vaccination that drives a lot negative with 422 and its numbers, and accepts it by itself once stock arrives', async () => {
    await post(a, registration(2));
    await outcome([a, b, c], await post(a, stock('LOT-1', 1)), 'accepted');
    const first = await post(a, bcg('P-1', 'LOT-1'));
    await outcome([a, b, c], first, 'accepted');
    const second = await post(a, bcg('P-2', 'LOT-1'));
    const rejected = await outcome([a, b, c], second, 'deadletter');
    expect(rejected.verdictData).toMatchObject({
      outcome: 'deadletter',
      code: 422,
      rule: 'RULE_NEGATIVE_STOCK',
      details: { lot: 'LOT-1', balance: 0, requested: 1 },
    });
    for (const d of [a, b, c]) {
      const dead = await d.api<{ id: string; code: number }[]>('GET', '/api/deadletters');
      expect(dead.json.map((x) => [x.id, x.code])).toContainEqual([second, 422]);
    }
    // A retry before the stock arrives is judged again and rejected again.
    expect((await c.api('POST', `/api/events/${second}/retry`, {})).status).toBe(201);
    await eventually('a second 422', async () => {
      const v = await view(a, second);
      return v?.status === 'deadletter' && v.verdict?.id !== rejected.verdict?.id;
    });
    // Stock arrives on another device: the relay judges the 422 again by itself (issue #10), so
    // the peer-only device has nothing left to retry.
    await outcome([a, b, c], await post(b, stock('LOT-1', 5)), 'accepted');
    const accepted = await outcome([a, b, c], second, 'accepted');
    expect(accepted.verdictData?.seq).toBeGreaterThan(0);
    const late = await c.api<{ code: string }>('POST', `/api/events/${second}/retry`, {});
    expect([late.status, late.json.code]).toEqual([409, 'DEVICE_NOT_DEADLETTER']);
    const stockView = await c.api<{ lots: { lot: string; balance: number }[] }>('GET', '/api/stock');
    expect(stockView.json.lots.find((l) => l.lot === 'LOT-1')).toMatchObject({ balance: 4 });
  });

  it('answers a concurrent update of the same field with 409 and both values, and merges different fields', async () => {
    await outcome([a, b, c], await post(a, registration(3)), 'accepted');
    // Both devices off the network: neither sees the other's change before the relay does.
    await online([a, b], false);
    const mine = await post(a, update('P-3', { familyName: 'Owusu' }));
    const theirs = await post(b, update('P-3', { familyName: 'Boateng' }));
    await online([a, b], true);
    const views = await Promise.all(
      [mine, theirs].map(async (id) => {
        let v: EventView | undefined;
        await eventually(`a verdict for ${id}`, async () => {
          v = await view(c, id);
          return v !== undefined && (v.status === 'accepted' || v.status === 'deadletter');
        });
        return v!;
      }),
    );
    expect(views.map((v) => v.status).sort()).toEqual(['accepted', 'deadletter']);
    const loser = views.find((v) => v.status === 'deadletter')!.event.id;
    const winner = views.find((v) => v.status === 'accepted')!.event.id;
    const conflict = await outcome([a, b, c], loser, 'deadletter');
    await outcome([a, b, c], winner, 'accepted');
    const names = loser === mine ? ['Boateng', 'Owusu'] : ['Owusu', 'Boateng'];
    expect(conflict.verdictData).toMatchObject({
      code: 409,
      rule: 'RULE_STALE_BASIS',
      details: { field: 'familyName', current: names[0], proposed: names[1], patientId: 'P-3' },
    });

    // Different fields at once: both accepted, both changes in every device's record.
    await online([a, b], false);
    const given = await post(a, update('P-3', { givenName: 'Efua' }));
    const sex = await post(b, update('P-3', { sex: 'other' }));
    await online([a, b], true);
    await outcome([a, b, c], given, 'accepted');
    await outcome([a, b, c], sex, 'accepted');
    for (const d of [a, b, c]) {
      const p = await d.api('GET', '/api/patients/P-3');
      expect(p.json).toMatchObject({ givenName: 'Efua', sex: 'other', familyName: names[0] });
    }
  });

  it('answers an update to a merged patient with 410 naming the survivor', async () => {
    await post(a, registration(4));
    await post(a, registration(5));
    const merge = await post(a, { type: 'PatientsMerged', data: { survivorId: 'P-4', mergedId: 'P-5' } });
    await outcome([a, b, c], merge, 'accepted');
    const late = await post(c, update('P-5', { givenName: 'Late' }));
    const gone = await outcome([a, b, c], late, 'deadletter');
    expect(gone.verdictData).toMatchObject({
      code: 410,
      rule: 'RULE_MERGED',
      details: { survivorId: 'P-4' },
    });
  });

  // The version of this case holds the dependency back in transit (the relay has the event
  // but not what it depends on). With processes that cannot be arranged honestly: automerge-repo
  // hands every document a device holds to every peer, so whoever carries the dependent event to
  // the relay carries its dependency too. libs/relay's in-process test holds the document back
  // with a documentPolicy; here the dependency is present but held out of the confirmed state by
  // its own rejection, which exercises the same 404 and the same automatic re-validation.
  it('answers an event whose dependency is not confirmed with 404, and accepts it by itself once the dependency is', async () => {
    await outcome([a, b, c], await post(b, stock('LOT-2', 10)), 'accepted');
    // Offline, a registers a patient under P-1's national id and vaccinates them at once.
    await online([a], false);
    const reg = registration(20);
    const duplicate = await post(a, { ...reg, data: { ...reg.data, nationalId: 'NID-1' } });
    const dose = await post(a, bcg('P-20', 'LOT-2'));
    const doseEvent = await a.api<{ event: { deps: string[] } }>('GET', `/api/events/${dose}`);
    expect(doseEvent.json.event.deps).toContain(duplicate);
    await online([a], true);
    const conflict = await outcome([a, b, c], duplicate, 'deadletter');
    expect(conflict.verdictData).toMatchObject({
      code: 409,
      rule: 'RULE_DUPLICATE_NATIONAL_ID',
      details: { existingPatientId: 'P-1' },
    });
    const missing = await outcome([a, b, c], dose, 'deadletter');
    expect(missing.verdictData).toMatchObject({
      code: 404,
      rule: 'RULE_DEPENDENCY_MISSING',
      details: { missing: [duplicate] },
    });
    // The national id is corrected on P-1 and the registration retried: the vaccination's 404
    // is superseded by the relay on its own, on every device.
    await outcome([a, b, c], await post(c, update('P-1', { nationalId: 'NID-1-corrected' })), 'accepted');
    expect((await b.api('POST', `/api/events/${duplicate}/retry`, {})).status).toBe(201);
    await outcome([a, b, c], duplicate, 'accepted');
    const superseded = await outcome([a, b, c], dose, 'accepted');
    expect(superseded.verdict?.id).not.toBe(missing.verdict?.id);
    const stockView = await c.api<{ lots: { lot: string; balance: number }[] }>('GET', '/api/stock');
    expect(stockView.json.lots.find((l) => l.lot === 'LOT-2')).toMatchObject({ balance: 9 });
  });

  it('refuses a device that was initialised against a roster file, not enrolled with the relay', async () => {
    const roster = path('intruder-roster.json');
    const init = await runAccord([
      'device',
      'init',
      '--data',
      path('intruder'),
      '--facility',
      FACILITY,
      '--name',
      'intruder',
      '--roster',
      roster,
    ]);
    expect(init.code, init.stderr).toBe(0);
    const intruderId = (JSON.parse(init.stdout) as { device: string }).device;
    // It even trusts the relay (so the refusal is the relay's, not its own).
    const file = JSON.parse(await readFile(roster, 'utf8')) as Record<string, unknown>;
    await writeFile(roster, JSON.stringify({ ...file, relay: relay.id }));
    const intruder = await AgentProcess.start(['--data', path('intruder'), '--peer', relay.url]);
    agents.push(intruder);
    const posted = await post(intruder, registration(66));
    await eventually('the relay to log the refusal', async () =>
      Promise.resolve(relay.logs().some((l) => l['msg'] === 'refused' && l['peer'] === intruderId)),
    );
    expect(relay.logs().find((l) => l['msg'] === 'refused' && l['peer'] === intruderId)).toMatchObject({
      level: 'warn',
      facility: FACILITY,
      stage: 'upgrade',
      reason: 'unknown-device',
    });
    expect(intruder.stderr).toContain('NETWORK_UNKNOWN_DEVICE');
    const status = await intruder.api<Status>('GET', '/api/status');
    expect(status.json.peers.find((p) => p.url === relay.url)).toMatchObject({ connected: false });
    expect(status.json.peers.some((p) => p.connected)).toBe(false);
    expect(await view(a, posted)).toBeUndefined();
    expect(await patientIds(a)).not.toContain('P-66');
    await intruder.stop('SIGKILL');
  });

  it('cuts a revoked device off and answers its later events, carried by a peer, with 403', async () => {
    const r = await AgentProcess.start(['--data', path('r'), '--listen', '0', '--listen-host', '127.0.0.1']);
    agents.push(r);
    const before = await post(r, registration(70));
    await eventually('r connected and holding the roster that lists q', async () => {
      const s = await r.api<Status>('GET', '/api/status');
      const file = await readFile(path('r', 'roster.json'), 'utf8');
      return s.json.relay?.connected === true && file.includes(ids['q']!);
    });
    // q talks to r only, so it never hears of the revocation until it meets the relay.
    let q = await AgentProcess.start(['--data', path('q'), '--no-relay', '--peer', r.peerUrl]);
    agents.push(q);
    await outcome([a, r, q], before, 'accepted');

    const revoked = await runAccord(['relay', 'revoke', '--data', relay.data, '--device', ids['r']!]);
    expect(revoked.code, revoked.stderr).toBe(0);
    await eventually('r cut off by the relay', async () => {
      const s = await r.api<Status>('GET', '/api/status');
      return s.json.relay?.connected === false;
    });
    // It keeps dialing and is refused before any session.
    await eventually('the relay to refuse r when it dials again', async () =>
      Promise.resolve(
        relay
          .logs()
          .some(
            (l) =>
              l['msg'] === 'refused' &&
              l['peer'] === ids['r'] &&
              l['stage'] === 'upgrade' &&
              l['reason'] === 'revoked-device',
          ),
      ),
    );
    await eventually('r to report the refusal', () =>
      Promise.resolve(r.stderr.includes('NETWORK_REVOKED_DEVICE')),
    );
    const after = await post(r, registration(71));
    await eventually(
      'the event to reach q over the peer link',
      async () => (await view(q, after)) !== undefined,
    );
    expect((await r.api<Status>('GET', '/api/status')).json.relay?.connected).toBe(false);

    // q now meets the relay and hands over what r recorded after its revocation.
    await q.stop();
    q = await AgentProcess.start(['--data', path('q')]);
    agents.push(q);
    const refused = await outcome([a, q], after, 'deadletter');
    expect(refused.verdictData).toMatchObject({ code: 403, rule: 'RULE_DEVICE_REVOKED' });
    expect((await view(q, before))?.status).toBe('accepted');
    expect(await patientIds(a)).not.toContain('P-71');
    await Promise.all([r.stop('SIGKILL'), q.stop('SIGKILL')]);
  });

  it('refuses a reused and an expired enrollment token at device init', async () => {
    const [expiring, token] = await Promise.all([
      enrollmentToken(relay.data, FACILITY, '1s'),
      enrollmentToken(relay.data, FACILITY),
    ]);
    // The 1 s TTL must run out; there is no event to wait for.
    const ttl = sleep(1100);
    const init = (dir: string, t: string) =>
      runAccord(['device', 'init', '--data', path(dir), '--name', dir, '--relay', relay.url, '--token', t]);
    const first = await init('t1', token);
    expect(first.code, first.stderr).toBe(0);
    await ttl;
    const [reused, expired] = await Promise.all([init('t2', token), init('t3', expiring)]);
    expect(reused.code).toBe(1);
    expect(reused.stderr).toMatch(/DEVICE_ENROLL_FAILED.*RELAY_TOKEN_USED/);
    expect(expired.code).toBe(1);
    expect(expired.stderr).toMatch(/DEVICE_ENROLL_FAILED.*RELAY_TOKEN_EXPIRED/);
    // A refused init leaves nothing behind: the folder can be initialised again.
    const again = await init('t2', await enrollmentToken(relay.data, FACILITY));
    expect(again.code, again.stderr).toBe(0);
  });

  it("never gives a device of another facility the first facility's events", async () => {
    const own = await post(facilityB, registration(900));
    expect((await facilityB.api<unknown[]>('GET', '/api/incidents')).json).toEqual([]);
    await outcome([facilityB], own, 'accepted');
    const [theirs, ours] = await Promise.all([patientIds(facilityB), patientIds(a)]);
    expect(ours).toEqual(expect.arrayContaining(['P-1', 'P-2', 'P-3', 'P-4']));
    expect(theirs).toEqual(['P-900']);
    const events = await facilityB.api<EventView[]>('GET', '/api/events');
    expect(events.json.map((e) => e.event.device)).toEqual([ids['f']]);
    expect(ours).not.toContain('P-900');
    // And the peer-only device never talked to the relay.
    const cs = await c.api<Status>('GET', '/api/status');
    expect(cs.json.relay).toMatchObject({ connected: false, lastContact: null });
  });
});
