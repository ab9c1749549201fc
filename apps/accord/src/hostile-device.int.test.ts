// One enrolled tablet running a modified client, against a relay process and honest agent
// processes (issue #13, scenarios 4 and 5). The modified tablet is an in-process agent whose
// documents `hostileDevice` writes into with the tablet's own enrolled key, exactly as changed
// app code could; everything else is the real `accord` command.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceAgent, loadDevice } from '@accord/device';
import { hostileDevice, patientRegistration } from '@accord/log/testing';
import type { HostileDevice } from '@accord/testkit';
import {
  AgentProcess,
  agentWorkspace,
  enrollDevice,
  eventually,
  RelayProcess,
  runAccord,
} from './test-support.js';

const FACILITY = 'clinic-hostile';
const { path, agents } = agentWorkspace('accord-hostile-device-');

let relay: RelayProcess;
let a: AgentProcess; // dials the relay, listens for peers
let b: AgentProcess; // dials the relay
let m: DeviceAgent; // the modified tablet (in-process), dials the relay and A
let hostile: HostileDevice;
const ids: Record<string, string> = {};

const patient = patientRegistration;

interface PatientView {
  readonly id: string;
  readonly givenName: string;
}
interface Withheld {
  readonly device: string;
  readonly from: number;
  readonly reason: string;
  readonly heldBack: number;
}

async function patients(
  agent: AgentProcess,
): Promise<{ status: number; names: string[]; withheld: Withheld[] }> {
  const res = await fetch(`http://127.0.0.1:${agent.ready.http}/api/patients`);
  const body = (await res.json()) as PatientView[];
  const header = res.headers.get('accord-withheld');
  return {
    status: res.status,
    names: res.status === 200 ? body.map((p) => `${p.id}:${p.givenName}`).sort() : [],
    withheld: header === null ? [] : (JSON.parse(header) as Withheld[]),
  };
}

async function status(agent: AgentProcess, id: string): Promise<string | undefined> {
  const res = await agent.api<{ status: string }>('GET', `/api/events/${id}`);
  return res.status === 200 ? res.json.status : undefined;
}

async function record(agent: AgentProcess, draft: ReturnType<typeof patient>): Promise<string> {
  const res = await agent.api<{ id: string }>('POST', '/api/events', { type: draft.type, data: draft.data });
  expect(res.status, JSON.stringify(res.json)).toBe(201);
  return res.json.id;
}

beforeAll(async () => {
  relay = await RelayProcess.start(path('relay'), { logLevel: 'warn' });
  for (const name of ['a', 'b', 'm', 'c']) ids[name] = await enrollDevice(relay, path(name), name, FACILITY);
  [a, b] = await Promise.all([
    AgentProcess.start(['--data', path('a'), '--listen', '0', '--listen-host', '127.0.0.1']),
    AgentProcess.start(['--data', path('b')]),
  ]);
  agents.push(a, b);
  m = await DeviceAgent.start({ data: path('m'), peers: [a.peerUrl] });
  hostile = hostileDevice(m.log, (await loadDevice(path('m'))).key);
}, 60_000);

afterAll(async () => {
  await m?.stop();
  await relay?.stop('SIGKILL');
});

describe('one hostile tablet', () => {
  it("cannot re-sign another tablet's event id to have the genuine one dropped, even where its copy arrives first", async () => {
    // B registers a patient; the relay accepts it. The hostile tablet takes that event's id.
    const genuineId = await record(b, patient('P1', 'Kofi'));
    await eventually('P1 accepted on B', async () => (await status(b, genuineId)) === 'accepted');
    const forged = await hostile.sign({ ...patient('P1', 'Forged'), id: genuineId as never, seq: 1 });
    hostile.continueAfter(0); // its own sequence is untouched: the forgery is refused, never stored
    await hostile.write([forged]);

    // A new tablet C dials only A, which follows (and so serves) the hostile tablet's segment with
    // the forged copy and B's segment with the genuine one. Which C reads first is up to sync
    // (the log's unit test, hostile.test.ts, covers the forged copy arriving first).
    const c = await AgentProcess.start(['--data', path('c'), '--no-relay', '--peer', a.peerUrl]);
    agents.push(c);
    await eventually(
      'the genuine P1 on C, accepted',
      async () => (await status(c, genuineId)) === 'accepted',
    );
    const seen = await patients(c);
    expect(seen.names).toContain('P1:Kofi');
    expect(seen.names).not.toContain('P1:Forged');
    const incidents = await a.api<{ code: string; eventId?: string; device?: string }[]>(
      'GET',
      '/api/incidents',
    );
    expect(incidents.json).toContainEqual(
      expect.objectContaining({ code: 'LOG_FORGED_EVENT', eventId: genuineId, device: ids['m'] }),
    );
    // B's next event is shown on C too: no hole was left behind the genuine one.
    const next = await record(b, patient('P2', 'Esi'));
    await eventually('P2 on C', async () => (await status(c, next)) !== undefined);
  }, 90_000);

  it('that skips a sequence number withholds only its own later events: every other projection stays served, also after revocation and a restart', async () => {
    const signed = [await hostile.sign(patient('M1')), await hostile.sign(patient('M2'))];
    hostile.continueAfter(3); // seq 3 is never signed
    signed.push(await hostile.sign(patient('M4')));
    await hostile.write(signed);
    const fromA = await record(a, patient('A1'));
    const fromB = await record(b, patient('B1'));

    // The relay keeps judging everyone else.
    await eventually('A1 and B1 accepted on A and B', async () =>
      (await Promise.all([a, b].flatMap((d) => [status(d, fromA), status(d, fromB)]))).every(
        (s) => s === 'accepted',
      ),
    );
    for (const device of [a, b]) {
      await eventually('M1, M2 and the hole on every device', async () => {
        const seen = await patients(device);
        return seen.names.includes('M2:Ama') && seen.withheld.length === 1;
      });
      const seen = await patients(device);
      expect(seen.status).toBe(200);
      expect(seen.names).toEqual(['A1:Ama', 'B1:Ama', 'M1:Ama', 'M2:Ama', 'P1:Kofi', 'P2:Esi']);
      expect(seen.withheld).toEqual([{ device: ids['m'], from: 3, reason: 'hole', heldBack: 1 }]);
      const counters = await device.api('GET', '/api/counters');
      expect(counters.status).toBe(200);
    }

    // Revoked, its hole stops mattering: nothing is reported withheld any more, on a restart too.
    const revoked = await runAccord(['relay', 'revoke', '--data', path('relay'), '--device', ids['m']!]);
    expect(revoked.code, revoked.stderr).toBe(0);
    await eventually('the revocation to reach A', async () => (await patients(a)).withheld.length === 0);
    await a.stop('SIGTERM');
    const index = agents.indexOf(a);
    a = await AgentProcess.start(['--data', path('a'), '--listen', '0', '--listen-host', '127.0.0.1']);
    agents.splice(index, 1, a);
    const after = await patients(a);
    expect(after).toMatchObject({ status: 200, withheld: [] });
    expect(after.names).toEqual(['A1:Ama', 'B1:Ama', 'M1:Ama', 'M2:Ama', 'P1:Kofi', 'P2:Esi']);
  }, 90_000);
});
