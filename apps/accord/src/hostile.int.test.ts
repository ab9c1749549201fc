// Bad input on the HTTP API (and junk on the peer port) is answered, never obeyed, and never crashes the agent (P7).
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initDevice } from '@accord/device';
import { AgentProcess } from './test-support.js';

let dir: string;
let agent: AgentProcess;
let created = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-hostile-'));
  await initDevice({ data: join(dir, 'tablet'), facility: 'clinic-1', name: 'tablet' });
  agent = await AgentProcess.start([
    '--data',
    join(dir, 'tablet'),
    '--listen',
    '0',
    '--listen-host',
    '127.0.0.1',
  ]);
});
afterAll(async () => {
  await agent.stop('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

/** Sends raw bytes to `port` and resolves with whatever comes back before the socket closes. */
function raw(port: number, bytes: string | Buffer, opts: { half?: boolean } = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(bytes);
      if (opts.half === true) socket.destroy();
      else socket.end();
    });
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (text += d));
    socket.on('close', () => resolve(text));
    socket.on('error', () => resolve(text));
  });
}

async function post(body: string | Uint8Array): Promise<{ status: number; json: { code?: string } }> {
  const res = await fetch(`http://127.0.0.1:${agent.ready.http}/api/events`, {
    method: 'POST',
    body: typeof body === 'string' ? body : new Blob([new Uint8Array(body)]),
  });
  const json = (await res.json()) as { code?: string };
  if (res.status === 201) created++;
  return { status: res.status, json };
}

async function alive(): Promise<void> {
  expect(agent.child.exitCode).toBeNull();
  expect((await agent.api('GET', '/api/status')).status).toBe(200);
  expect(agent.stderr).not.toMatch(/unhandled rejection|uncaught exception/);
}

describe('hostile input', () => {
  it('answers garbage, oversized and aborted requests with codes and stays up', async () => {
    const http = agent.ready.http;
    expect(await raw(http, 'GARBAGE\x00\xff\r\n\r\n')).toMatch(/^HTTP\/1\.1 400/);
    expect(
      await raw(http, `GET /api/status HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`),
    ).toMatch(/^HTTP\/1\.1 431/);
    // Declares a body, sends a little of it and vanishes.
    await raw(http, 'POST /api/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"type":', {
      half: true,
    });
    await alive();

    const big = await post(
      JSON.stringify({ type: 'PatientRegistered', data: { pad: 'x'.repeat(2 * 1024 * 1024) } }),
    );
    expect(big).toMatchObject({ status: 413, json: { code: 'DEVICE_BODY_TOO_LARGE' } });
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: http, path: '/api/events', method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 24; i++) req.write(Buffer.alloc(64 * 1024, 0x20));
      req.end();
    });
    expect(chunked).toBe(413);
    await alive();
  });

  it('answers malformed events with 400 and a code, recording nothing', async () => {
    const cases: [string | Uint8Array, string][] = [
      ['{"type": "PatientRegistered", "data": ', 'DEVICE_BAD_REQUEST'],
      [new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), 'DEVICE_BAD_REQUEST'],
      ['{"type": "NoSuchEvent", "data": {}}', 'PROTOCOL_SCHEMA'],
      ['{"type": "PatientRegistered", "data": {"patientId": "P-1"}}', 'PROTOCOL_SCHEMA'],
      [
        `{"type": "PatientRegistered", "data": {"patientId": ${'['.repeat(50_000)}${']'.repeat(50_000)}}}`,
        'PROTOCOL_SCHEMA',
      ],
      [
        '{"type": "StockReceived", "data": {"lot": "L", "antigen": "BCG", "quantity": -5, "expiry": "2030-01-01"}}',
        'PROTOCOL_SCHEMA',
      ],
      ['{"type": "PatientRegistered", "data": {"__proto__": {"x": 1}}}', 'PROTOCOL_SCHEMA'],
    ];
    for (const [body, code] of cases) {
      const res = await post(body);
      expect(res.status, String(body).slice(0, 80)).toBe(400);
      expect(res.json.code).toBe(code);
    }
    const counts = await agent.api<{ counts: { total: number } }>('GET', '/api/status');
    expect(counts.json.counts.total).toBe(created);
    await alive();
  });

  it('answers any random body and path below 500, under concurrency', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({
              kind: fc.constant('event' as const),
              type: fc.constantFrom('PatientRegistered', 'StockConsumed', 'x', ''),
              data: fc.jsonValue(),
            }),
            fc.record({
              kind: fc.constant('path' as const),
              path: fc.webPath(),
              method: fc.constantFrom('GET', 'POST', 'DELETE', 'PATCH'),
            }),
          ),
          { minLength: 1, maxLength: 8 },
        ),
        async (requests) => {
          const answers = await Promise.all(
            requests.map(async (r) => {
              if (r.kind === 'event')
                return (await post(JSON.stringify({ type: r.type, data: r.data }))).status;
              const res = await fetch(`http://127.0.0.1:${agent.ready.http}/${r.path.replace(/^\/+/, '')}`, {
                method: r.method,
              });
              await res.arrayBuffer();
              return res.status;
            }),
          );
          for (const status of answers) expect(status).toBeLessThan(500);
        },
      ),
      { numRuns: 40 },
    );
    await alive();
  });

  it('survives junk on the peer port', async () => {
    const peer = agent.ready.peer!;
    await raw(
      peer,
      'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n\x81\xff garbage',
    );
    await raw(peer, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)));
    await alive();
  });
});
