import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccordError, ErrorCode } from '@accord/protocol';
import { tempDir, type TempDir } from '@accord/testkit';
import { createRelayLogger } from './logger.js';

/** A destination that keeps every line written to it. */
function capture(): { lines: () => Record<string, unknown>[]; write: (s: string) => void } {
  const chunks: string[] = [];
  return {
    write: (s) => {
      chunks.push(s);
    },
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

let tmp: TempDir;
beforeEach(async () => {
  tmp = await tempDir('accord-relay-logger-');
});
afterEach(async () => {
  await tmp.cleanup();
});

describe('createRelayLogger', () => {
  it('writes JSON lines with an ISO time, the level as a word and the relay name', () => {
    const out = capture();
    const log = createRelayLogger({ destination: out });
    log.info({ facility: 'clinic-1' }, 'facility loaded');
    log.debug('not at info');
    const [line, ...rest] = out.lines();
    expect(rest).toEqual([]);
    expect(line).toMatchObject({
      level: 'info',
      name: 'accord-relay',
      facility: 'clinic-1',
      msg: 'facility loaded',
    });
    expect(new Date(line!['time'] as string).toISOString()).toBe(line!['time']);
  });

  it('honours the level and never logs secrets', () => {
    const out = capture();
    const log = createRelayLogger({ level: 'debug', destination: out });
    log.debug(
      { token: 'acc1.secret', password: 'hunter22', req: { headers: { authorization: 'Basic x' } } },
      'd',
    );
    const [line] = out.lines();
    expect(line).toMatchObject({ level: 'debug', token: '[redacted]', password: '[redacted]' });
    expect(JSON.stringify(line)).not.toMatch(/acc1\.secret|hunter22|Basic x/);
  });

  it('serializes an AccordError with its code', () => {
    const out = capture();
    const log = createRelayLogger({ destination: out });
    log.error({ err: new AccordError(ErrorCode.RELAY_INTERNAL, 'boom', { details: { a: 1 } }) }, 'failed');
    expect(out.lines()[0]).toMatchObject({
      level: 'error',
      err: { type: 'AccordError', message: 'boom', code: 'RELAY_INTERNAL', details: { a: 1 } },
    });
  });

  it('writes synchronously to a file path, creating folders', async () => {
    const path = join(tmp.path, 'logs', 'relay.log');
    const log = createRelayLogger({ destination: path });
    log.warn({ n: 1 }, 'first');
    // No flush, no wait: the line is already on disk.
    const text = await readFile(path, 'utf8');
    expect(JSON.parse(text.trim())).toMatchObject({ level: 'warn', msg: 'first', n: 1 });
  });

  it('refuses an unknown level', () => {
    expect(() => createRelayLogger({ level: 'loud' })).toThrow(
      expect.objectContaining({ code: ErrorCode.RELAY_CONFIG_INVALID }),
    );
  });
});
