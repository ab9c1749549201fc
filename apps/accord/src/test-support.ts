// Helpers for the CLI's tests: spawn `accord` as a separate process (the way users run it)
// and talk to a running device agent over its HTTP API. Not part of the public entry.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { decodeSignedEvent, type SignedEvent } from '@accord/protocol';
import { openDeviceDatabase } from '@accord/storage-level';
import { ensureCliBundle } from '../bin/bundle.mjs';

/** The repository root (tests spawn with it as the working directory). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * The CLI bundle that bin/accord.mjs runs, built (or found up to date) once when this module loads.
 *
 * @remarks Concurrent test processes may build it at the same time; the writes are atomic.
 */
export const BUNDLE = await ensureCliBundle();

/** Node arguments that run the CLI as bin/accord.mjs does: the compiled bundle, with the same V8 setting. */
export function accordArgv(args: readonly string[]): string[] {
  return ['--max-semi-space-size=2', BUNDLE, ...args];
}

/** Runs `accord args…` to completion; `input` is written to its stdin (default: empty), `env` added to its environment. */
export function runAccord(
  args: readonly string[],
  opts: { readonly input?: string; readonly env?: Readonly<Record<string, string>> } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, accordArgv(args), {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(opts.env === undefined ? {} : { env: { ...process.env, ...opts.env } }),
    });
    // Without input, stdin is at its end at once (as /dev/null would be).
    child.stdin.end(opts.input ?? '');
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The ready line of `accord device run`. */
export interface ReadyInfo {
  readonly event: 'ready';
  readonly device: string;
  readonly name: string;
  readonly facility: string;
  readonly http: number;
  readonly peer: number | null;
}

/** A JSON answer of the agent's HTTP API. */
export interface ApiAnswer<T = unknown> {
  readonly status: number;
  readonly json: T;
}

/** One `accord device run` process. */
export class AgentProcess {
  readonly child: ChildProcess;
  readonly ready: ReadyInfo;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #stderr: () => string;

  private constructor(
    child: ChildProcess,
    ready: ReadyInfo,
    stderr: () => string,
    exited: AgentProcess['exited'],
  ) {
    this.child = child;
    this.ready = ready;
    this.exited = exited;
    this.#stderr = stderr;
  }

  /** Everything the process wrote on stderr so far. */
  get stderr(): string {
    return this.#stderr();
  }

  /** Spawns `accord device run …args` and resolves with its ready line (rejects if it exits first or after `timeoutMs`). */
  static async start(args: readonly string[], timeoutMs = 30_000): Promise<AgentProcess> {
    const s = await spawnReady(['device', 'run', ...args], 'agent', timeoutMs);
    return new AgentProcess(s.child, s.ready as ReadyInfo, s.stderr, s.exited);
  }

  /** `ws://127.0.0.1:PORT` of this agent's peer server. */
  get peerUrl(): string {
    if (this.ready.peer === null) throw new Error('this agent does not listen');
    return `ws://127.0.0.1:${this.ready.peer}`;
  }

