import * as A from '@automerge/automerge';
import { cbor, generateAutomergeUrl, parseAutomergeUrl, type DocumentId } from '@automerge/automerge-repo';
import {
  WIRE_VERSION,
  generateDeviceKey,
  type DeviceId,
  type DeviceKeyPair,
  type FacilityId,
} from '@accord/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode } from './close-codes.js';
import {
  docWhere,
  findDoc,
  makeTestFacility,
  nextEvent,
  RawClient,
  startClientNode,
  startServerNode,
  type ClientNode,
  type RawDial,
  type ServerNode,
  type TestFacility,
} from './testing.js';
import type { LinkLimits, Refusal } from './types.js';

interface Note {
  text: string;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const LIMITS = {
  maxPayload: 64 * 1024,
  maxBytesPerSecond: 128 * 1024,
  maxMessagesPerSecond: 50,
  messageBurst: 50,
  maxInflatedBytes: 1024 * 1024,
};

/**
 * A server with one honest client syncing a shared document, and an enrolled attacker key `x`.
 * `stillSyncs` proves the honest peer is unaffected: a change made on the server arrives, and
 * its session was never interrupted.
 */
async function arena(limits: Partial<LinkLimits> = {}) {
  const f = await makeTestFacility(3);
  const [s, h, x] = f.keys as [DeviceKeyPair, DeviceKeyPair, DeviceKeyPair];
  const forbidden = new Set<string>();
  const refusals: Refusal[] = [];
  const server = await startServerNode(f, s, {
    limits: { ...LIMITS, ...limits },
    timings: { authTimeoutMs: 400 },
    documentPolicy: (peer, doc) => !forbidden.has(`${peer}/${doc}`),
    onRefused: (r) => refusals.push(r),
  });
  cleanups.push(async () => {
    await server.repo.shutdown();
    await server.server.close();
  });
  const honestUp = nextEvent(server.server, (e) => e.type === 'peer-connected');
  const honest = startClientNode(f, h, server.url);
  cleanups.push(() => honest.repo.shutdown());
  await honestUp;
  const shared = server.repo.create<Note>({ text: 'start' });
  const atHonest = await findDoc<Note>(honest.repo, shared.url);
  await docWhere(atHonest, (d) => d.text === 'start');
  let round = 0;
  const stillSyncs = async (): Promise<void> => {
    const text = `after attack ${++round}`;
    shared.change((d) => {
      d.text = text;
    });
    await docWhere(atHonest, (d) => d.text === text);
    const stats = honest.client.stats();
    expect(stats.reconnects).toBe(0);
    expect(stats.sessionsEnded).toEqual({});
    expect(server.server.peers()).toContain(h.deviceId);
  };
  const dial = async (
    device: string,
    facility: string = f.facility,
    extra: { version?: string; autoPong?: boolean } = {},
  ): Promise<RawDial> => {
    const d = await RawClient.dial(server.url, { device, facility, ...extra });
    if (d.kind === 'open') cleanups.push(() => d.client.close());
    return d;
  };
  /** An authenticated raw session as the attacker. */
  const attacker = async (key: DeviceKeyPair = x): Promise<RawClient> => {
    const d = await dial(key.deviceId);
    if (d.kind !== 'open') throw new Error(`attacker refused: ${d.status}`);
    expect(await d.client.authenticate(key, f.facility)).toBe('welcome');
    return d.client;
  };
  return { f, s, h, x, server, honest, shared, atHonest, forbidden, refusals, stillSyncs, dial, attacker };
}

function newDocumentId(): DocumentId {
  return parseAutomergeUrl(generateAutomergeUrl()).documentId;
}

/** A well-formed sync message (from an empty document). */
function emptySyncMessage(): Uint8Array {
  const [, message] = A.generateSyncMessage(A.init(), A.initSyncState());
  if (message === null) throw new Error('no sync message');
  return message;
}

/** A real sync message whose document chunk is ~3 KB on the wire and ~3 MB once inflated. */
function bombSyncMessage(): Uint8Array {
  // An immutable string is one scalar value: cheap to build, still ~3 MB once inflated.
  let a = A.from({ x: new A.ImmutableString('a'.repeat(3_000_000)) });
  let b = A.init<{ x?: A.ImmutableString }>();
  let sa = A.initSyncState();
  let sb = A.initSyncState();
  for (let i = 0; i < 4; i++) {
    let m: Uint8Array | null;
    [sa, m] = A.generateSyncMessage(a, sa);
    if (m !== null && A.decodeSyncMessage(m).changes.length > 0) return m;
    if (m !== null) [b, sb] = A.receiveSyncMessage(b, sb, m);
    let n: Uint8Array | null;
    [sb, n] = A.generateSyncMessage(b, sb);
    if (n !== null) [a, sa] = A.receiveSyncMessage(a, sa, n);
  }
  throw new Error('no sync message with changes');
}

const binaryFrames = (c: RawClient) => c.frames.filter((fr) => fr.binary);

describe('refused at the upgrade, before anything is shared', () => {
  it('unknown, revoked and other-facility devices get 403 and see no frame at all', async () => {
    const a = await arena();
    const unknown = await generateDeviceKey();
    const revoked = await generateDeviceKey();
    a.f.roster.enroll(revoked.deviceId, a.f.facility).revoke(revoked.deviceId);
    const elsewhere = await generateDeviceKey();
    a.f.roster.enroll(elsewhere.deviceId, 'clinic-2' as FacilityId);

    const cases: [string, string, string, string][] = [
      ['unknown', unknown.deviceId, a.f.facility, 'NETWORK_UNKNOWN_DEVICE'],
      ['revoked', revoked.deviceId, a.f.facility, 'NETWORK_REVOKED_DEVICE'],
      ['enrolled elsewhere', elsewhere.deviceId, a.f.facility, 'NETWORK_WRONG_FACILITY'],
      ['claims another facility', a.x.deviceId, 'clinic-2', 'NETWORK_WRONG_FACILITY'],
    ];
    for (const [name, device, facility, code] of cases) {
      const d = await RawClient.dial(a.server.url, { device, facility });
      expect(d, name).toMatchObject({ kind: 'refused', status: 403, errorCode: code });
    }
    const stats = a.server.server.stats();
    expect(stats.refused).toMatchObject({ 'unknown-device': 1, 'revoked-device': 1, 'wrong-facility': 2 });
    expect(a.refusals.map((r) => r.stage)).toEqual(['upgrade', 'upgrade', 'upgrade', 'upgrade']);
    expect(stats.peers.map((p) => p.peer)).toEqual([a.h.deviceId]);
    await a.stillSyncs();
  });

  it('malformed headers get 400, another wire version 426', async () => {
    const a = await arena();
    expect(
      await RawClient.dial(a.server.url, { device: 'not-a-device', facility: a.f.facility }),
    ).toMatchObject({ kind: 'refused', status: 400 });
    expect(await RawClient.dial(a.server.url, { facility: a.f.facility })).toMatchObject({
      kind: 'refused',
      status: 400,
    });
    expect(
      await RawClient.dial(a.server.url, { device: a.x.deviceId, facility: a.f.facility, version: '1' }),
    ).toMatchObject({
      kind: 'refused',
      status: 426,
    }); // a tablet from before segment runs (wire version 1, see WIRE_VERSION)
    expect(
      await RawClient.dial(a.server.url, {
        device: a.x.deviceId,
        facility: a.f.facility,
        version: String(WIRE_VERSION + 1),
      }),
    ).toMatchObject({ kind: 'refused', status: 426 });
    await a.stillSyncs();
  });
});

describe('refused during the handshake', () => {
  it('a client signing with another key than its claimed id is closed 4401 and gets no repo frame', async () => {
    const a = await arena();
    const d = await a.dial(a.x.deviceId);
    if (d.kind !== 'open') throw new Error('expected open');
    const forger = await generateDeviceKey();
    const outcome = await d.client.authenticate(a.x, a.f.facility, { signWith: forger });
    expect(outcome).toMatchObject({ code: CloseCode.AuthFailed });
    expect(binaryFrames(d.client)).toEqual([]);
    expect(d.client.frames.map((fr) => fr.handshake?.type)).toEqual(['challenge', 'error']);
    expect(a.refusals.at(-1)).toMatchObject({
      stage: 'handshake',
      reason: 'auth-failed',
      peer: a.x.deviceId,
      status: 4401,
    });
    await a.stillSyncs();
  });

  it('a hello naming another device than the upgrade header is closed 4401', async () => {
    const a = await arena();
    const d = await a.dial(a.x.deviceId);
    if (d.kind !== 'open') throw new Error('expected open');
    const outcome = await d.client.authenticate(a.x, a.f.facility, { helloDevice: a.h.deviceId });
    expect(outcome).toMatchObject({ code: CloseCode.AuthFailed });
    expect(binaryFrames(d.client)).toEqual([]);
    await a.stillSyncs();
  });

  it('a client that never completes the handshake is closed 4408 after the auth timeout', async () => {
    const a = await arena();
    const d = await a.dial(a.x.deviceId);
    if (d.kind !== 'open') throw new Error('expected open');
    expect((await d.client.closed).code).toBe(CloseCode.AuthTimeout);
    expect(binaryFrames(d.client)).toEqual([]);
    expect(a.server.server.stats().refused['auth-timeout']).toBe(1);
    await a.stillSyncs();
  });

  it('a binary frame before authentication is closed 4401', async () => {
    const a = await arena();
    const d = await a.dial(a.x.deviceId);
    if (d.kind !== 'open') throw new Error('expected open');
    d.client.sendBytes(new Uint8Array([1, 2, 3]));
    expect((await d.client.closed).code).toBe(CloseCode.AuthFailed);
    await a.stillSyncs();
  });
});

describe('unauthenticated floods', () => {
  /** Opens `n` sockets that claim `device`, one after the other; every other one sends a hello, then all idle. */
  async function flood(
    url: string,
    device: DeviceKeyPair,
    facility: FacilityId,
    n: number,
    from: (i: number) => string = () => '127.0.0.1',
  ) {
    const open: RawClient[] = [];
    let refused = 0;
    for (let i = 0; i < n; i++) {
      const d = await RawClient.dial(url, { device: device.deviceId, facility, localAddress: from(i) });
      if (d.kind === 'refused') {
        refused++;
        continue;
      }
      cleanups.push(() => d.client.close());
      if (i % 2 === 0) {
        d.client.sendHandshake({
          type: 'hello',
          v: WIRE_VERSION,
          deviceId: device.deviceId,
          facility,
          nonce: 'A'.repeat(43),
          peerMetadata: {},
        });
      }
      open.push(d.client);
    }
    const stillOpen = (): number => open.filter((c) => c.ws.readyState === c.ws.OPEN).length;
    return { open, refused, stillOpen };
  }

  it('idle sockets from one address cannot hold the handshake slots: an enrolled device still connects and syncs', async () => {
    const f = await makeTestFacility(3);
    const [s, h, x] = f.keys as [DeviceKeyPair, DeviceKeyPair, DeviceKeyPair];
    // Default limits and timings: what a tablet and the relay run with.
    const server = await startServerNode(f, s);
    cleanups.push(async () => {
      await server.repo.shutdown();
      await server.server.close();
    });
    // 200 idle sockets from 127.0.0.1, claiming an enrolled device (ids are public), none authenticating.
    const attack = await flood(server.url, x, f.facility, 200);
    const up = nextEvent(server.server, (e) => e.type === 'peer-connected', 4000);
    const honest = startClientNode(f, h, server.url);
    cleanups.push(() => honest.repo.shutdown());
    // Well before any idle socket's timeout could have freed a slot.
    expect(await up).toMatchObject({ peer: h.deviceId });
    expect(attack.stillOpen()).toBeGreaterThan(0);
    const shared = server.repo.create<Note>({ text: 'during the flood' });
    await docWhere(await findDoc<Note>(honest.repo, shared.url), (d) => d.text === 'during the flood');
    // What the flood kept is bounded per address; the rest was closed with a code, not left hanging.
    const closes = await Promise.all(
      attack.open.filter((c) => c.ws.readyState !== c.ws.OPEN).map((c) => c.closed),
    );
    expect(closes.length).toBeGreaterThan(0);
    for (const c of closes) expect(c.code).toBe(CloseCode.RateLimited);
    expect(attack.stillOpen()).toBeLessThanOrEqual(8);
  });

  it('idle sockets from many addresses cannot hold the slots either: the oldest idle one makes room', async () => {
    const f = await makeTestFacility(3);
    const [s, h, x] = f.keys as [DeviceKeyPair, DeviceKeyPair, DeviceKeyPair];
    const server = await startServerNode(f, s, {
      maxPendingHandshakes: 16,
      maxPendingHandshakesPerAddress: 4,
    });
    cleanups.push(async () => {
      await server.repo.shutdown();
      await server.server.close();
    });
    // 4 idle sockets from each of 127.0.0.2 … 127.0.0.11 (loopback only): 40, over the cap of 16.
    const attack = await flood(server.url, x, f.facility, 40, (i) => `127.0.0.${2 + (i % 10)}`);
    expect(attack.stillOpen()).toBeLessThanOrEqual(16);
    const up = nextEvent(server.server, (e) => e.type === 'peer-connected', 4000);
    const honest = startClientNode(f, h, server.url);
    cleanups.push(() => honest.repo.shutdown());
    expect(await up).toMatchObject({ peer: h.deviceId });
    expect(attack.stillOpen()).toBeGreaterThan(0);
    expect(server.server.stats().refused['busy']).toBeGreaterThanOrEqual(24);
  });

  it('a socket that never says hello is closed 4408 after the short hello timeout', async () => {
    const f = await makeTestFacility(2);
    const [s, x] = f.keys as [DeviceKeyPair, DeviceKeyPair];
    const server = await startServerNode(f, s, { timings: { helloTimeoutMs: 100, authTimeoutMs: 60_000 } });
    cleanups.push(async () => {
      await server.repo.shutdown();
      await server.server.close();
    });
    const d = await RawClient.dial(server.url, { device: x.deviceId, facility: f.facility });
    if (d.kind !== 'open') throw new Error('expected open');
    cleanups.push(() => d.client.close());
    expect((await d.client.closed).code).toBe(CloseCode.AuthTimeout);
    expect(server.server.stats().refused['auth-timeout']).toBe(1);
  });
});

describe('hostile frames after authentication close only that connection', () => {
  it('a frame claiming another device as sender is closed 4406', async () => {
    const a = await arena();
    const x = await a.attacker();
    x.sendFrame({
      type: 'doc-unavailable',
      senderId: a.h.deviceId,
      targetId: a.s.deviceId,
      documentId: a.shared.documentId,
    });
    expect((await x.closed).code).toBe(CloseCode.PeerIdMismatch);
    expect(a.refusals.at(-1)).toMatchObject({
      stage: 'session',
      reason: 'peer-id-mismatch',
      peer: a.x.deviceId,
    });
    await a.stillSyncs();
  });

  it('a frame addressed to another device is closed 4406', async () => {
    const a = await arena();
    const x = await a.attacker();
    x.sendFrame({
      type: 'doc-unavailable',
      senderId: a.x.deviceId,
      targetId: a.h.deviceId,
      documentId: a.shared.documentId,
    });
    expect((await x.closed).code).toBe(CloseCode.PeerIdMismatch);
    await a.stillSyncs();
  });

  it('garbage bytes, text frames and undecodable sync data are closed 4400', async () => {
    const a = await arena();
    const attacks: ((x: RawClient) => void)[] = [
      (x) => x.sendBytes(Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff)),
      (x) => x.sendText('{"type":"sync"}'),
      (x) =>
        x.sendFrame(
          { type: 'sync', senderId: a.x.deviceId, targetId: a.s.deviceId, documentId: a.shared.documentId },
          new Uint8Array([0x42, 1, 2, 3]),
        ),
      (x) =>
        x.sendFrame(
          {
            type: 'sync',
            senderId: a.x.deviceId,
            targetId: a.s.deviceId,
            documentId: 'ABCDEFGHJKLMNPQRSTUVWXYZ',
          },
          emptySyncMessage(),
        ),
      (x) =>
        x.sendFrame(
          {
            type: 'ephemeral',
            senderId: a.x.deviceId,
            targetId: a.s.deviceId,
            documentId: a.shared.documentId,
            count: 1,
            sessionId: 's',
          },
          new Uint8Array([0xff, 0xff]),
        ),
      (x) => x.sendFrame({ type: 'ack', seq: 99 }),
    ];
    for (const attack of attacks) {
      const x = await a.attacker();
      attack(x);
      expect((await x.closed).code).toBe(CloseCode.BadFrame);
    }
    expect(a.server.server.stats().refused['bad-frame']).toBe(attacks.length);
    await a.stillSyncs();
  });

  it('a frame over maxPayload is closed 4413 by the transport, before it is buffered whole', async () => {
    const a = await arena();
    const x = await a.attacker();
    x.sendBytes(new Uint8Array(LIMITS.maxPayload + 1));
    expect((await x.closed).code).toBe(CloseCode.TooLarge);
    expect(a.refusals.at(-1)).toMatchObject({ reason: 'too-large', peer: a.x.deviceId });
    await a.stillSyncs();
  });

  it('a small sync message that inflates past maxInflatedBytes (a decompression bomb) is closed 4413', async () => {
    const a = await arena();
    const bomb = bombSyncMessage();
    expect(bomb.length).toBeLessThan(16 * 1024);
    const x = await a.attacker();
    x.sendFrame(
      { type: 'sync', senderId: a.x.deviceId, targetId: a.s.deviceId, documentId: newDocumentId() },
      bomb,
    );
    expect((await x.closed).code).toBe(CloseCode.TooLarge);
    expect(a.refusals.at(-1)?.detail).toMatch(/expands over/);
    await a.stillSyncs();
  });

  it('a flood beyond the message rate is closed 4429', async () => {
    const a = await arena();
    const x = await a.attacker();
    for (let i = 0; i < LIMITS.messageBurst * 4; i++) {
      x.sendFrame({
        type: 'remote-subscription-change',
        senderId: a.x.deviceId,
        targetId: a.s.deviceId,
        add: [],
      });
    }
    expect((await x.closed).code).toBe(CloseCode.RateLimited);
    expect(a.refusals.at(-1)).toMatchObject({ reason: 'rate-limited' });
    expect(a.refusals.at(-1)?.detail).toMatch(/messages-per-second/);
    await a.stillSyncs();
  });

  it('bytes beyond the per-peer byte budget are closed 4429', async () => {
    const a = await arena();
    const x = await a.attacker();
    // Valid frames that each fit maxPayload; together they pass maxBytesPerSecond.
    const payload = cbor.encode(new Uint8Array(LIMITS.maxPayload - 1024));
    for (let i = 0; i < 4; i++) {
      x.sendFrame(
        {
          type: 'ephemeral',
          senderId: a.x.deviceId,
          targetId: a.s.deviceId,
          documentId: a.shared.documentId,
          count: i,
          sessionId: 'flood',
        },
        payload,
      );
    }
    expect((await x.closed).code).toBe(CloseCode.RateLimited);
    expect(a.refusals.at(-1)?.detail).toMatch(/bytes-per-second/);
    await a.stillSyncs();
  });

  it('a request for a document the policy forbids is closed 4404', async () => {
    const a = await arena();
    const secret = a.server.repo.create<Note>({ text: 'secret' });
    a.forbidden.add(`${a.x.deviceId}/${secret.documentId}`);
    const x = await a.attacker();
    x.sendFrame(
      { type: 'request', senderId: a.x.deviceId, targetId: a.s.deviceId, documentId: secret.documentId },
      emptySyncMessage(),
    );
    expect((await x.closed).code).toBe(CloseCode.ForbiddenDocument);
    // Nothing about the secret document ever reached the attacker.
    expect(
      x.frames.some(
        (fr) =>
          fr.header !== undefined && 'documentId' in fr.header && fr.header.documentId === secret.documentId,
      ),
    ).toBe(false);
    const stats = a.server.server.stats();
    expect(stats.forbiddenDocuments).toBe(1);
    expect(stats.refused['forbidden-document']).toBe(1);
    await a.stillSyncs();
  });

  it('with a tolerance, forbidden requests are answered doc-unavailable until the limit, then closed 4404', async () => {
    const a = await arena({ maxForbiddenRequests: 1 });
    const secret = a.server.repo.create<Note>({ text: 'secret' });
    a.forbidden.add(`${a.x.deviceId}/${secret.documentId}`);
    const x = await a.attacker();
    const mentionsSecret = (fr: RawClient['frames'][number]): boolean =>
      fr.header !== undefined && 'documentId' in fr.header && fr.header.documentId === secret.documentId;
    const ask = (): void =>
      x.sendFrame(
        { type: 'request', senderId: a.x.deviceId, targetId: a.s.deviceId, documentId: secret.documentId },
        emptySyncMessage(),
      );
    ask();
    expect((await x.next(mentionsSecret))?.header?.type).toBe('doc-unavailable');
    ask();
    expect((await x.closed).code).toBe(CloseCode.ForbiddenDocument);
    expect(x.frames.filter(mentionsSecret).map((fr) => fr.header?.type)).toEqual(['doc-unavailable']);
    expect(a.server.server.stats().forbiddenDocuments).toBe(2);
    await a.stillSyncs();
  });

  it('a request the local policy withholds is answered unavailable locally, and never sent', async () => {
    const a = await arena();
    const key = await generateDeviceKey();
    a.f.roster.enroll(key.deviceId, a.f.facility);
    // A document this client must not ask the server about (the server does not announce it).
    const secret = generateAutomergeUrl();
    const node = startClientNode(a.f, key, a.server.url, {
      documentPolicy: (_peer, doc) => doc !== parseAutomergeUrl(secret).documentId,
    });
    cleanups.push(() => node.repo.shutdown());
    await nextEvent(node.client, (e) => e.type === 'peer-connected');
    const withheld = node.client.stats().withheld;
    // Without the local answer the Repo would wait for the peer; it fails fast instead.
    await expect(node.repo.find<Note>(secret)).rejects.toThrow(/unavailable/);
    expect(node.client.stats().withheld).toBeGreaterThan(withheld);
    // The server never heard of it: a request would have made its Repo open a handle.
    expect(a.server.repo.handles[parseAutomergeUrl(secret).documentId]).toBeUndefined();
    await a.stillSyncs();
  });

  it('messages about forbidden documents are never sent to the peer', async () => {
    const a = await arena();
    const secret = a.server.repo.create<Note>({ text: 'secret' });
    const open = a.server.repo.create<Note>({ text: 'open' });
    a.forbidden.add(`${a.x.deviceId}/${secret.documentId}`);
    const x = await a.attacker();
    // The server announces its documents to every new peer; the open one arrives…
    await x.next(
      (fr) =>
        fr.header !== undefined && 'documentId' in fr.header && fr.header.documentId === open.documentId,
    );
    // …and a change to the secret one, made afterwards, is withheld.
    const withheldBefore = a.server.server.stats().withheld;
    secret.change((d) => {
      d.text = 'still secret';
    });
    open.change((d) => {
      d.text = 'open 2';
    });
    await x.next(
      (fr) =>
        fr.header !== undefined &&
        'documentId' in fr.header &&
        fr.header.documentId === open.documentId &&
        fr !== x.frames[0],
    );
    const mentions = x.frames.filter(
      (fr) =>
        fr.header !== undefined && 'documentId' in fr.header && fr.header.documentId === secret.documentId,
    );
    expect(mentions).toEqual([]);
    expect(a.server.server.stats().withheld).toBeGreaterThan(0);
    expect(a.server.server.stats().withheld).toBeGreaterThanOrEqual(withheldBefore);
    await a.stillSyncs();
  });

  it('a second connection from the same device replaces the first (4409)', async () => {
    const a = await arena();
    const first = await a.attacker();
    const second = await a.attacker();
    expect((await first.closed).code).toBe(CloseCode.Replaced);
    expect(second.ws.readyState).toBe(second.ws.OPEN);
    expect(a.server.server.peers().filter((p) => p === a.x.deviceId)).toHaveLength(1);
    expect(a.server.server.stats().sessionsEnded.replaced).toBe(1);
    await a.stillSyncs();
  });

  it('a peer that stops answering pings is terminated', async () => {
    const f: TestFacility = await makeTestFacility(2);
    const server = await startServerNode(f, f.keys[0]!, {
      timings: { heartbeatIntervalMs: 20, heartbeatTimeoutMs: 80 },
    });
    cleanups.push(async () => {
      await server.repo.shutdown();
      await server.server.close();
    });
    const d = await RawClient.dial(server.url, {
      device: f.keys[1]!.deviceId,
      facility: f.facility,
      autoPong: false,
    });
    if (d.kind !== 'open') throw new Error('expected open');
    cleanups.push(() => d.client.close());
    const gone = nextEvent(server.server, (e) => e.type === 'peer-disconnected');
    expect(await d.client.authenticate(f.keys[1]!, f.facility)).toBe('welcome');
    expect(await gone).toMatchObject({ peer: f.keys[1]!.deviceId, reason: 'heartbeat-timeout' });
  });

  it('a roster change drops a connected device that was revoked (4403)', async () => {
    const a = await arena();
    const x = await a.attacker();
    a.f.roster.revoke(a.x.deviceId);
    expect(a.server.server.revalidatePeers()).toBe(1);
    expect((await x.closed).code).toBe(CloseCode.Forbidden);
    await a.stillSyncs();
  });
});

