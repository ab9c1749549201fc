import { randomBytes } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { DeviceAgent, initDevice, type Draft } from '@accord/device';
import { AccordError, ErrorCode, type EventId } from '@accord/protocol';
import {
  createEnrollmentToken,
  createRelayLogger,
  openRelayFolder,
  Relay,
  setAdminPassword,
} from '@accord/relay';
import type { CliIo } from './cli.js';
import { syncCentrePageOrNothing } from './sync-centre-page.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Folder holding the demo facility (`relay/` and one sub-folder per device). */
  readonly data: string;
  /** Stop cleanly right after every device is ready (tests). */
  readonly exitAfterReady: boolean;
  /** The relay's port; device i (1-based) serves its API on `portBase + i`, its peers on `portBase + 10 + i`. */
  readonly portBase: number;
  /** How many devices (2-9). */
  readonly devices: number;
}

/** The demo facility's id. */
export const DEMO_FACILITY = 'demo-clinic';

/** The demo's default `--port-base`: relay on 8800, devices' Sync Centres on 8801-8803. */
export const DEMO_PORT_BASE = 8800;

/** The demo's default number of devices. */
export const DEMO_DEFAULT_DEVICES = 3;

/** Fewest and most devices of `--devices` (more than 9 would put device ports on peer ports). */
export const DEMO_MIN_DEVICES = 2;
/** See {@link DEMO_MIN_DEVICES}. */
export const DEMO_MAX_DEVICES = 9;

/** The demo's first devices: folder and name (further devices are `device-N`, "Tablet N"). */
export const DEMO_DEVICES = [
  { dir: 'device-1', name: 'Reception' },
  { dir: 'device-2', name: 'Vaccination room' },
  { dir: 'device-3', name: 'Pharmacy' },
] as const;

/** The file, in the demo folder, holding the demo relay's admin password (mode 0600). */
export const DEMO_ADMIN_PASSWORD_FILE = 'admin-password.txt';

/** The ports of a demo facility: what listens where. */
export interface DemoPorts {
  readonly relay: number;
  readonly devices: readonly { readonly http: number; readonly peer: number }[];
}

/** The fixed port layout of `accord demo --port-base P --devices N`. */
export function demoPorts(portBase: number, devices: number): DemoPorts {
  return {
    relay: portBase,
    devices: Array.from({ length: devices }, (_, i) => ({ http: portBase + 1 + i, peer: portBase + 11 + i })),
  };
}

/** Folder and name of device `i` (0-based). */
function demoDevice(i: number): { dir: string; name: string } {
  return DEMO_DEVICES[i] ?? { dir: `device-${i + 1}`, name: `Tablet ${i + 1}` };
}

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
async function isOldDemo(dir: string, devices: number): Promise<boolean> {
  for (let i = 0; i < devices; i++) {
    try {
      const config = JSON.parse(await readFile(join(dir, demoDevice(i).dir, 'device.json'), 'utf8')) as {
        relay?: unknown;
      };
      if (config.relay === undefined) return true;
    } catch {
      // Not initialized yet.
    }
  }
  return false;
}

/** The coded error for a port someone else holds. */
function portInUse(port: number, what: string, cause?: unknown): AccordError {
  return new AccordError(
    ErrorCode.CLI_PORT_IN_USE,
    `port ${port} (${what}) is already in use on 127.0.0.1; stop what holds it, or choose other ports with --port-base`,
    { details: { port, what }, ...(cause === undefined ? {} : { cause }) },
  );
}

const isAddressInUse = (e: unknown): boolean =>
  typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'EADDRINUSE';

/**
 * Checks, before anything is created or started, that every port of the layout can be bound on
 * loopback, so that a taken port fails fast with its number rather than half-way through a start.
 */
async function checkPortsFree(ports: readonly { port: number; what: string }[]): Promise<void> {
  for (const { port, what } of ports) {
    await new Promise<void>((done, fail) => {
      const server = createServer();
      server.once('error', (e) => fail(isAddressInUse(e) ? portInUse(port, what, e) : e));
      server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => done()));
    });
  }
}

