import { readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DeviceAgent, initDevice, type Draft } from '@accord/device';
import { AccordError, ErrorCode, type EventId } from '@accord/protocol';
import { createEnrollmentToken, createRelayLogger, openRelayFolder, Relay } from '@accord/relay';
import type { CliIo } from './cli.js';
import { syncCentrePageOrNothing } from './sync-centre-page.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Folder holding the demo facility (`relay/` and one sub-folder per device). */
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

/** A folder made by the relay-less demo of earlier versions: its devices share a roster file. */
async function isOldDemo(dir: string): Promise<boolean> {
  for (const d of DEMO_DEVICES) {
    try {
      const config = JSON.parse(await readFile(join(dir, d.dir, 'device.json'), 'utf8')) as {
        relay?: unknown;
      };
      if (config.relay === undefined) return true;
    } catch {
      // Not initialized yet.
    }
  }
  return false;
}

/**
 * Runs the demo facility: a relay and three agents on loopback. Reception and the vaccination
 * room sync with the relay and with each other; the pharmacy talks only to them (peer to peer),
 * so the relay's verdicts reach it through its peers.
 *
 * @remarks On the first run the relay is created under `DIR/relay`, the devices enroll with
 * one-time tokens, and example events are recorded — one of them drives a lot below zero, so
 * the relay's 422 deadletter shows on every device (`GET /api/deadletters`). Prints each device's
 * ready line and URLs, then waits for `io.stopSignal()` (or stops at once with `exitAfterReady`)
 * and stops everything cleanly.
 * @throws AccordError `CLI_USAGE` when `DIR` holds a demo of an earlier, relay-less version.
 */
export async function runDemo(opts: DemoOptions, io: CliIo): Promise<number> {
  const dir = resolve(opts.data);
  if (await isOldDemo(dir)) {
    throw new AccordError(
      ErrorCode.CLI_USAGE,
      `${dir} holds a demo made without a relay; remove it or choose another folder with --data`,
    );
  }
  const stop = io.stopSignal();
  const relay = await Relay.start({
    data: join(dir, 'relay'),
    port: 0,
    logger: createRelayLogger({ level: 'warn', destination: 2 }),
  });
  const agents: DeviceAgent[] = [];
  try {
    const relayUrl = `ws://127.0.0.1:${relay.port}`;
    const { layout } = await openRelayFolder(join(dir, 'relay'));
    for (const d of DEMO_DEVICES) {
      if (!(await exists(join(dir, d.dir, 'device.json')))) {
        const { token } = await createEnrollmentToken(layout, DEMO_FACILITY);
        await initDevice({ data: join(dir, d.dir), name: d.name, relay: relayUrl, token });
      }
    }
    const assets = await syncCentrePageOrNothing(io.err);
    const start = async (i: number, listen: boolean, peers: string[]): Promise<DeviceAgent> => {
      const d = DEMO_DEVICES[i]!;
      const agent = await DeviceAgent.start({
        data: join(dir, d.dir),
        peers,
        ...(assets === undefined ? {} : { assets }),
        listenHost: '127.0.0.1',
        // The relay's port changes between runs; the pharmacy never dials it.
        ...(i === 2 ? { dialRelay: false } : { relayUrl }),
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
      // The demo shows verdicts: let them reach every device (the pharmacy through its peers).
      if (!(await settled(agents, 20_000))) io.err('accord demo: some verdicts have not arrived yet');
      await writeFile(marker, JSON.stringify({ seeded: new Date().toISOString() }) + '\n');
    }
    io.out(JSON.stringify(relay.ready()));
    for (const a of agents) io.out(JSON.stringify(a.ready()));
    io.out(`Demo facility "${DEMO_FACILITY}" in ${dir}:`);
    io.out(`  ${'Relay'.padEnd(18)} http://127.0.0.1:${relay.port}/healthz  /metrics`);
    for (const a of agents) {
      io.out(`  ${a.name.padEnd(18)} http://127.0.0.1:${a.httpPort}/  (Sync Centre; API under /api/)`);
    }
    if (!opts.exitAfterReady) {
      io.out('Press Ctrl+C to stop.');
      const signal = await stop;
      io.err(`accord demo: ${signal}: stopping`);
    }
  } finally {
    // Stop in reverse order so that dialers go before the servers they dial.
    for (const a of agents.reverse()) await a.stop();
    await relay.stop();
  }
  return 0;
}

/** Waits until no device has an event without a verdict; false after `timeoutMs`. */
async function settled(agents: readonly DeviceAgent[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const counts = agents.map((a) => a.log.counts());
    if (counts.every((c) => c.pending === 0 && c.total === counts[0]!.total)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
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
      patientId: 'P-0003',
      nationalId: 'NID-1003',
      givenName: 'Chebet',
      familyName: 'Kiprop',
      birthDate: day(-3),
      sex: 'female',
    },
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
  // The BCG lot is nearly used up: the second dose of the day drives it below zero, and the
  // relay rejects it (422) — visible on every device until someone resolves it.
  await append(vaccination, {
    type: 'StockConsumed',
    data: { lot: 'BCG-24-001', quantity: 39, reason: 'vials lost in a cold-chain failure' },
  });
  await append(vaccination, {
    type: 'VaccinationAdministered',
    data: { patientId: 'P-0003', antigen: 'BCG', dose: 1, lot: 'BCG-24-001', date: day(0) },
  });
  await append(vaccination, {
    type: 'VaccinationAdministered',
    data: { patientId: 'P-0002', antigen: 'BCG', dose: 1, lot: 'BCG-24-001', date: day(0) },
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
