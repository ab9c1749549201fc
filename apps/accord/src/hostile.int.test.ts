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
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : new Blob([new Uint8Array(body)]),
  });
  const json = (await res.json()) as { code?: string };
  if (res.status === 201) created++;
  return { status: res.status, json };
}

/** One request with exactly the headers a browser would send for a page (`host` defaults to the agent's). */
function browser(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; json: { code?: string } }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: agent.ready.http, path, method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as { code?: string } });
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const REGISTRATION = (n: number): string =>
  JSON.stringify({
    type: 'PatientRegistered',
    data: {
      patientId: `P-WEB-${n}`,
      nationalId: `GH-WEB-${n}`,
      givenName: 'Ama',
      familyName: 'Mensah',
      birthDate: '2020-02-02',
      sex: 'female',
    },
  });

async function total(): Promise<number> {
  return (await agent.api<{ counts: { total: number } }>('GET', '/api/status')).json.counts.total;
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
    await raw(
      http,
      `POST /api/events HTTP/1.1\r\nHost: 127.0.0.1:${http}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"type":`,
      {
        half: true,
      },
    );
    await alive();

    const big = await post(
      JSON.stringify({ type: 'PatientRegistered', data: { pad: 'x'.repeat(2 * 1024 * 1024) } }),
    );
    expect(big).toMatchObject({ status: 413, json: { code: 'DEVICE_BODY_TOO_LARGE' } });
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: http,
          path: '/api/events',
          method: 'POST',
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
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
                headers: { 'content-type': 'application/json' },
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

  it('refuses what a foreign web page can make the browser send, and records nothing', async () => {
    const port = agent.ready.http;
    const before = await total();
    const foreign = { origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' };
    // The three content types a page may POST with no CORS preflight (a form, or fetch no-cors).
    const simple = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'];
    let n = 0;
    for (const type of simple) {
      const cross = await browser(
        'POST',
        '/api/events',
        { ...foreign, 'content-type': type },
        REGISTRATION(++n),
      );
      expect(cross, type).toMatchObject({ status: 403, json: { code: 'DEVICE_FOREIGN_ORIGIN' } });
      // Even a client that sends no Origin must say JSON to write.
      const bare = await browser('POST', '/api/events', { 'content-type': type }, REGISTRATION(++n));
      expect(bare, type).toMatchObject({ status: 415, json: { code: 'DEVICE_UNSUPPORTED_MEDIA_TYPE' } });
    }
    const json = { 'content-type': 'application/json' };
    expect(await browser('POST', '/api/events', { ...foreign, ...json }, REGISTRATION(++n))).toMatchObject({
      status: 403,
      json: { code: 'DEVICE_FOREIGN_ORIGIN' },
    });
    expect(
      await browser('POST', '/api/events', { origin: 'null', ...json }, REGISTRATION(++n)),
    ).toMatchObject({
      status: 403,
      json: { code: 'DEVICE_FOREIGN_ORIGIN' },
    });
    // DNS rebinding: the page's own name resolves to 127.0.0.1, so the browser calls it same-origin.
    const rebound = { host: `evil.example:${port}` };
    expect(await browser('GET', '/api/patients', rebound)).toMatchObject({
      status: 421,
      json: { code: 'DEVICE_FOREIGN_HOST' },
    });
    expect(
      await browser(
        'POST',
        '/api/events',
        { ...rebound, origin: `http://evil.example:${port}`, ...json },
        REGISTRATION(++n),
      ),
    ).toMatchObject({ status: 421, json: { code: 'DEVICE_FOREIGN_HOST' } });
    // Reads from a foreign page (a no-cors GET carries Sec-Fetch-Site but no Origin).
    expect(await browser('GET', '/api/patients', { 'sec-fetch-site': 'cross-site' })).toMatchObject({
      status: 403,
      json: { code: 'DEVICE_FOREIGN_ORIGIN' },
    });
    // Cutting the tablet off the network is a write like any other.
    const off = JSON.stringify({ online: false });
    expect(
      await browser('POST', '/api/network', { ...foreign, 'content-type': 'text/plain' }, off),
    ).toMatchObject({
      status: 403,
    });
    expect(await browser('POST', '/api/network', { 'content-type': 'text/plain' }, off)).toMatchObject({
      status: 415,
      json: { code: 'DEVICE_UNSUPPORTED_MEDIA_TYPE' },
    });
    expect(await browser('POST', '/api/network', { ...rebound, ...json }, off)).toMatchObject({
      status: 421,
    });
    expect((await agent.api<{ online: boolean }>('GET', '/api/network')).json.online).toBe(true);
    expect(await total()).toBe(before);

    // The agent's own pages (same origin, by any of its loopback names) keep working.
    const own = await browser(
      'POST',
      '/api/events',
      { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin', ...json },
      REGISTRATION(++n),
    );
    expect(own.status, JSON.stringify(own.json)).toBe(201);
    created++;
    expect(
      await browser('GET', '/api/patients', {
        host: `localhost:${port}`,
        origin: `http://localhost:${port}`,
        'sec-fetch-site': 'same-origin',
      }),
    ).toMatchObject({ status: 200 });
    expect(await total()).toBe(before + 1);
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