/** Reads the demo relay's admin password, or sets a random one on the first run and keeps it in the demo folder. */
async function demoAdminPassword(dir: string): Promise<string> {
  const file = join(dir, DEMO_ADMIN_PASSWORD_FILE);
  if (await exists(file)) return (await readFile(file, 'utf8')).trim();
  // Random per demo folder: a fixed, published password would work on any relay someone forgot
  // to re-key after trying the demo. Set on the relay first, then written: a crash in between
  // only means a new one next time.
  const password = randomBytes(12).toString('base64url');
  const { layout } = await openRelayFolder(join(dir, 'relay'));
  await setAdminPassword(layout, password);
  await writeFile(file, password + '\n', { mode: 0o600 });
  await chmod(file, 0o600);
  return password;
}

/** `DIR/demo.json`: the seed's clock (so that a seed cut short replays the same events) and when it finished. */
interface DemoMarker {
  readonly now: number;
  readonly seeded?: string;
}

async function readMarker(path: string): Promise<DemoMarker | undefined> {
  try {
    const raw = JSON.parse(await readFile(path, 'utf8')) as { now?: unknown; seeded?: unknown };
    // Earlier versions wrote only `seeded`.
    if (typeof raw.seeded === 'string')
      return { now: typeof raw.now === 'number' ? raw.now : 0, seeded: raw.seeded };
    if (typeof raw.now === 'number') return { now: raw.now };
  } catch {
    // No marker yet, or a torn one: seeding is idempotent, start (again) from a fresh clock.
  }
  return undefined;
}

/**
 * Runs the demo facility: a relay and N devices on loopback at fixed ports, every device
 * connected to the relay and to every other device.
 *
 * @remarks On the first run the relay is created under `DIR/relay` with a random admin password
 * (kept in `DIR/admin-password.txt`), the devices enroll with one-time tokens, and example events
 * are recorded through the devices' HTTP APIs — among them a lot driven below zero (422
 * `RULE_NEGATIVE_STOCK`) and a family name changed on two devices from the same basis (409
 * `RULE_STALE_BASIS`), both shown on every device (`GET /api/deadletters`). Every seed write
 * carries an `Idempotency-Key`, so a run stopped while seeding finishes the seed next time without
 * recording anything twice. Prints the ready lines, the URLs and the admin password, then waits
 * for `io.stopSignal()` (or stops at once with `exitAfterReady`) and stops everything cleanly.
 * @throws AccordError `CLI_PORT_IN_USE` when a port of the layout is taken; `CLI_USAGE` when
 * `DIR` holds a demo of an earlier, relay-less version; `CLI_DEMO_SEED_FAILED` when a device
 * refuses a demo event.
 */
