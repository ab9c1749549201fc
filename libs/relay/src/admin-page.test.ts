import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { DeviceId, EventId, FacilityId } from '@accord/protocol';
import {
  ADMIN_PAGE_CSP,
  escapeHtml,
  renderAdminPage,
  summarizeDeadletters,
  type AdminPageSnapshot,
} from './admin-page.js';

const NOW = Date.UTC(2026, 0, 2, 12, 0);
const HOSTILE = `<script>alert("x")</script><img src=x onerror='alert(1)'>&amp;`;
const d1 = 'dAAAA' as DeviceId;
const d2 = 'dBBBB' as DeviceId;

const snapshot = (over: Partial<AdminPageSnapshot> = {}): AdminPageSnapshot => ({
  relay: 'dRELAY' as DeviceId,
  now: NOW,
  startedAt: NOW - 3_600_000,
  facilities: [
    {
      facility: 'clinic-1' as FacilityId,
      rosterVersion: 3,
      devices: [
        {
          id: d1,
          name: HOSTILE,
          revoked: false,
          enrolled: '2026-01-01T08:00:00.000Z',
          sessions: 1,
          lastContact: NOW - 5 * 60_000,
        },
        {
          id: d2,
          name: 'Old tablet',
          revoked: true,
          enrolled: '2026-01-01T08:00:00.000Z',
          revokedAt: '2026-01-02T09:00:00.000Z',
          sessions: 0,
        },
      ],
      deadletters: summarizeDeadletters([
        { target: 'e1' as EventId, code: 422, rule: 'RULE_NEGATIVE_STOCK', device: d1 },
        { target: 'e2' as EventId, code: 422, rule: 'RULE_NEGATIVE_STOCK', device: d1 },
        { target: 'e3' as EventId, code: 409, rule: `RULE_<b>"x"`, device: d2 },
      ]),
    },
    { facility: 'clinic-2' as FacilityId, rosterVersion: 1, devices: [], deadletters: undefined },
  ],
  ...over,
});

describe('escapeHtml', () => {
  it('escapes the five characters that can break out of text or a quoted attribute', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
  });
});

describe('renderAdminPage', () => {
  it('escapes hostile device names and rule ids: no tag or attribute of theirs reaches the page', () => {
    const page = renderAdminPage(snapshot());
    expect(page).not.toContain('<script');
    expect(page).not.toContain('<img');
    expect(page).not.toContain('<b>');
    expect(page).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;');
    expect(page).toContain('onerror=&#39;alert(1)&#39;&gt;&amp;amp;');
    expect(page).toContain('RULE_&lt;b&gt;&quot;x&quot;');
    // The name is shown where the device is listed and where its deadletters are counted.
    expect(page.split('&lt;script&gt;').length - 1).toBe(2);
  });

  it('escapes a hostile facility id in ids and text alike', () => {
    const page = renderAdminPage(
      snapshot({
        facilities: [
          { facility: `x"><script>` as FacilityId, rosterVersion: 0, devices: [], deadletters: undefined },
        ],
      }),
    );
    expect(page).not.toContain('<script');
    expect(page).toContain('id="f-x&quot;&gt;&lt;script&gt;"');
  });

  it('lists devices with last contact and revocation, and deadletters by code and device', () => {
    const page = renderAdminPage(snapshot());
    expect(page).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
    // The first row naming the device is its row in the devices table.
    const row = (id: string) =>
      /^<tr [^\n]*?<\/tr>/.exec(page.slice(page.indexOf(`<tr data-device="${id}">`)))?.[0];
    expect(row(d1)).toContain('connected now');
    expect(row(d1)).toContain('2026-01-02 11:55 UTC</time> (5 min ago)');
    expect(row(d1)).not.toContain('revoked');
    expect(row(d2)).toContain('<span class="revoked">revoked</span>');
    expect(row(d2)).toContain('none since the relay started');
    expect(page).toContain('3 open deadletters');
    expect(page).toMatch(/<tr data-code="422">.*RULE_NEGATIVE_STOCK.*<td data-label="Open">2<\/td><\/tr>/);
    expect(page).toMatch(/<tr data-code="409">.*<td data-label="Open">1<\/td><\/tr>/);
    // By device: the hostile-named device has 2, the revoked one 1 (most first).
    const byDevice = [
      ...page.matchAll(
        /<tr data-device="([^"]*)"><td data-label="Device">.*?<td data-label="Open">(\d+)<\/td>/g,
      ),
    ];
    expect(byDevice.map((m) => [m[1], m[2]])).toEqual([
      [d1, '2'],
      [d2, '1'],
    ]);
    expect(page).toContain('Not loaded');
  });

  it('is deterministic and holds no script, so the CSP allows exactly its one style by hash', () => {
    const page = renderAdminPage(snapshot());
    expect(renderAdminPage(snapshot())).toBe(page);
    // No tag of the page's own carries a script, an event handler or an outside resource.
    const tags = page.match(/<[a-z][^>]*>/gi) ?? [];
    expect(tags.length).toBeGreaterThan(20);
    for (const tag of tags)
      expect(tag).not.toMatch(/^<(script|img|iframe|link|form)|\son[a-z]+=|javascript:|src=|href=/i);
    const style = /<style>([\s\S]*?)<\/style>/.exec(page)?.[1];
    expect(style).toBeDefined();
    const hash = createHash('sha256').update(style!).digest('base64');
    expect(ADMIN_PAGE_CSP).toContain(`style-src 'sha256-${hash}'`);
    expect(ADMIN_PAGE_CSP).toMatch(/^default-src 'none'; /);
    expect(ADMIN_PAGE_CSP).toContain("frame-ancestors 'none'");
  });
});

describe('summarizeDeadletters', () => {
  it('counts by code and by device, most first, an unknown author apart', () => {
    const s = summarizeDeadletters([
      { target: 'a' as EventId, code: 404, rule: 'RULE_DEPENDENCY_MISSING', device: undefined },
      { target: 'b' as EventId, code: 422, rule: 'RULE_NEGATIVE_STOCK', device: d2 },
      { target: 'c' as EventId, code: 422, rule: 'RULE_EXPIRED_LOT', device: d2 },
    ]);
    expect(s).toEqual({
      total: 3,
      byCode: [
        { code: 422, rules: ['RULE_EXPIRED_LOT', 'RULE_NEGATIVE_STOCK'], count: 2 },
        { code: 404, rules: ['RULE_DEPENDENCY_MISSING'], count: 1 },
      ],
      byDevice: [
        { device: d2, count: 2 },
        { device: undefined, count: 1 },
      ],
    });
  });
});
