import { stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DeviceAgent, initDevice, type Draft } from '@accord/device';
import type { EventId } from '@accord/protocol';
import type { CliIo } from './cli.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Folder holding the demo facility (one sub-folder per device and the shared roster). */
  readonly data: string;
  /** Stop cleanly right after every device is ready (tests). */
  readonly exitAfterReady: boolean;
}

/** The demo facility's id. */
export const DEMO_FACILITY = 'demo-clinic';

/** The demo's devices: folder and name. */
export const DEMO_DEVICES = [
  { dir: 'device-1', name: 'Reception' },
  { dir: 'device-2', name: 'Vaccination room' },
  { dir: 'device-3', name: 'Pharmacy' },
] as const;

const DAY = 86_400_000;

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs the demo facility: three agents on loopback, peer to peer (device 1 and 2 listen;
 * 2 dials 1; 3 dials 1 and 2), sharing `DIR/roster.json`.
 *
 * @remarks Initializes the devices that are missing, seeds example events once (marker
 * `DIR/demo.json`), prints each device's ready line and HTTP URL, then waits for
 * `io.stopSignal()` (or stops at once with `exitAfterReady`) and stops every agent cleanly.
 */
export async function runDemo(opts: DemoOptions, io: CliIo): Promise<number> {
  const dir = resolve(opts.data);
  const roster = join(dir, 'roster.json');
  for (const d of DEMO_DEVICES) {
    if (!(await exists(join(dir, d.dir, 'device.json')))) {
      await initDevice({ data: join(dir, d.dir), facility: DEMO_FACILITY, name: d.name, roster });
    }
  }
  const stop = io.stopSignal();
  const agents: DeviceAgent[] = [];
  try {
    const start = async (i: number, listen: boolean, peers: string[]): Promise<DeviceAgent> => {
      const d = DEMO_DEVICES[i]!;
      const agent = await DeviceAgent.start({
        data: join(dir, d.dir),
        roster,
        peers,
        listenHost: '127.0.0.1',
        ...(listen ? { listen: 0 } : {}),
        onDiagnostic: (message) => io.err(`accord demo (${d.name}): ${message}`),
      });
      agents.push(agent);
      return agent;
    };
    const url = (a: DeviceAgent): string => `ws://127.0.0.1:${a.peerPort}`;
    const d1 = await start(0, true, []);
    const d2 = await start(1, true, [url(d1)]);
    const d3 = await start(2, false, [url(d1), url(d2)]);
    const marker = join(dir, 'demo.json');
    if (!(await exists(marker))) {
      await seed(d1, d2, d3);
      await writeFile(marker, JSON.stringify({ seeded: new Date().toISOString() }) + '\n');
    }
    for (const a of agents) io.out(JSON.stringify(a.ready()));
    io.out(`Demo facility "${DEMO_FACILITY}" in ${dir}:`);
    for (const a of agents) io.out(`  ${a.name.padEnd(18)} http://127.0.0.1:${a.httpPort}/api/status`);
    if (!opts.exitAfterReady) {
      io.out('Press Ctrl+C to stop.');
      const signal = await stop;
      io.err(`accord demo: ${signal}: stopping`);
    }
  } finally {
    // Stop in reverse order so that dialers go before the servers they dial.
    for (const a of agents.reverse()) await a.stop();
  }
  return 0;
}

/** A short wait for a peer's event to arrive before building on it (the demo reads better). */
async function seen(agent: DeviceAgent, id: EventId, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (agent.log.get(id) === undefined && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function seed(reception: DeviceAgent, vaccination: DeviceAgent, pharmacy: DeviceAgent): Promise<void> {
  const now = Date.now();
  const day = (offset: number): string => new Date(now + offset * DAY).toISOString().slice(0, 10);
  const append = async (agent: DeviceAgent, draft: Draft): Promise<EventId> =>
    (await agent.log.append(draft)).event.id;
  const expiry = day(365);
  await append(pharmacy, {
    type: 'StockReceived',
    data: { lot: 'BCG-24-001', antigen: 'BCG', quantity: 40, expiry },
  });
  await append(pharmacy, {
    type: 'StockReceived',
    data: { lot: 'OPV-24-017', antigen: 'OPV', quantity: 100, expiry },
  });
  const lastStock = await append(pharmacy, {
    type: 'StockReceived',
    data: { lot: 'MR-24-003', antigen: 'Measles', quantity: 20, expiry },
  });
  await append(reception, {
    type: 'PatientRegistered',
    data: {
      patientId: 'P-0001',
      nationalId: 'NID-1001',
      givenName: 'Amina',
      familyName: 'Wanjiru',
      birthDate: day(-60),
      sex: 'female',
    },
  });
  const second = await append(reception, {
    type: 'PatientRegistered',
    data: {
      patientId: 'P-0002',
      nationalId: 'NID-1002',
      givenName: 'Baraka',
      familyName: 'Otieno',
      birthDate: day(-300),
      sex: 'male',
    },
  });
  await append(reception, { type: 'PatientCheckedIn', data: { patientId: 'P-0002', encounterId: 'E-0001' } });
  await seen(vaccination, second);
  await seen(vaccination, lastStock);
  await append(vaccination, {
    type: 'VaccinationAdministered',
    data: { patientId: 'P-0001', antigen: 'OPV', dose: 1, lot: 'OPV-24-017', date: day(0) },
  });
  await append(vaccination, {
    type: 'AppointmentScheduled',
    data: { appointmentId: 'A-0001', patientId: 'P-0001', antigen: 'OPV', dose: 2, date: day(28) },
  });
  await append(vaccination, {
    type: 'AppointmentScheduled',
    data: { appointmentId: 'A-0002', patientId: 'P-0002', antigen: 'Measles', dose: 1, date: day(0) },
  });
}