export async function runDemo(opts: DemoOptions, io: CliIo): Promise<number> {
  const dir = resolve(opts.data);
  if (await isOldDemo(dir, opts.devices)) {
    throw new AccordError(
      ErrorCode.CLI_USAGE,
      `${dir} holds a demo made without a relay; remove it or choose another folder with --data`,
    );
  }
  const ports = demoPorts(opts.portBase, opts.devices);
  await checkPortsFree([
    { port: ports.relay, what: 'relay' },
    ...ports.devices.flatMap((p, i) => [
      { port: p.http, what: `${demoDevice(i).name}: Sync Centre and API` },
      { port: p.peer, what: `${demoDevice(i).name}: peer listener` },
    ]),
  ]);
  const stop = io.stopSignal();
  const adminPassword = await demoAdminPassword(dir);
  const relay = await Relay.start({
    data: join(dir, 'relay'),
    port: ports.relay,
    logger: createRelayLogger({ level: 'warn', destination: 2 }),
  }).catch((e: unknown) => {
    throw isAddressInUse(e) ? portInUse(ports.relay, 'relay', e) : e;
  });
  const agents: DeviceAgent[] = [];
  try {
    const relayUrl = `ws://127.0.0.1:${relay.port}`;
    const { layout } = await openRelayFolder(join(dir, 'relay'));
    for (let i = 0; i < opts.devices; i++) {
      const d = demoDevice(i);
      if (!(await exists(join(dir, d.dir, 'device.json')))) {
        const { token } = await createEnrollmentToken(layout, DEMO_FACILITY);
        await initDevice({ data: join(dir, d.dir), name: d.name, relay: relayUrl, token });
      }
    }
    const assets = await syncCentrePageOrNothing(io.err);
    for (let i = 0; i < opts.devices; i++) {
      const d = demoDevice(i);
      const p = ports.devices[i]!;
      const agent = await DeviceAgent.start({
        data: join(dir, d.dir),
        // Each device dials those started before it: one link per pair, a full mesh.
        peers: ports.devices.slice(0, i).map((q) => `ws://127.0.0.1:${q.peer}`),
        ...(assets === undefined ? {} : { assets }),
        listen: p.peer,
        listenHost: '127.0.0.1',
        http: p.http,
        // `--port-base` may differ from the run that enrolled the device.
        relayUrl,
        onDiagnostic: (message) => io.err(`accord demo (${d.name}): ${message}`),
      }).catch((e: unknown) => {
        throw isAddressInUse(e) ? portInUse(p.http, `${d.name}: Sync Centre, API or peer listener`, e) : e;
      });
      agents.push(agent);
    }
    const markerPath = join(dir, 'demo.json');
    const marker = await readMarker(markerPath);
    if (marker?.seeded === undefined) {
      const now = marker?.now ?? Date.now();
      await writeFile(markerPath, JSON.stringify({ now }) + '\n');
      const seeding = seed(agents, now).then(async () => {
        // The demo shows verdicts: let them reach every device before saying it is ready.
        if (!(await settled(agents, 20_000))) io.err('accord demo: some verdicts have not arrived yet');
        await writeFile(markerPath, JSON.stringify({ now, seeded: new Date().toISOString() }) + '\n');
      });
      // A signal while seeding stops the demo; the next run finishes the seed (idempotent writes).
      seeding.catch(() => {});
      const first = await Promise.race([seeding.then(() => undefined), stop]);
      if (first !== undefined) {
        io.err(`accord demo: ${first}: stopping while seeding (the next run finishes it)`);
        return 0;
      }
    }
    io.out(JSON.stringify(relay.ready()));
    for (const a of agents) io.out(JSON.stringify(a.ready()));
    io.out(`Demo facility "${DEMO_FACILITY}" in ${dir}:`);
    io.out(
      `  ${'Relay'.padEnd(18)} http://127.0.0.1:${relay.port}/  (/healthz, /metrics, /admin/ as user admin)`,
    );
    for (const a of agents) {
      io.out(`  ${a.name.padEnd(18)} http://127.0.0.1:${a.httpPort}/  (Sync Centre; API under /api/)`);
    }
    io.out(
      `Admin password of the demo relay: ${adminPassword}  (kept in ${join(dir, DEMO_ADMIN_PASSWORD_FILE)}; ` +
        'the Sync Centre asks for it to leave the server version or re-submit)',
    );
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

/** Polls `check` every 25 ms until it holds; false after `timeoutMs`. */
async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

/**
 * One device as the demo's user: records through its HTTP API, as the Sync Centre page does.
 *
 * @remarks Every write carries an `Idempotency-Key` derived from the demo's step name, so a
 * seed run again after an interruption answers the events recorded the first time.
 */
class DemoUser {
  readonly agent: DeviceAgent;

  constructor(agent: DeviceAgent) {
    this.agent = agent;
  }

  async #call<T>(method: string, path: string, body: unknown, key?: string): Promise<T> {
    const res = await fetch(`http://127.0.0.1:${this.agent.httpPort}${path}`, {
      method,
      headers: {
        'content-type': 'application/json',
        ...(key === undefined ? {} : { 'idempotency-key': `accord-demo:${key}` }),
      },
      body: JSON.stringify(body),
    });
    const answer = (await res.json()) as T & { code?: string; message?: string };
    if (!res.ok) {
      throw new AccordError(
        ErrorCode.CLI_DEMO_SEED_FAILED,
        `${this.agent.name} refused the demo's ${method} ${path} (${key ?? ''}): ${res.status} ${answer.code ?? ''} ${answer.message ?? ''}`,
        { details: { status: res.status, code: answer.code ?? null, step: key ?? null } },
      );
    }
    return answer;
  }

  /** Records `draft`; resolves with the event id once it is durable on this device. */
  async record(key: string, draft: Draft): Promise<string> {
    return (await this.#call<{ id: string }>('POST', '/api/events', draft, key)).id;
  }

  /** Takes the device off the network, or back on (the Sync Centre's offline switch). */
  async online(value: boolean): Promise<void> {
    await this.#call('POST', '/api/network', { online: value });
  }

  /** Waits until this device holds `id` (a peer's event) before building on it. */
  async sees(id: string, timeoutMs = 10_000): Promise<void> {
    await until(() => this.agent.log.get(id as EventId) !== undefined, timeoutMs);
  }

  /** Waits until this device knows the relay's verdict on `id`. */
  async verdicted(id: string, timeoutMs = 15_000): Promise<void> {
    await until(async () => {
      const res = await fetch(`http://127.0.0.1:${this.agent.httpPort}/api/events/${id}`);
      const view = (await res.json()) as { status?: string };
      return view.status === 'accepted' || view.status === 'deadletter';
    }, timeoutMs);
  }
}

/** Records the demo's story; `now` fixes its dates so that a second attempt sends the same bodies. */
async function seed(agents: readonly DeviceAgent[], now: number): Promise<void> {
  const day = (offset: number): string => new Date(now + offset * DAY).toISOString().slice(0, 10);
  const [reception, vaccination, pharmacy = reception] = agents.map((a) => new DemoUser(a)) as [
    DemoUser,
    DemoUser,
    DemoUser | undefined,
  ];
  const expiry = day(365);
  await pharmacy.record('stock-bcg', {
    type: 'StockReceived',
    data: { lot: 'BCG-24-001', antigen: 'BCG', quantity: 40, expiry },
  });
  await pharmacy.record('stock-opv', {
    type: 'StockReceived',
    data: { lot: 'OPV-24-017', antigen: 'OPV', quantity: 100, expiry },
  });
  const lastStock = await pharmacy.record('stock-mr', {
    type: 'StockReceived',
    data: { lot: 'MR-24-003', antigen: 'Measles', quantity: 20, expiry },
  });
  await reception.record('register-p3', {
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
  const amina = await reception.record('register-p1', {
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
  const baraka = await reception.record('register-p2', {
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
  await reception.record('check-in-p2', {
    type: 'PatientCheckedIn',
    data: { patientId: 'P-0002', encounterId: 'E-0001' },
  });
  await vaccination.sees(baraka);
  await vaccination.sees(lastStock);
  await vaccination.record('opv-p1', {
    type: 'VaccinationAdministered',
    data: { patientId: 'P-0001', antigen: 'OPV', dose: 1, lot: 'OPV-24-017', date: day(0) },
  });
  // The BCG lot is nearly used up: the second dose of the day drives it below zero, and the
  // relay rejects it (422) — visible on every device until someone resolves it.
  await vaccination.record('bcg-cold-chain', {
    type: 'StockConsumed',
    data: { lot: 'BCG-24-001', quantity: 39, reason: 'vials lost in a cold-chain failure' },
  });
  await vaccination.record('bcg-p3', {
    type: 'VaccinationAdministered',
    data: { patientId: 'P-0003', antigen: 'BCG', dose: 1, lot: 'BCG-24-001', date: day(0) },
  });
  await vaccination.record('bcg-p2', {
    type: 'VaccinationAdministered',
    data: { patientId: 'P-0002', antigen: 'BCG', dose: 1, lot: 'BCG-24-001', date: day(0) },
  });
  await vaccination.record('appointment-p1', {
    type: 'AppointmentScheduled',
    data: { appointmentId: 'A-0001', patientId: 'P-0001', antigen: 'OPV', dose: 2, date: day(28) },
  });
  await vaccination.record('appointment-p2', {
    type: 'AppointmentScheduled',
    data: { appointmentId: 'A-0002', patientId: 'P-0002', antigen: 'Measles', dose: 1, date: day(0) },
  });
  // A same-field conflict (409): the vaccination room, off the network (its Wi-Fi dropped), and
  // the reception both correct Amina's family name from the registration they saw. The
  // reception's correction reaches the relay first and is accepted; the vaccination room's,
  // whose basis is the registration, is then stale and rejected with both values — on every
  // device, for someone to keep one or the other.
  await vaccination.sees(amina);
  await vaccination.online(false);
  try {
    const first = await reception.record('surname-reception', {
      type: 'PatientDemographicsUpdated',
      data: { patientId: 'P-0001', changes: { familyName: 'Wanjiku' } },
    });
    await reception.verdicted(first);
    await vaccination.record('surname-vaccination', {
      type: 'PatientDemographicsUpdated',
      data: { patientId: 'P-0001', changes: { familyName: 'Wanjiru-Kamau' } },
    });
  } finally {
    await vaccination.online(true);
  }
}
