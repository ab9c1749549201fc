import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { drainAfterEarlyReply, matchPath, readJsonBody } from './http-json.js';

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  server = undefined;
});

/** A server that answers each POST with what readJsonBody made of it (cap 16 bytes). */
async function start(optional = false): Promise<number> {
  server = createServer((req, res) => {
    void readJsonBody(req, { max: 16, optional }).then((result) => {
      drainAfterEarlyReply(req, res, 16);
      res.end(JSON.stringify(result));
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function post(port: number, body: string, headers: Record<string, string> = {}): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ port, method: 'POST', host: '127.0.0.1', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => (text += d));
      res.on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('readJsonBody', () => {
  it('parses JSON and names each problem: too large (declared or streamed), empty, not JSON', async () => {
    const port = await start();
    expect(await post(port, '{"a":1}')).toEqual({ ok: true, value: { a: 1 } });
    expect(await post(port, '{"a":"0123456789abcdef"}')).toEqual({ ok: false, problem: 'too-large' });
    // Chunked, with no Content-Length: counted as it arrives.
    expect(await post(port, 'x'.repeat(40), { 'transfer-encoding': 'chunked' })).toEqual({
      ok: false,
      problem: 'too-large',
    });
    expect(await post(port, '  ')).toEqual({ ok: false, problem: 'empty' });
    expect(await post(port, '{nope')).toEqual({ ok: false, problem: 'not-json' });
  });

  it('takes an empty body as undefined when the body is optional', async () => {
    const port = await start(true);
    expect(await post(port, '')).toEqual({ ok: true });
  });
});

describe('matchPath', () => {
  it('returns the parameters of a matching pattern, undefined otherwise', () => {
    expect(matchPath(['api', 'events', ':id'], ['api', 'events', 'E1'])).toEqual(['E1']);
    expect(matchPath(['api', 'events', ':id'], ['api', 'event', 'E1'])).toBeUndefined();
    expect(matchPath(['api', 'events'], ['api', 'events', 'E1'])).toBeUndefined();
    expect(matchPath([], [])).toEqual([]);
  });
});
