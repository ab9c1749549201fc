// The Sync Centre page end to end: a real relay process, two tablets (in-process DeviceAgents on
// real LevelDB in a temp folder, dialing the relay) serving the page, and headless Debian chromium
// driven by playwright-core. Screenshots go to apps/sync-centre/test-results/ (git-ignored).
import { createServer, type Server } from 'node:http';
import type { BrowserContext } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { DeviceAgent } from '@accord/device';
import {
  api,
  markWindow,
  origin,
  PHONE,
  pageWorld,
  sameWindow,
  screenshot,
  seriousViolations,
  status,
} from './testing/page-harness.js';

const world = pageWorld({
  prefix: 'accord-page-',
  facility: 'clinic-page',
  tablets: ['Reception', 'Pharmacy'],
});
const tab = {
  get one(): DeviceAgent {
    return world.tablet(0);
  },
  get two(): DeviceAgent {
    return world.tablet(1);
  },
};
const openContext = (viewport?: { width: number; height: number }) => world.openContext(viewport);
const openPage = (context: BrowserContext, agent: DeviceAgent, hash?: string) =>
  world.openPage(context, agent, hash);

describe('the Sync Centre page', () => {
  it('loads from the agent, every request going to the agent’s own origin; offline, the outbox shows the change in words', async () => {
    const { context, requests } = await openContext();
    const page = await openPage(context, tab.one);
    await page.getByRole('heading', { level: 1, name: 'Needs attention' }).waitFor();
    await page.goto(`${origin(tab.one)}/#/environment`);
    await page.getByTestId('env-device').waitFor();
    expect(await page.getByTestId('env-device').textContent()).toBe(
      (await api<{ device: string }>(tab.one, 'GET', '/api/status')).device,
    );
    // The network switch, pushed back to the status bar by the stream.
    await page.getByRole('button', { name: 'Take this tablet offline' }).click();
    await page.getByTestId('status-online').filter({ hasText: 'Offline' }).waitFor();
    expect((await api<{ online: boolean }>(tab.one, 'GET', '/api/status')).online).toBe(false);
    // Offline, a change waits in the outbox, in words and with its age.
    const waiting = await api<{ id: string }>(tab.one, 'POST', '/api/events', {
      type: 'StockReceived',
      data: { lot: 'W-1', antigen: 'OPV', quantity: 4, expiry: '2031-01-01' },
    });
    await page.getByTestId('status-outbox').filter({ hasText: /^1$/ }).waitFor();
    await page.getByRole('link', { name: 'Outbox' }).click();
    const item = page.getByTestId('outbox-list').getByRole('listitem');
    await item.filter({ hasText: 'Stock received: 4 doses of OPV, lot W-1' }).waitFor();
    expect(await item.textContent()).toContain('just now');
    await page.getByRole('link', { name: 'Environment' }).click();
    await page.getByRole('button', { name: 'Bring this tablet back online' }).click();
    await page.getByTestId('status-online').filter({ hasText: 'Online' }).waitFor();
    expect((await api<{ online: boolean }>(tab.one, 'GET', '/api/status')).online).toBe(true);
    await page.getByTestId('status-outbox').filter({ hasText: /^0$/ }).waitFor();
    await expect.poll(() => status(tab.one, waiting.id)).toBe('accepted');
    await context.close();
    const urls = requests.map((r) => r.url()).filter((u) => !u.startsWith('data:'));
    expect(urls.length).toBeGreaterThan(3);
    expect(urls.filter((u) => !u.startsWith(`${origin(tab.one)}/`))).toEqual([]);
    // The page, its script and style, and the live stream all came from the agent.
    expect(urls).toEqual(
      expect.arrayContaining([
        `${origin(tab.one)}/app.js`,
        `${origin(tab.one)}/app.css`,
        `${origin(tab.one)}/api/stream`,
      ]),
    );
  });

  it('updates the status bar and the screens live when another tablet records an event (no reload)', async () => {
    const { context } = await openContext();
    const page = await openPage(context, tab.one, '#/patients');
    await markWindow(page);
    const before = Number(await page.getByTestId('status-confirmed').textContent());
    const created = await api<{ id: string }>(tab.two, 'POST', '/api/events', {
      type: 'PatientRegistered',
      data: {
        patientId: 'P-live',
        nationalId: 'NID-live',
        givenName: 'Amina',
        familyName: 'Kamau',
        birthDate: '2025-01-05',
        sex: 'female',
      },
    });
    // Pushed through the relay to tablet 1 and its page: the patient appears, the confirmed number grows.
    await page.getByRole('cell', { name: 'Amina Kamau', exact: true }).waitFor();
    await page.waitForFunction(
      (n) => Number(document.querySelector('[data-testid="status-confirmed"]')?.textContent) > n,
      before,
    );
    expect(await sameWindow(page)).toBe(true);
    await expect.poll(() => status(tab.one, created.id)).toBe('accepted');
    await context.close();
  });

  it('lists patients a page at a time, finds them by name or id, and offers them to the vaccination form', async () => {
    for (let i = 0; i < 55; i++) {
      await api(tab.one, 'POST', '/api/events', {
        type: 'PatientRegistered',
        data: {
          patientId: `P-page-${i}`,
          nationalId: `NID-page-${i}`,
          givenName: 'Pagina',
          familyName: `Nr${i}`,
          birthDate: '2024-02-01',
          sex: 'female',
        },
      });
    }
    const { context } = await openContext();
    const page = await openPage(context, tab.one, '#/patients');
    const rows = page.getByTestId('patients').locator('tbody tr');
    const search = page.getByRole('textbox', { name: 'Search' });
    await search.fill('pagina');
    await page.getByTestId('patients-shown').filter({ hasText: 'Showing 50 of 55.' }).waitFor();
    expect(await rows.count()).toBe(50);
    await page.getByRole('button', { name: 'Show more' }).click();
    await page.getByTestId('patients-shown').filter({ hasText: 'Showing 55 of 55.' }).waitFor();
    expect(await rows.count()).toBe(55);
    expect(await page.getByRole('button', { name: 'Show more' }).count()).toBe(0);
    // Every term counts, in any case: one patient.
    await search.fill('NR7 pagina');
    await page.getByTestId('patients-shown').filter({ hasText: 'Showing 1 of 1.' }).waitFor();
    expect(await rows.getAttribute('data-patient')).toBe('P-page-7');
    await search.fill('nobody-by-that-name');
    await page.getByText('No patient matches.').waitFor();
    // The vaccination form lists what its search finds, and keeps the chosen patient listed.
    await page.goto(`${origin(tab.one)}/#/vaccinate`);
    const form = page.locator('form');
    await form.getByRole('textbox', { name: 'Search' }).fill('nid-page-42');
    const choices = form.getByLabel('Patient').locator('option');
    await expect.poll(() => choices.allTextContents()).toEqual(['Choose…', 'Pagina Nr42 (NID-page-42)']);
    await form.getByLabel('Patient').selectOption('P-page-42');
    await form.getByRole('textbox', { name: 'Search' }).fill('nid-page-43');
    await expect
      .poll(() => choices.allTextContents())
      .toEqual(['Choose…', 'Pagina Nr42 (NID-page-42)', 'Pagina Nr43 (NID-page-43)']);
    expect(await form.getByLabel('Patient').inputValue()).toBe('P-page-42');
    await context.close();
  });

  it('records from the forms with JSON and one Idempotency-Key per action', async () => {
    const { context, requests } = await openContext();
    const page = await openPage(context, tab.one, '#/stock');
    await page.getByLabel('Lot').fill('M-442');
    await page.getByLabel('Vaccine').selectOption('Measles');
    await page.getByLabel('Doses').fill('2');
    await page.getByLabel('Expiry date').fill('2030-12-31');
    await page.getByRole('button', { name: 'Receive stock' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved on this tablet.' }).waitFor();
    await page.getByRole('cell', { name: 'M-442' }).waitFor();
    const posts = requests.filter((r) => r.method() === 'POST');
    expect(posts).toHaveLength(1);
    const headers = await posts[0]!.allHeaders();
    expect(headers['content-type']).toBe('application/json');
    expect(headers['idempotency-key']).toMatch(/^[0-9a-f]{32}$/);
    await context.close();
  });

  it('shows a 422 negative stock with its numbers; Retry conflicted re-sends it (still short: 422 again), and stock arriving on another tablet gets it accepted with no further retry', async () => {
    await api(tab.two, 'POST', '/api/events', {
      type: 'StockReceived',
      data: { lot: 'L-1', antigen: 'BCG', quantity: 2, expiry: '2030-01-01' },
    });
    const { context } = await openContext();
    const page = await openPage(context, tab.one, '#/attention');
    const consumed = await api<{ id: string }>(tab.one, 'POST', '/api/events', {
      type: 'StockConsumed',
      data: { lot: 'L-1', quantity: 5, reason: 'transfer' },
    });
    const card = page.locator(`[data-testid="deadletter"][data-id="${consumed.id}"]`);
    await card.waitFor();
    expect(await card.getByTestId('numbers').textContent()).toBe(
      'Lot L-1 would go to -3: 2 in stock, 5 requested.',
    );
    // The code is shown with its meaning, and the rule in plain language next to its id.
    expect(await page.getByTestId('code-422').getByRole('heading', { level: 2 }).textContent()).toBe(
      'Code 422: a business rule was not met',
    );
    expect(await card.textContent()).toContain('Not enough stock (RULE_NEGATIVE_STOCK)');
    await page.getByTestId('sync-icon').locator('.mark').waitFor();
    // Inspect contents: the whole event and its verdict.
    await card.getByRole('link', { name: 'Inspect contents' }).click();
    const facts = page.getByTestId('inspect');
    await facts.waitFor();
    const me = (await api<{ device: string }>(tab.one, 'GET', '/api/status')).device;
    expect(await facts.textContent()).toContain(consumed.id);
    expect(await facts.textContent()).toContain(me);
    expect(await page.locator('main').textContent()).toContain('Rejected with code 422');
    expect(await page.locator('main').textContent()).toContain(
      'Lot L-1 would go to -3: 2 in stock, 5 requested.',
    );
    await page.goBack();
    await card.waitFor();
    // Retry conflicted while the lot is still short: re-sent, and judged 422 again by the relay.
    const verdicts = async (): Promise<number> =>
      (await api<{ verdicts: unknown[] }>(tab.one, 'GET', `/api/events/${consumed.id}`)).verdicts.length;
    await page.getByRole('button', { name: 'Retry conflicted' }).click();
    await page.getByRole('status').filter({ hasText: 'Sent again: 1. Skipped: 0.' }).waitFor();
    await expect.poll(verdicts, { timeout: 20_000 }).toBe(2);
    await card.waitFor();
    // Stock arrives on the other tablet: the relay re-judges the 422 by itself (issue #10).
    await api(tab.two, 'POST', '/api/events', {
      type: 'StockReceived',
      data: { lot: 'L-1', antigen: 'BCG', quantity: 10, expiry: '2030-01-01' },
    });
    await card.waitFor({ state: 'detached' });
    await expect.poll(() => status(tab.one, consumed.id)).toBe('accepted');
    await page.getByTestId('sync-icon').locator('.mark').waitFor({ state: 'detached' });
    await context.close();
  });

  it('leaves the server version only after confirmation, and the audit trail shows it', async () => {
    const { context } = await openContext();
    const page = await openPage(context, tab.one, '#/attention');
    const consumed = await api<{ id: string }>(tab.one, 'POST', '/api/events', {
      type: 'StockConsumed',
      data: { lot: 'L-1', quantity: 1000, reason: 'transfer' },
    });
    const card = page.locator(`[data-testid="deadletter"][data-id="${consumed.id}"]`);
    await card.waitFor();
    await card.getByRole('button', { name: 'Leave server version' }).click();
    const dialog = page.getByRole('dialog', { name: 'Leave the server’s version?' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(await status(tab.one, consumed.id)).toBe('deadletter');
    await card.getByRole('button', { name: 'Leave server version' }).click();
    await dialog.getByLabel('Reason (for the audit trail)').fill('counted again: stock is right');
    await dialog.getByRole('button', { name: 'Yes, leave server version' }).click();
    await card.waitFor({ state: 'detached' });
    expect(await status(tab.one, consumed.id)).toBe('resolved');
    await page.goto(`${origin(tab.one)}/#/audit`);
    const row = page.getByTestId('audit').getByRole('row').filter({ hasText: consumed.id }).first();
    await row.waitFor();
    expect(await row.textContent()).toContain('Leave server version');
    expect(await row.textContent()).toContain('counted again: stock is right');
    await context.close();
  });

  it('amends a rejected change from the page: the correction supersedes it and is accepted', async () => {
    const { context } = await openContext();
    const page = await openPage(context, tab.one, '#/attention');
    const consumed = await api<{ id: string }>(tab.one, 'POST', '/api/events', {
      type: 'StockConsumed',
      data: { lot: 'L-1', quantity: 500, reason: 'transfer' },
    });
    const card = page.locator(`[data-testid="deadletter"][data-id="${consumed.id}"]`);
    await card.waitFor();
    await card.getByRole('button', { name: 'Edit and send again' }).click();
    await card.getByLabel('quantity').fill('1');
    await card.getByRole('button', { name: 'Record corrected change' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: 'The corrected change was recorded and sent.' })
      .waitFor();
    await card.waitFor({ state: 'detached' });
    const info = await api<{ status: string; resolvedBy?: string }>(
      tab.one,
      'GET',
      `/api/events/${consumed.id}`,
    );
    expect(info.status).toBe('resolved');
    const amend = await api<{ event: { supersedes?: string; data: { quantity: number } } }>(
      tab.one,
      'GET',
      `/api/events/${info.resolvedBy ?? 'none'}`,
    );
    expect(amend.event).toMatchObject({ supersedes: consumed.id, data: { quantity: 1 } });
    await expect.poll(() => status(tab.one, info.resolvedBy ?? 'none')).toBe('accepted');
    await context.close();
  });

  it('refuses a page of another origin that posts to the agent', async () => {
    const before = (await api<unknown[]>(tab.one, 'GET', '/api/events')).length;
    const target = `${origin(tab.one)}/api/events`;
    const body = JSON.stringify({
      type: 'StockReceived',
      data: { lot: 'X', antigen: 'BCG', quantity: 1, expiry: '2030-01-01' },
    });
    // A page on another local port: a CORS fetch (preflighted: JSON) and a no-cors text/plain one.
    const html = `<!doctype html><title>foreign</title><script>
      const out = {};
      fetch(${JSON.stringify(target)}, { method: 'POST', headers: { 'content-type': 'application/json' }, body: ${JSON.stringify(body)} })
        .then((r) => { out.cors = 'answered ' + r.status; }, (e) => { out.cors = 'failed'; })
        .then(() => fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: ${JSON.stringify(body)} }))
        .then(() => { out.noCors = 'sent'; }, () => { out.noCors = 'failed'; })
        .then(() => { document.title = JSON.stringify(out); });
    </script>`;
    const foreign: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(html);
    });
    await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
    const port = (foreign.address() as { port: number }).port;
    const { context } = await openContext();
    try {
      const page = await context.newPage();
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.waitForFunction(() => document.title.startsWith('{'));
      expect(JSON.parse(await page.title())).toEqual({ cors: 'failed', noCors: 'sent' });
    } finally {
      await context.close();
      await new Promise<void>((resolve) => foreign.close(() => resolve()));
    }
    expect((await api<unknown[]>(tab.one, 'GET', '/api/events')).length).toBe(before);
    // The agent saw the no-cors write and refused it as coming from another page.
    const audit = await api<{ action: string; outcome: string; detail?: { code?: string } }[]>(
      tab.one,
      'GET',
      '/api/audit',
    );
    expect(audit.some((a) => a.outcome === 'refused' && a.detail?.code === 'DEVICE_FOREIGN_ORIGIN')).toBe(
      true,
    );
  });

  it('has no serious or critical accessibility violation on each main screen (screenshots saved)', async () => {
    const anyEvent = (
      await api<{ event: { id: string } }[]>(tab.one, 'GET', '/api/events?status=resolved')
    )[0];
    expect(anyEvent).toBeDefined();
    // A deadletter to show while the screens are scanned.
    await api(tab.one, 'POST', '/api/events', {
      type: 'StockConsumed',
      data: { lot: 'L-1', quantity: 999, reason: 'transfer' },
    });
    await expect.poll(async () => (await api<unknown[]>(tab.one, 'GET', '/api/deadletters')).length).toBe(1);
    const screens = [
      'attention',
      'outbox',
      `inspect/${anyEvent!.event.id}`,
      'environment',
      'audit',
      'patients',
      'queue',
      'vaccinate',
      'stock',
      'appointments',
      'counters',
    ];
    const { context, requests } = await openContext();
    const page = await openPage(context, tab.one, '#/attention');
    const found: Record<string, string[]> = {};
    for (const screen of screens) {
      await page.goto(`${origin(tab.one)}/#/${screen}`);
      await page.getByRole('heading', { level: 1 }).first().waitFor();
      await page.getByText('Loading…').waitFor({ state: 'detached' });
      found[screen] = await seriousViolations(page);
      await screenshot(page, screen.split('/')[0]!);
    }
    expect(found).toEqual(Object.fromEntries(screens.map((s) => [s, []])));
    // No screen loads the facility's whole patient list: names by id, lists a page at a time.
    const patientLists = requests.map((r) => new URL(r.url())).filter((u) => u.pathname === '/api/patients');
    expect(patientLists.length).toBeGreaterThan(0);
    expect(patientLists.filter((u) => u.search === '').map(String)).toEqual([]);
    await context.close();
    // On a phone, too: the list one tap away from the warning mark.
    const phone = await openContext(PHONE);
    const small = await openPage(phone.context, tab.one, '#/outbox');
    await small.getByTestId('sync-icon').click();
    await small.getByRole('heading', { level: 1, name: 'Needs attention' }).waitFor();
    await small.getByTestId('deadletter').first().waitFor();
    await screenshot(small, 'attention-phone');
    await phone.context.close();
  });
});