describe('the client authenticates the server too', () => {
  async function clientAgainst(
    a: Awaited<ReturnType<typeof arena>>,
    roster: TestFacility['roster'],
    expectedPeer?: DeviceId,
  ): Promise<ClientNode> {
    const key = await generateDeviceKey();
    a.f.roster.enroll(key.deviceId, a.f.facility);
    const node = startClientNode(
      { ...a.f, roster },
      key,
      a.server.url,
      expectedPeer === undefined ? {} : { expectedPeer },
    );
    cleanups.push(() => node.repo.shutdown());
    return node;
  }

  it('refuses a server its roster does not know, and sends it nothing', async () => {
    const a = await arena();
    const { StaticRoster } = await import('./roster.js');
    const node = await clientAgainst(a, new StaticRoster());
    const refused = await nextEvent(node.client, (e) => e.type === 'refused');
    expect(refused).toMatchObject({
      refusal: { stage: 'handshake', reason: 'unknown-device', peer: a.s.deviceId },
    });
    expect(node.client.stats().framesOut).toBe(0);
    expect(node.client.peers()).toEqual([]);
    await a.stillSyncs();
  });

  it('refuses a server that is not the expected peer', async () => {
    const a = await arena();
    const node = await clientAgainst(a, a.f.roster, a.h.deviceId);
    const refused = await nextEvent(node.client, (e) => e.type === 'refused');
    expect(refused).toMatchObject({ refusal: { reason: 'server-identity', peer: a.s.deviceId } });
    expect(node.client.stats().framesOut).toBe(0);
    await a.stillSyncs();
  });
});

export type { ServerNode };
