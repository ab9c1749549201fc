// Wiring for integration tests (re-exported by `./testing`): devices, rosters, Repos on real
// WebSocket adapters, and awaitable document conditions.
import { parseAutomergeUrl, Repo, type AutomergeUrl, type DocHandle } from '@automerge/automerge-repo';
import { generateDeviceKey, type DeviceKeyPair, type FacilityId } from '@accord/protocol';
import { WebSocketClientAdapter, type WebSocketClientAdapterOptions } from './client-adapter.js';
import { peerIdOf } from './frames.js';
import { StaticRoster } from './roster.js';
import { WebSocketServerAdapter, type WebSocketServerAdapterOptions } from './server-adapter.js';

/** A facility for tests: its id, a roster and `n` enrolled device keys. */
export interface TestFacility {
  readonly facility: FacilityId;
  readonly roster: StaticRoster;
  readonly keys: DeviceKeyPair[];
}

/** Creates `n` device keys enrolled in one facility. */
export async function makeTestFacility(
  n: number,
  facility = 'clinic-1' as FacilityId,
): Promise<TestFacility> {
  const roster = new StaticRoster();
  const keys: DeviceKeyPair[] = [];
  for (let i = 0; i < n; i++) {
    const key = await generateDeviceKey();
    roster.enroll(key.deviceId, facility);
    keys.push(key);
  }
  return { facility, roster, keys };
}

/** A Repo serving peers through a {@link WebSocketServerAdapter} on 127.0.0.1. */
export interface ServerNode {
  readonly repo: Repo;
  readonly server: WebSocketServerAdapter;
  readonly url: string;
}

/** A Repo dialing one URL through a {@link WebSocketClientAdapter}. */
export interface ClientNode {
  readonly repo: Repo;
  readonly client: WebSocketClientAdapter;
}

type Base = 'identity' | 'facility' | 'roster';

/** Starts a server node on 127.0.0.1 (port 0 unless given) and waits until it listens. */
export async function startServerNode(
  f: TestFacility,
  key: DeviceKeyPair,
  options: Omit<WebSocketServerAdapterOptions, Base> = {},
): Promise<ServerNode> {
  const server = new WebSocketServerAdapter({
    host: '127.0.0.1',
    port: 0,
    log: process.env['NW_DEBUG'] ? console.log : () => {},
    ...options,
    identity: key,
    facility: f.facility,
    roster: f.roster,
  });
  const address = await server.listening();
  const repo = new Repo({ peerId: peerIdOf(key.deviceId), network: [server] });
  return { repo, server, url: `ws://127.0.0.1:${address.port}` };
}

/** Starts a client node dialing `url`. */
export function startClientNode(
  f: TestFacility,
  key: DeviceKeyPair,
  url: string,
  options: Omit<WebSocketClientAdapterOptions, Base | 'url'> = {},
): ClientNode {
  const client = new WebSocketClientAdapter({
    backoff: { baseMs: 20, maxMs: 200 },
    log: process.env['NW_DEBUG'] ? console.log : () => {},
    ...options,
    url,
    identity: key,
    facility: f.facility,
    roster: f.roster,
  });
  const repo = new Repo({ peerId: peerIdOf(key.deviceId), network: [client] });
  return { repo, client };
}

/**
 * Resolves with the document once `predicate` holds (checked now and on every change). Rejects
 * after `timeoutMs`, a failure guard only.
 */
export function docWhere<T>(
  handle: DocHandle<T>,
  predicate: (doc: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const doc = handle.isReady() ? handle.doc() : undefined;
      if (doc !== undefined && predicate(doc)) {
        cleanup();
        resolve(doc);
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`docWhere: condition not met on ${handle.url} in ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      handle.off('change', check);
    };
    handle.on('change', check);
    check();
  });
}

/**
 * Finds a document by URL and waits until it is ready.
 *
 * @remarks A Repo that was asked for a document before it could have it (a peer's request
 * arrived first) marks it unavailable and `find` rejects at once; the document still arrives
 * when a peer that has it syncs. So on "unavailable" we wait for the handle to become ready.
 */
export async function findDoc<T>(repo: Repo, url: AutomergeUrl, timeoutMs = 10_000): Promise<DocHandle<T>> {
  try {
    return await repo.find<T>(url);
  } catch (e) {
    const handle = repo.handles[parseAutomergeUrl(url).documentId] as DocHandle<T> | undefined;
    if (handle === undefined) throw e;
    const abort = AbortSignal.timeout(timeoutMs);
    await handle.whenReady(['ready'], { signal: abort });
    return handle;
  }
}