  /** Calls the HTTP API. */
  async api<T = unknown>(method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> {
    const res = await fetch(`http://127.0.0.1:${this.ready.http}${path}`, {
      method,
      // The agent takes writes declared JSON only.
      ...(method === 'POST' ? { headers: { 'content-type': 'application/json' } } : {}),
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
    return { status: res.status, json: (await res.json()) as T };
  }

  /** The raw text of a GET (for byte-for-byte comparisons). */
  async text(path: string): Promise<{ status: number; text: string }> {
    const res = await fetch(`http://127.0.0.1:${this.ready.http}${path}`);
    return { status: res.status, text: await res.text() };
  }

  /** Sends `signal` and resolves with how the process ended. */
  async stop(
    signal: NodeJS.Signals = 'SIGTERM',
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/** Polls `check` until it returns true; fails with `what` after `timeoutMs`. */
export async function eventually(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A small seeded PRNG (mulberry32), for reproducible "random" kill points. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of this run: `FC_SEED` when set to an integer (`random`: a fresh one), else a fixed default. */
export function testSeed(): number {
  const raw = process.env['FC_SEED'];
  if (raw === 'random') return Math.floor(Math.random() * 0x7fffffff);
  const n = raw === undefined ? Number.NaN : Number.parseInt(raw, 10);
  return Number.isSafeInteger(n) ? n : 20261126;
}

/**
 * A temporary folder and the agent processes a test file starts in it: created before the
 * file's tests, and after them every agent still running is killed and the folder removed.
 */
export function agentWorkspace(prefix: string): {
  readonly path: (...parts: string[]) => string;
  readonly agents: AgentProcess[];
} {
  let dir = '';
  const agents: AgentProcess[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix));
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop('SIGKILL')));
    await rm(dir, { recursive: true, force: true });
  });
  return { path: (...parts) => join(dir, ...parts), agents };
}

/** A `POST /api/events` body registering patient number `n`. */
export function registration(n: number): { type: string; data: Record<string, string> } {
  return {
    type: 'PatientRegistered',
    data: {
      patientId: `P-${n}`,
      nationalId: `NID-${n}`,
      givenName: 'Ada',
      familyName: `Family${n}`,
      birthDate: '2025-06-01',
      sex: 'female',
    },
  };
}

/** How a spawned process ended. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * Spawns `accord args…` and resolves once it printed its JSON ready line on stdout (a line
 * starting with `{"event":"ready"`); rejects if it exits first or after `timeoutMs` (then kills it).
 */
export function spawnReady(
  args: readonly string[],
  what: string,
  timeoutMs = 30_000,
): Promise<{ child: ChildProcess; ready: unknown; stderr: () => string; exited: Promise<Exit> }> {
  const child = spawn(process.execPath, accordArgv(args), {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<Exit>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} not ready after ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      const line = stdout.split('\n').find((l) => l.startsWith('{"event":"ready"'));
      if (line === undefined) return;
      clearTimeout(timer);
      child.stdout.removeAllListeners('data');
      child.stdout.resume();
      resolve({ child, ready: JSON.parse(line) as unknown, stderr: () => stderr, exited });
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code ?? signal}) before ready\n${stderr}`));
    });
  });
}

/** The ready line of `accord relay`. */
export interface RelayReadyInfo {
  readonly event: 'ready';
  readonly relay: string;
  readonly host: string;
  readonly port: number;
}

/** Options of {@link RelayProcess.start}. */
export interface RelayProcessOptions {
  /** Port to bind (default 0: any). */
  readonly port?: number;
  /** `--dependency-deadline`, e.g. `2s`. */
  readonly dependencyDeadline?: string;
  /** `--await-devices`, e.g. `3s`: how long a possibly restored relay waits for absent devices. */
  readonly awaitDevices?: string;
  /** `--log-level` (default `info`, so connections and refusals are logged). */
  readonly logLevel?: string;
}

/** One `accord relay` process (JSON logs on stderr). */
export class RelayProcess {
  readonly data: string;
  readonly child: ChildProcess;
  readonly ready: RelayReadyInfo;
  readonly exited: Promise<Exit>;
  readonly #options: RelayProcessOptions;
  readonly #stderr: () => string;

  private constructor(
    data: string,
    options: RelayProcessOptions,
    s: { child: ChildProcess; ready: unknown; stderr: () => string; exited: Promise<Exit> },
  ) {
    this.data = data;
    this.#options = options;
    this.child = s.child;
    this.ready = s.ready as RelayReadyInfo;
    this.exited = s.exited;
    this.#stderr = s.stderr;
  }

  /** Spawns `accord relay --data DATA …` and resolves with it once its ready line is out. */
  static async start(
    data: string,
    options: RelayProcessOptions = {},
    timeoutMs = 30_000,
  ): Promise<RelayProcess> {
    const args = ['relay', '--data', data, '--port', String(options.port ?? 0)];
    if (options.dependencyDeadline !== undefined)
      args.push('--dependency-deadline', options.dependencyDeadline);
    if (options.awaitDevices !== undefined) args.push('--await-devices', options.awaitDevices);
    args.push('--log-level', options.logLevel ?? 'info');
    return new RelayProcess(data, options, await spawnReady(args, 'relay', timeoutMs));
  }

  /** The relay's device id. */
  get id(): string {
    return this.ready.relay;
  }

  /** The bound port. */
  get port(): number {
    return this.ready.port;
  }

  /** `ws://127.0.0.1:PORT`, what devices enroll with and dial. */
  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  /** Everything the process wrote on stderr so far. */
  get stderr(): string {
    return this.#stderr();
  }

  /** The JSON log lines written so far (other stderr lines skipped). */
  logs(): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.stderr.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // A line cut by a kill.
      }
    }
    return out;
  }

  /** Sends `signal` and resolves with how the process ended. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }

  /**
   * Starts a new relay process on the same data folder, port and options, once this one exited.
   *
   * @remarks Retries for a few seconds if the port is briefly taken (another process may have
   * been given it as an ephemeral port while the relay was down).
   */
  async restart(): Promise<RelayProcess> {
    await this.exited;
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        return await RelayProcess.start(this.data, { ...this.#options, port: this.port });
      } catch (e) {
        if (Date.now() > deadline || !String(e).includes('EADDRINUSE')) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}

/** Runs `accord relay enroll` and returns the one-time token (the last line of stdout). */
export async function enrollmentToken(relayData: string, facility: string, ttl?: string): Promise<string> {
  const r = await runAccord([
    'relay',
    'enroll',
    '--data',
    relayData,
    '--facility',
    facility,
    ...(ttl === undefined ? [] : ['--ttl', ttl]),
  ]);
  const token = r.stdout.trim().split('\n').at(-1) ?? '';
  if (r.code !== 0 || token === '') throw new Error(`accord relay enroll failed (${r.code})\n${r.stderr}`);
  return token;
}

/**
 * Runs `accord device init … --relay URL [--relay-id ID] --token TOKEN` and returns the new device's
 * id; the relay is pinned when its `id` is known (a {@link RelayProcess}).
 */
export async function enrollDevice(
  relay: { readonly url: string; readonly data: string; readonly id?: string },
  data: string,
  name: string,
  facility: string,
): Promise<string> {
  const token = await enrollmentToken(relay.data, facility);
  const r = await runAccord([
    'device',
    'init',
    '--data',
    data,
    '--name',
    name,
    '--relay',
    relay.url,
    ...(relay.id === undefined ? [] : ['--relay-id', relay.id]),
    '--token',
    token,
  ]);
  if (r.code !== 0) throw new Error(`accord device init failed (${r.code})\n${r.stderr}`);
  const line = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as { device?: string };
  if (typeof line.device !== 'string') throw new Error(`no device id in ${r.stdout}`);
  return line.device;
}

/**
 * Every event stored in the LevelDB at `dbPath` (a device's `DIR/db`, or a relay facility's
 * `DATA/facilities/F/db`), decoded; the process that owns it must have stopped (LevelDB's lock).
 */
export async function storedEvents(dbPath: string): Promise<SignedEvent[]> {
  const db = await openDeviceDatabase(dbPath);
  try {
    const out: SignedEvent[] = [];
    for await (const stored of db.eventStore.iterate()) {
      const decoded = decodeSignedEvent(stored.bytes);
      if (!decoded.ok) throw decoded.error;
      out.push(decoded.value);
    }
    return out;
  } finally {
    await db.close();
  }
}
