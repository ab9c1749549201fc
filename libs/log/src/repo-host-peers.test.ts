// What "a peer is connected" means in the log: one list, RepoHost.peers(), which `hasPeers()` and
// the bulk segment transfer both read, kept from the adapters' own peer events.
import { describe, expect, it } from 'vitest';
import type { DeviceId } from '@accord/protocol';
import { MemoryStorageAdapter } from '@accord/storage-level';
import { FakeNetwork } from '@accord/testkit';
import { RepoHost } from './repo-host.js';

function host(net: FakeNetwork, name: string): RepoHost {
  return new RepoHost({
    peerId: name as DeviceId,
    storage: new MemoryStorageAdapter(),
    network: [net.adapter(name)],
  });
}

describe('RepoHost peers', () => {
  it('counts a peer as connected from its adapter announcing it until it leaves, in both views', async () => {
    const net = new FakeNetwork({ seed: 3 });
    const a = host(net, 'a');
    const b = host(net, 'b');
    expect([a.peers(), a.hasPeers()]).toEqual([[], false]);

    await net.quiet();
    expect([a.peers(), a.hasPeers()]).toEqual([['b'], true]);
    expect([b.peers(), b.hasPeers()]).toEqual([['a'], true]);

    net.disconnectNode('b');
    await net.quiet();
    expect([a.peers(), a.hasPeers()]).toEqual([[], false]);

    net.reconnectNode('b');
    await net.quiet();
    expect([a.peers(), a.hasPeers()]).toEqual([['b'], true]);

    await b.close();
    await net.quiet();
    expect([a.peers(), a.hasPeers()]).toEqual([[], false]);
    expect([b.peers(), b.hasPeers()]).toEqual([[], false]);
    await a.close();
  });
});
