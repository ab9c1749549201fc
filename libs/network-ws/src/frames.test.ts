import type { DocumentId, Message, PeerId, SessionId, StorageId } from '@automerge/automerge-repo';
import {
  decodeWireFrame,
  encodeWireFrame,
  toBase64Url,
  wireFrameHeaderSchema,
  type DeviceId,
} from '@accord/protocol';
import { describe, expect, it, vi } from 'vitest';
import { frameToMessage, messageToFrame, OutgoingFrames, peerIdOf } from './frames.js';

const A = ('d' + toBase64Url(new Uint8Array(32).fill(1))) as DeviceId;
const B = ('d' + toBase64Url(new Uint8Array(32).fill(2))) as DeviceId;
const base = { senderId: peerIdOf(A), targetId: peerIdOf(B) };
const documentId = '2sEv7Keo849zWVSRKPN8Ywdu1Ryr' as DocumentId;
const data = new Uint8Array([1, 2, 3]);

const messages: Message[] = [
  { type: 'sync', ...base, documentId, data },
  { type: 'request', ...base, documentId, data },
  { type: 'doc-unavailable', ...base, documentId },
  { type: 'ephemeral', ...base, documentId, data, count: 3, sessionId: 'abc' as SessionId } as Message,
  { type: 'remote-subscription-change', ...base, add: ['store-1' as StorageId] } as Message,
  {
    type: 'remote-heads-changed',
    ...base,
    documentId,
    newHeads: { ['store-1' as StorageId]: { heads: ['3kHq'], timestamp: 5 } },
  } as Message,
];

describe('repo messages on the wire', () => {
  it('round-trip every automerge-repo message type through a frame', () => {
    for (const message of messages) {
      const frame = messageToFrame(message, 7);
      expect(frame, message.type).toBeDefined();
      const decoded = decodeWireFrame(encodeWireFrame(frame!.header, frame!.data));
      expect(decoded.ok).toBe(true);
      if (!decoded.ok) continue;
      expect(decoded.value.header).toMatchObject({ seq: 7 });
      expect(frameToMessage(decoded.value)).toEqual(message);
    }
  });

  it('refuse what the wire cannot carry', () => {
    const bad: Message[] = [
      { type: 'join', ...base },
      { type: 'sync', ...base, documentId: 'not/a/doc' as DocumentId, data },
      { type: 'sync', ...base, documentId, data: new Uint8Array() },
      { type: 'sync', senderId: 'peer-1' as PeerId, targetId: peerIdOf(B), documentId, data },
    ];
    for (const message of bad)
      expect(messageToFrame(message, 1), JSON.stringify(message.type)).toBeUndefined();
  });

  it('copies the payload out of the socket buffer', () => {
    const frame = messageToFrame({ type: 'sync', ...base, documentId, data }, 1)!;
    const bytes = encodeWireFrame(frame.header, frame.data);
    const decoded = decodeWireFrame(bytes);
    if (!decoded.ok) throw decoded.error;
    const message = frameToMessage(decoded.value) as { data: Uint8Array };
    bytes.fill(0);
    expect(Array.from(message.data)).toEqual([1, 2, 3]);
  });
});

describe("one session's outgoing frames", () => {
  const other = '3Rp5LVDfs8aGVzPPxjAGzd9tBXzR' as DocumentId;
  const segment = { type: 'segment', ...base, documentId, data } as unknown as Message;
  const unavailable = { type: 'segment-unavailable', ...base, documentId } as unknown as Message;
  const sent: Message[] = [
    ...messages,
    segment,
    unavailable,
    { type: 'sync', ...base, documentId: other, data },
    ...messages,
    segment,
    unavailable,
    { type: 'request', ...base, documentId: other, data },
  ];

  it('are the frames messageToFrame makes, and well-formed on the wire', () => {
    const outgoing = new OutgoingFrames(A, B);
    sent.forEach((message, i) => {
      const frame = outgoing.frame(message, i + 1);
      expect(frame, message.type).toEqual(messageToFrame(message, i + 1));
      const decoded = decodeWireFrame(encodeWireFrame(frame!.header, frame!.data));
      expect(decoded.ok, message.type).toBe(true);
    });
  });

  it("parse a document message's header with the wire schema once per document, not per frame", () => {
    const outgoing = new OutgoingFrames(A, B);
    const parse = vi.spyOn(wireFrameHeaderSchema, 'safeParse');
    try {
      for (let seq = 1; seq <= 100; seq++) outgoing.frame({ type: 'sync', ...base, documentId, data }, seq);
      for (let seq = 101; seq <= 200; seq++)
        outgoing.frame({ type: 'sync', ...base, documentId: other, data }, seq);
      expect(parse).toHaveBeenCalledTimes(2);
    } finally {
      parse.mockRestore();
    }
  });

  it('still refuse what the wire cannot carry once a document has been checked', () => {
    const outgoing = new OutgoingFrames(A, B);
    expect(outgoing.frame({ type: 'sync', ...base, documentId, data }, 1)).toBeDefined();
    const C = ('d' + toBase64Url(new Uint8Array(32).fill(3))) as DeviceId;
    const bad: Message[] = [
      { type: 'sync', ...base, documentId, data: new Uint8Array() },
      { type: 'sync', ...base, documentId: 'not/a/doc' as DocumentId, data },
      { type: 'sync', senderId: 'peer-1' as PeerId, targetId: peerIdOf(B), documentId, data },
      { type: 'sync', senderId: peerIdOf(A), targetId: 'peer-1' as PeerId, documentId, data },
      { type: 'join', ...base },
    ];
    for (const message of bad) expect(outgoing.frame(message, 2), JSON.stringify(message)).toBeUndefined();
    // Another valid target is not this session's: it goes through the schema, and passes it.
    const parse = vi.spyOn(wireFrameHeaderSchema, 'safeParse');
    try {
      const toC = { type: 'sync', senderId: peerIdOf(A), targetId: peerIdOf(C), documentId, data } as Message;
      expect(outgoing.frame(toC, 3)?.header).toMatchObject({ targetId: C });
      expect(parse).toHaveBeenCalledTimes(1);
    } finally {
      parse.mockRestore();
    }
  });
});
