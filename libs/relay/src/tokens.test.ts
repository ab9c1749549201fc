import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ENROLL_TOKEN_PATTERN, ErrorCode, generateDeviceKey, isAccordError } from '@accord/protocol';
import { tempDir, type TempDir } from '@accord/testkit';
import { openRelayFolder, type RelayFolderLayout } from './relay-folder.js';
import {
  consumeEnrollmentToken,
  createEnrollmentToken,
  DEFAULT_TOKEN_TTL_MS,
  enrollmentTokenHash,
  listEnrollmentTokens,
  MAX_TOKEN_TTL_MS,
  pruneEnrollmentTokens,
} from './tokens.js';

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

let tmp: TempDir;
let layout: RelayFolderLayout;
beforeEach(async () => {
  tmp = await tempDir('accord-relay-tokens-');
  layout = (await openRelayFolder(tmp.path)).layout;
});
afterEach(async () => {
  await tmp.cleanup();
});

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return isAccordError(e) ? e.code : `not an AccordError: ${String(e)}`;
  }
}

describe('createEnrollmentToken', () => {
  it('returns an acc1 token and stores only its SHA-256, mode 0600', async () => {
    const t = await createEnrollmentToken(layout, 'clinic-1', { now: T0 });
    expect(t.token).toMatch(ENROLL_TOKEN_PATTERN);
    expect(t).toMatchObject({
      facility: 'clinic-1',
      created: new Date(T0).toISOString(),
      expires: new Date(T0 + DEFAULT_TOKEN_TTL_MS).toISOString(),
    });
    const hash = enrollmentTokenHash(t.token);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(await readdir(layout.tokensDir)).toEqual([`${hash}.json`]);
    const path = join(layout.tokensDir, `${hash}.json`);
    const text = await readFile(path, 'utf8');
    expect(text).not.toContain(t.token.slice(5));
    expect(JSON.parse(text)).toEqual({ v: 1, facility: 'clinic-1', created: t.created, expires: t.expires });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('makes a different token every time', async () => {
    const tokens = await Promise.all(Array.from({ length: 5 }, () => createEnrollmentToken(layout, 'c')));
    expect(new Set(tokens.map((t) => t.token)).size).toBe(5);
  });

  it('refuses a malformed facility or ttl', async () => {
    expect(await codeOf(createEnrollmentToken(layout, '../x'))).toBe(ErrorCode.RELAY_BAD_REQUEST);
    for (const ttlMs of [0, -1, 1.5, MAX_TOKEN_TTL_MS + 1, Number.NaN]) {
      expect(await codeOf(createEnrollmentToken(layout, 'c', { ttlMs }))).toBe(ErrorCode.RELAY_BAD_REQUEST);
    }
  });
});

describe('consumeEnrollmentToken', () => {
  it('returns the facility once, then RELAY_TOKEN_USED', async () => {
    const { token } = await createEnrollmentToken(layout, 'clinic-1', { now: T0 });
    const device = (await generateDeviceKey()).deviceId;
    expect(await consumeEnrollmentToken(layout, token, T0 + 1, { device })).toBe('clinic-1');
    expect(await codeOf(consumeEnrollmentToken(layout, token, T0 + 2))).toBe(ErrorCode.RELAY_TOKEN_USED);
    const used = JSON.parse(
      await readFile(join(layout.tokensDir, 'used', `${enrollmentTokenHash(token)}.json`), 'utf8'),
    ) as Record<string, unknown>;
    expect(used).toMatchObject({ facility: 'clinic-1', used: new Date(T0 + 1).toISOString(), device });
    expect(await listEnrollmentTokens(layout, T0)).toEqual([]);
  });

  it('answers RELAY_TOKEN_INVALID for malformed and unknown tokens', async () => {
    expect(await codeOf(consumeEnrollmentToken(layout, 'acc1.short'))).toBe(ErrorCode.RELAY_TOKEN_INVALID);
    expect(await codeOf(consumeEnrollmentToken(layout, ''))).toBe(ErrorCode.RELAY_TOKEN_INVALID);
    expect(await codeOf(consumeEnrollmentToken(layout, 'acc1.' + 'A'.repeat(43)))).toBe(
      ErrorCode.RELAY_TOKEN_INVALID,
    );
  });

  it('refuses an expired token without consuming it', async () => {
    const { token } = await createEnrollmentToken(layout, 'clinic-1', { now: T0, ttlMs: HOUR });
    expect(await codeOf(consumeEnrollmentToken(layout, token, T0 + HOUR))).toBe(
      ErrorCode.RELAY_TOKEN_EXPIRED,
    );
    expect(await codeOf(consumeEnrollmentToken(layout, token, T0 + 2 * HOUR))).toBe(
      ErrorCode.RELAY_TOKEN_EXPIRED,
    );
    const pending = await listEnrollmentTokens(layout, T0 + HOUR);
    expect(pending).toEqual([expect.objectContaining({ facility: 'clinic-1', expired: true })]);
    // Still there, untouched: a clock that had not passed expiry would still accept it.
    expect(await consumeEnrollmentToken(layout, token, T0 + HOUR - 1)).toBe('clinic-1');
  });

  it('lets exactly one of many concurrent consumers win', async () => {
    const { token } = await createEnrollmentToken(layout, 'clinic-1', { now: T0 });
    const results = await Promise.allSettled(
      Array.from({ length: 16 }, () => consumeEnrollmentToken(layout, token, T0 + 1)),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toEqual([{ status: 'fulfilled', value: 'clinic-1' }]);
    for (const r of results) {
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: ErrorCode.RELAY_TOKEN_USED });
    }
  });

  it('reports a damaged token file as RELAY_CONFIG_INVALID', async () => {
    const { token } = await createEnrollmentToken(layout, 'clinic-1', { now: T0 });
    await writeFile(join(layout.tokensDir, `${enrollmentTokenHash(token)}.json`), '{"v":1}');
    expect(await codeOf(consumeEnrollmentToken(layout, token, T0))).toBe(ErrorCode.RELAY_CONFIG_INVALID);
  });
});

describe('listEnrollmentTokens and pruneEnrollmentTokens', () => {
  it('lists pending tokens oldest first and prunes only old expired or used ones', async () => {
    const old = await createEnrollmentToken(layout, 'a', { now: T0, ttlMs: HOUR });
    const used = await createEnrollmentToken(layout, 'b', { now: T0 + 1 });
    const fresh = await createEnrollmentToken(layout, 'c', { now: T0 + 2 });
    await consumeEnrollmentToken(layout, used.token, T0 + 3);
    expect((await listEnrollmentTokens(layout, T0 + 2 * HOUR)).map((t) => [t.facility, t.expired])).toEqual([
      ['a', true],
      ['c', false],
    ]);
    const keep = 10 * HOUR;
    // Nothing is old enough yet.
    expect(await pruneEnrollmentTokens(layout, T0 + 2 * HOUR, keep)).toBe(0);
    // 'a' expired 11 h ago and 'b' was used 12 h ago; 'c' is valid for another 13 h.
    expect(await pruneEnrollmentTokens(layout, T0 + 12 * HOUR, keep)).toBe(2);
    expect(await codeOf(consumeEnrollmentToken(layout, old.token, T0))).toBe(ErrorCode.RELAY_TOKEN_INVALID);
    expect(await codeOf(consumeEnrollmentToken(layout, used.token, T0))).toBe(ErrorCode.RELAY_TOKEN_INVALID);
    expect(await consumeEnrollmentToken(layout, fresh.token, T0 + 12 * HOUR)).toBe('c');
  });
});
