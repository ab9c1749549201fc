import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DeviceKeyPair } from '@accord/protocol';
import { Repo, type Chunk, type StorageAdapterInterface, type StorageKey } from '@automerge/automerge-repo';
import { afterEach, describe, expect, it } from 'vitest';
import { peerIdOf } from './frames.js';
import { WebSocketClientAdapter } from './client-adapter.js';
import { StaticRoster } from './roster.js';
import { WebSocketServerAdapter } from './server-adapter.js';
import {
  docWhere,
  findDoc,
  makeTestFacility,
  nextEvent,
  startClientNode,
  startServerNode,
  type ClientNode,
  type ServerNode,
} from './testing.js';

interface Note {
  text: string;
  from?: string;
  [key: string]: unknown;
}

const nodes: (ServerNode | ClientNode)[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) {
    await n.repo.shutdown();
    if ('server' in n) await n.server.close();
  }
});

const connected = (source: { subscribe: ServerNode['server']['subscribe'] }) =>
  nextEvent(source, (e) => e.type === 'peer-connected');

describe('two Repos over an authenticated link', () => {
  it('sync a document both ways after authentication', async () => {
    const f = await makeTestFacility(2);
    const server = await startServerNode(f, f.keys[0]!);
    nodes.push(server);
    const serverSawPeer = connected(server.server);
    const client = startClientNode(f, f.keys[1]!, server.url);
    nodes.push(client);
    const [event] = await Promise.all([serverSawPeer, connected(client.client)]);
    // The server knows the client by its verified device id.
    expect(event.type === 'peer-connected' && event.peer).toBe(f.keys[1]!.deviceId);
    expect(server.server.peers()).toEqual([f.keys[1]!.deviceId]);
    expect(client.client.peers()).toEqual([f.keys[0]!.deviceId]);

    const onClient = client.repo.create<Note>({ text: 'from client' });
    const onServer = await findDoc<Note>(server.repo, onClient.url);
    expect((await docWhere(onServer, (d) => d.text === 'from client')).text).toBe('from client');

    onServer.change((d) => {
      d.from = 'server';
    });
    expect((await docWhere(onClient, (d) => d.from === 'server')).from).toBe('server');

    const stats = client.client.stats();
    expect(stats.framesIn).toBeGreaterThan(0);
    expect(stats.framesOut).toBeGreaterThan(0);
    expect(stats.peers[0]?.peer).toBe(f.keys[0]!.deviceId);
    expect(stats.refused).toEqual({});
  });

  it('syncs Repos with storage both ways without telling either the other’s storage id', async () => {
    const f = await makeTestFacility(2);
    const server = new WebSocketServerAdapter({
      host: '127.0.0.1',
      port: 0,
      log: () => {},
      identity: f.keys[0]!,
      facility: f.facility,
      roster: f.roster,
    });
    const port = (await server.listening()).port;
    const serverRepo = new Repo({
      peerId: peerIdOf(f.keys[0]!.deviceId),
      network: [server],
      storage: memoryStorage(),
    });
    nodes.push({ repo: serverRepo, server, url: `ws://127.0.0.1:${port}` });
    const client = new WebSocketClientAdapter({
      url: `ws://127.0.0.1:${port}`,
      log: () => {},
      identity: f.keys[1]!,
      facility: f.facility,
      roster: f.roster,
    });
    const clientRepo = new Repo({
      peerId: peerIdOf(f.keys[1]!.deviceId),
      network: [client],
      storage: memoryStorage(),
    });
    nodes.push({ repo: clientRepo, client });
    await Promise.all([connected(server), connected(client)]);
    // Both have a storage id to announce; neither Repo is told the other's.
    expect(await serverRepo.storageId()).toBeDefined();
    expect(await clientRepo.storageId()).toBeDefined();
    expect(serverRepo.getStorageIdOfPeer(peerIdOf(f.keys[1]!.deviceId))).toBeUndefined();
    expect(clientRepo.getStorageIdOfPeer(peerIdOf(f.keys[0]!.deviceId))).toBeUndefined();

    const onClient = clientRepo.create<Note>({ text: 'stored on the client' });
    const onServer = await findDoc<Note>(serverRepo, onClient.url);
    expect((await docWhere(onServer, (d) => d.text === 'stored on the client')).text).toBe(
      'stored on the client',
    );
    for (let i = 0; i < 20; i++)
      onServer.change((d) => {
        d.from = `server ${i}`;
      });
    expect((await docWhere(onClient, (d) => d.from === 'server 19')).from).toBe('server 19');
  });

  it('a chain A→B←C carries A’s changes to C through B', async () => {
    const f = await makeTestFacility(3);
    const [a, b, c] = f.keys as [(typeof f.keys)[0], (typeof f.keys)[0], (typeof f.keys)[0]];
    const hub = await startServerNode(f, b);
    nodes.push(hub);
    const twoPeers = new Promise<void>((resolve) => {
      const off = hub.server.subscribe(() => {
        if (hub.server.peers().length === 2) {
          off();
          resolve();
        }
      });
    });
    const nodeA = startClientNode(f, a, hub.url);
    const nodeC = startClientNode(f, c, hub.url);
    nodes.push(nodeA, nodeC);
    await twoPeers;

    const doc = nodeA.repo.create<Note>({ text: 'v1' });
    // B learns the document from A; C asks B for it.
    await docWhere(await findDoc<Note>(hub.repo, doc.url), (d) => d.text === 'v1');
    const atC = await findDoc<Note>(nodeC.repo, doc.url);
    expect((await docWhere(atC, (d) => d.text === 'v1')).text).toBe('v1');

    doc.change((d) => {
      d.text = 'v2';
    });
    expect((await docWhere(atC, (d) => d.text === 'v2')).text).toBe('v2');
  });

  it('attaches to an existing HTTP server on a path, which it neither owns nor closes', async () => {
    const f = await makeTestFacility(2);
    const http = createServer((_req, res) => res.end('app'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const port = (http.address() as AddressInfo).port;
    const server = new WebSocketServerAdapter({
      identity: f.keys[0]!,
      facility: f.facility,
      roster: f.roster,
      server: http,
      path: '/sync',
    });
    expect((await server.listening()).port).toBe(port);
    const repo = new Repo({ peerId: peerIdOf(f.keys[0]!.deviceId), network: [server] });
    const client = startClientNode(f, f.keys[1]!, `ws://127.0.0.1:${port}/sync`);
    nodes.push(client);
    await connected(client.client);
    const doc = repo.create<Note>({ text: 'over a shared server' });
    await docWhere(await findDoc<Note>(client.repo, doc.url), (d) => d.text === 'over a shared server');

    await repo.shutdown();
    await server.close();
    // The application's server still serves its own requests.
    expect(http.listening).toBe(true);
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('app');
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });

  it('leaves upgrades to the owner of a shared server, who routes them with handleUpgrade', async () => {
    const f = await makeTestFacility(2);
    const http = createServer((_req, res) => res.end('app'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const port = (http.address() as AddressInfo).port;
    const server = new WebSocketServerAdapter({
      identity: f.keys[0]!,
      facility: f.facility,
      roster: f.roster,
      server: http,
      attachUpgrade: false,
    });
    // The adapter alone does not answer: with no router, the upgrade is never accepted.
    expect(http.listenerCount('upgrade')).toBe(0);
    const routed: string[] = [];
    http.on('upgrade', (req, socket, head: Buffer) => {
      routed.push(String(req.headers['x-accord-facility']));
      server.handleUpgrade(req, socket, head);
    });
    const repo = new Repo({ peerId: peerIdOf(f.keys[0]!.deviceId), network: [server] });
    const client = startClientNode(f, f.keys[1]!, `ws://127.0.0.1:${port}`);
    nodes.push(client);
    await connected(client.client);
    expect(routed).toEqual([f.facility]);
    const doc = repo.create<Note>({ text: 'routed' });
    await docWhere(await findDoc<Note>(client.repo, doc.url), (d) => d.text === 'routed');
    await repo.shutdown();
    await server.close();
    await new Promise<void>((resolve) => {
      http.close(() => resolve());
      http.closeAllConnections();
    });
  });

  it('lets a client whose roster lacks the server learn the server’s membership proof, and only when it checks out', async () => {
    const f = await makeTestFacility(2);
    const [serverKey, clientKey] = f.keys as [DeviceKeyPair, DeviceKeyPair];
    // The client's own roster predates the server's enrollment.
    const clientRoster = new StaticRoster([[clientKey.deviceId, { facility: f.facility, revoked: false }]]);
    const shown: string[] = [];
    const server = await startServerNode(f, serverKey, {
      membership: { proof: () => 'cHJvb2Y', learn: () => Promise.resolve(false) },
    });
    nodes.push(server);
    const dial = (accept: boolean): ClientNode => {
      const client = new WebSocketClientAdapter({
        url: server.url,
        identity: clientKey,
        facility: f.facility,
        roster: clientRoster,
        backoff: { baseMs: 20, maxMs: 50 },
        membership: {
          proof: () => undefined,
          learn: (proof, from) => {
            shown.push(`${proof}:${from}`);
            if (accept) clientRoster.enroll(from, f.facility);
            return Promise.resolve(accept);
          },
        },
      });
      return { repo: new Repo({ peerId: peerIdOf(clientKey.deviceId), network: [client] }), client };
    };
    // A proof the client cannot verify changes nothing: refused as unknown.
    const doubtful = dial(false);
    nodes.push(doubtful);
    const refused = await nextEvent(doubtful.client, (e) => e.type === 'refused');
    expect(refused.type === 'refused' && refused.refusal.reason).toBe('unknown-device');
    expect(shown[0]).toBe(`cHJvb2Y:${serverKey.deviceId}`);
    await doubtful.repo.shutdown();
    // A proof it verifies and adopts: the roster is consulted again and the session opens.
    const convinced = dial(true);
    nodes.push(convinced);
    await connected(convinced.client);
    expect(clientRoster.lookup(serverKey.deviceId)).toEqual({ facility: f.facility, revoked: false });
  });

  it('answers plain HTTP requests on its own server with 426', async () => {
    const f = await makeTestFacility(1);
    const node = await startServerNode(f, f.keys[0]!);
    nodes.push(node);
    const res = await fetch(node.url.replace('ws:', 'http:'));
    expect(res.status).toBe(426);
  });
});

/** A Repo storage in memory: with one, a Repo has a storage id to announce. */
function memoryStorage(): StorageAdapterInterface {
  const data = new Map<string, Chunk>();
  const name = (key: StorageKey): string => key.join('\u0000');
  const under = (prefix: StorageKey): Chunk[] =>
    [...data.values()].filter((c) => prefix.every((part, i) => c.key[i] === part));
  return {
    load: (key) => Promise.resolve(data.get(name(key))?.data),
    save: (key, bytes) => {
      data.set(name(key), { key, data: bytes });
      return Promise.resolve();
    },
    remove: (key) => {
      data.delete(name(key));
      return Promise.resolve();
    },
    loadRange: (prefix) => Promise.resolve(under(prefix)),
    removeRange: (prefix) => {
      for (const c of under(prefix)) data.delete(name(c.key));
      return Promise.resolve();
    },
  };
}
