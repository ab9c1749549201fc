import type { NetworkAdapterInterface } from '@automerge/automerge-repo';
import {
  WebSocketClientAdapter,
  WebSocketServerAdapter,
  type CommonAdapterOptions,
  type MembershipExchange,
  type NetworkEvent,
  type PeerStats,
} from '@accord/network-ws';
import { decodeSignedEvent, fromBase64Url, toBase64Url, encodeSignedEvent } from '@accord/protocol';
import type { PeerNetwork, PeerNetworkOptions } from './agent.js';
import type { RosterFile } from './roster-file.js';
import type { PeerStatus } from './http-api.js';

interface Remembered {
  lastContactAt: number | null;
}

/**
 * Relay-signed rosters as membership proofs: a device shows the roster it holds and adopts a
 * newer one a peer shows, so devices enrolled at different times accept each other even before
 * the newer roster reaches them by sync.
 */
function membershipExchange(roster: RosterFile): MembershipExchange {
  return {
    proof: () => {
      const event = roster.data.event;
      return event === undefined ? undefined : toBase64Url(encodeSignedEvent(event));
    },
    learn: async (proof) => {
      try {
        const decoded = decodeSignedEvent(fromBase64Url(proof));
        return decoded.ok && (await roster.adopt(decoded.value));
      } catch {
        return false; // malformed or forged: the roster in force stays
      }
    },
  };
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Longest wait between two dials of a peer or the relay. */
export const PEER_BACKOFF_MAX_MS = 5000;
/** Peers on a LAN are cheap to retry, and a refusal often ends when a roster update arrives. */
const PEER_BACKOFF = { baseMs: 250, maxMs: PEER_BACKOFF_MAX_MS };

/**
 * The agent's peer network on authenticated WebSockets (`@accord/network-ws`): a server
 * adapter when `listen` is given, one client adapter per peer URL, and one for the relay.
 *
 * @remarks The relay link (`opts.relay`) is a client like the others, except that the server
 * must prove the relay's device id (`expectedPeer`); `peers()` marks it `relay: true` and
 * lists it by that id even while it is not connected. A `peers` URL equal to the relay's is
 * dialed once. Every adapter checks peers against the roster file; when the file changes,
 * sessions of devices no longer allowed are closed (server) or re-dialed so that the
 * handshake re-checks them (client). `setOnline` switches every adapter; `peers()` lists
 * connected peers and those seen before with their last contact.
 * @throws when the peer server cannot listen (port in use).
 */
export async function wsPeerNetwork(opts: PeerNetworkOptions): Promise<PeerNetwork> {
  const remembered = new Map<string, Remembered>();
  const onEvent = (event: NetworkEvent): void => {
    if (event.type === 'peer-disconnected') {
      const r = remembered.get(event.peer) ?? { lastContactAt: null };
      r.lastContactAt = Math.max(r.lastContactAt ?? 0, event.at);
      remembered.set(event.peer, r);
    } else if (event.type === 'peer-connected' && !remembered.has(event.peer)) {
      remembered.set(event.peer, { lastContactAt: event.at });
    }
  };
  const common: CommonAdapterOptions = {
    identity: opts.key,
    facility: opts.facility,
    roster: opts.roster,
    onEvent,
    onRefused: (r) => opts.onDiagnostic?.(`peer refused at ${r.stage}: ${r.code} ${r.detail}`, r),
    membership: membershipExchange(opts.roster),
    ...(opts.networkLog === undefined ? {} : { log: opts.networkLog }),
  };
  let server: WebSocketServerAdapter | undefined;
  if (opts.listen !== undefined) {
    server = new WebSocketServerAdapter({ ...common, port: opts.listen, host: opts.listenHost });
    try {
      await server.listening();
    } catch (e) {
      await server.close();
      throw e;
    }
  }
  const relay = opts.relay;
  const clients: { url: string; adapter: WebSocketClientAdapter; relay: boolean }[] = [];
  if (relay !== undefined) {
    clients.push({
      url: relay.url,
      adapter: new WebSocketClientAdapter({
        ...common,
        url: relay.url,
        expectedPeer: relay.id,
        backoff: PEER_BACKOFF,
      }),
      relay: true,
    });
  }
  for (const url of new Set(opts.peers)) {
    if (url === relay?.url) continue;
    clients.push({
      url,
      adapter: new WebSocketClientAdapter({ ...common, url, backoff: PEER_BACKOFF }),
      relay: false,
    });
  }
  const adapters: NetworkAdapterInterface[] = [
    ...(server === undefined ? [] : [server]),
    ...clients.map((c) => c.adapter),
  ];
  let online = true;

  const stopWatching = opts.roster.onChange(() => {
    server?.revalidatePeers();
    for (const { adapter } of clients) {
      const peer = adapter.peers()[0];
      const entry = peer === undefined ? undefined : opts.roster.lookup(peer);
      if (peer !== undefined && (entry === undefined || entry.revoked)) adapter.forceReconnect();
      // A peer we refused (or that refused us) may be enrolled now: try again at once.
      else if (peer === undefined && adapter.stats().state === 'waiting') adapter.forceReconnect();
    }
  });

  const connected = (s: PeerStats, direction: 'server' | 'client', url?: string): PeerStatus => {
    const r = remembered.get(s.peer) ?? { lastContactAt: null };
    r.lastContactAt = Math.max(r.lastContactAt ?? 0, s.lastContactAt);
    remembered.set(s.peer, r);
    return {
      peer: s.peer,
      connected: true,
      lastContact: iso(r.lastContactAt),
      direction,
      ...(url === undefined ? {} : { url }),
    };
  };

  return {
    adapters,
    peerPort: server?.address()?.port ?? null,
    get online() {
      return online;
    },
    setOnline(value: boolean): void {
      online = value;
      server?.setOnline(value);
      for (const { adapter } of clients) adapter.setOnline(value);
    },
    peers(): readonly PeerStatus[] {
      const out: PeerStatus[] = [];
      const seen = new Set<string>();
      for (const s of server?.stats().peers ?? []) {
        out.push(connected(s, 'server'));
        seen.add(s.peer);
      }
      for (const { url, adapter, relay: isRelay } of clients) {
        const stats = adapter.stats();
        const s = stats.peers[0];
        const mark = isRelay ? { relay: true } : {};
        if (s !== undefined) {
          out.push({ ...connected(s, 'client', url), state: stats.state, ...mark });
          seen.add(s.peer);
        } else if (isRelay && relay !== undefined) {
          // The relay's id is known before any session: report it, with its last contact.
          out.push({
            peer: relay.id,
            connected: false,
            lastContact: iso(remembered.get(relay.id)?.lastContactAt ?? null),
            direction: 'client',
            url,
            state: stats.state,
            relay: true,
          });
          seen.add(relay.id);
        } else {
          out.push({
            peer: url,
            connected: false,
            lastContact: null,
            direction: 'client',
            url,
            state: stats.state,
          });
        }
      }
      for (const [peer, r] of remembered) {
        if (!seen.has(peer)) out.push({ peer, connected: false, lastContact: iso(r.lastContactAt) });
      }
      return out;
    },
    async close(): Promise<void> {
      stopWatching();
      for (const { adapter } of clients) adapter.disconnect();
      await server?.close();
    },
  };
}
