// The Sync Centre page end to end: a real relay process, two tablets (in-process DeviceAgents on
// real LevelDB in a temp folder, dialing the relay) serving the page, and headless Debian chromium
// driven by playwright-core. Screenshots go to apps/sync-centre/test-results/ (git-ignored).
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AxeBuilder } from '@axe-core/playwright';
import { chromium, type Browser, type BrowserContext, type Page, type Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DeviceAgent, type StaticAsset } from '@accord/device';
// The relay process and enrollment helpers of the accord command's tests, and the page loader the
// command itself uses: reused rather than copied.
// eslint-disable-next-line @nx/enforce-module-boundaries -- test helpers of the app that wires the agent
import { enrollDevice, RelayProcess } from '../../accord/src/test-support.js';
// eslint-disable-next-line @nx/enforce-module-boundaries -- the same assets `accord device run` serves
import { loadSyncCentrePage } from '../../accord/src/sync-centre-page.js';

const ARTIFACTS = fileURLToPath(new URL('../test-results/', import.meta.url));
const FACILITY = 'clinic-page';

let dir = '';
let relay: RelayProcess;
let assets: ReadonlyMap<string, StaticAsset>;
let tab1: DeviceAgent;
let tab2: DeviceAgent;
let browser: Browser;

const origin = (a: DeviceAgent): string => `http://127.0.0.1:${a.httpPort}`;

/** Calls an agent's API as a script would (no Origin; JSON writes). */
async function api<T>(agent: DeviceAgent, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await fetch(origin(agent) + path, {
    method,
    ...(method === 'POST' ? { headers: { 'content-type': 'application/json' } } : {}),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function status(agent: DeviceAgent, id: string): Promise<string> {
  return (await api<{ status: string }>(agent, 'GET', `/api/events/${id}`)).status;
}

/** A browser context whose every request is recorded; pages of `browser.newContext()` (axe needs it). */
async function openContext(viewport = { width: 1280, height: 800 }): Promise<{
  context: BrowserContext;
  requests: Request[];
}> {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(20_000);
  const requests: Request[] = [];
  context.on('request', (r) => requests.push(r));
  return { context, requests };
}

/** Opens the page of `agent` at `hash` and waits for the first live status. */
async function openPage(context: BrowserContext, agent: DeviceAgent, hash = '#/attention'): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${origin(agent)}/${hash}`);
  await page.getByTestId('status-confirmed').waitFor();
  return page;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'accord-page-'));
  await mkdir(ARTIFACTS, { recursive: true });
  const [r, a, b] = await Promise.all([
    RelayProcess.start(join(dir, 'relay'), { logLevel: 'warn' }),
    loadSyncCentrePage(),
    chromium.launch({ executablePath: inject('chromium'), args: ['--no-sandbox'] }),
  ]);
  relay = r;
  assets = a;
  browser = b;
  await enrollDevice(relay, join(dir, 'tab1'), 'Reception', FACILITY);
  await enrollDevice(relay, join(dir, 'tab2'), 'Pharmacy', FACILITY);
  [tab1, tab2] = await Promise.all([
    DeviceAgent.start({ data: join(dir, 'tab1'), http: 0, assets }),
    DeviceAgent.start({ data: join(dir, 'tab2'), http: 0, assets }),
  ]);
});

afterAll(async () => {
  await browser?.close();
  await tab1?.stop();
  await tab2?.stop();
  await relay?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('the Sync Centre page', () => {
  it('loads from the agent, every request going to the agent’s own origin; offline, the outbox shows the change in words', async () => {
    const { context, requests } = await openContext();
    const page = await openPage(context, tab1);
    await page.getByRole('heading', { level: 1, name: 'Needs attention' }).waitFor();
    await page.goto(`${origin(tab1)}/#/environment`);
    await page.getByTestId('env-device').waitFor();
    expect(await page.getByTestId('env-device').textContent()).toBe(
      (await api<{ device: string }>(tab1, 'GET', '/api/status')).device,
    );
    // The network switch, pushed back to the status bar by the stream.
    await page.getByRole('button', { name: 'Take this tablet offline' }).click();
    await page.getByTestId('status-online').filter({ hasText: 'Offline' }).waitFor();
    expect((await api<{ online: boolean }>(tab1, 'GET', '/api/status')).online).toBe(false);
    // Offline, a change waits in the outbox, in words and with its age.
    const waiting = await api<{ id: string }>(tab1, 'POST', '/api/events', {
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
    expect((await api<{ online: boolean }>(tab1, 'GET', '/api/status')).online).toBe(true);
    await page.getByTestId('status-outbox').filter({ hasText: /^0$/ }).waitFor();
    await expect.poll(() => status(tab1, waiting.id)).toBe('accepted');
    await context.close();
    const urls = requests.map((r) => r.url()).filter((u) => !u.startsWith('data:'));
    expect(urls.length).toBeGreaterThan(3);
    expect(urls.filter((u) => !u.startsWith(`${origin(tab1)}/`))).toEqual([]);
    // The page, its script and style, and the live stream all came from the agent.
    expect(urls).toEqual(
      expect.arrayContaining([
        `${origin(tab1)}/app.js`,
        `${origin(tab1)}/app.css`,
        `${origin(tab1)}/api/stream`,
      ]),
    );
  });

  it('updates the status bar and the screens live when another tablet records an event (no reload)', async () => {
    const { context } = await openContext();
    const page = await openPage(context, tab1, '#/patients');
    await page.evaluate(() => {
      (window as unknown as { marker: string }).marker = 'same page';
    });
    const before = Number(await page.getByTestId('status-confirmed').textContent());
    const created = await api<{ id: string }>(tab2, 'POST', '/api/events', {
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
    expect(await page.evaluate(() => (window as unknown as { marker?: string }).marker)).toBe('same page');
    await expect.poll(() => status(tab1, created.id)).toBe('accepted');
    await context.close();
  });

  it('records from the forms with JSON and one Idempotency-Key per action', async () => {
    const { context, requests } = await openContext();
    const page = await openPage(context, tab1, '#/stock');
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

  it('shows a 422 negative stock with its numbers, and after stock arrives on another tablet, Retry conflicted gets it accepted', async () => {
    await api(tab2, 'POST', '/api/events', {
      type: 'StockReceived',
      data: { lot: 'L-1', antigen: 'BCG', quantity: 2, expiry: '2030-01-01' },
    });
    const { context } = await openContext();
    const page = await openPage(context, tab1, '#/attention');
    const consumed = await api<{ id: string }>(tab1, 'POST', '/api/events', {
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
    const me = (await api<{ device: string }>(tab1, 'GET', '/api/status')).device;
    expect(await facts.textContent()).toContain(consumed.id);
    expect(await facts.textContent()).toContain(me);
    expect(await page.locator('main').textContent()).toContain('Rejected with code 422');
    expect(await page.locator('main').textContent()).toContain(
      'Lot L-1 would go to -3: 2 in stock, 5 requested.',
    );
    await page.goBack();
    await card.waitFor();
    await api(tab2, 'POST', '/api/events', {
      type: 'StockReceived',
      data: { lot: 'L-1', antigen: 'BCG', quantity: 10, expiry: '2030-01-01' },
    });
    await page.getByRole('button', { name: 'Retry conflicted' }).click();
    await page.getByRole('status').filter({ hasText: 'Sent again: 1. Skipped: 0.' }).waitFor();
    await card.waitFor({ state: 'detached' });
    await expect.poll(() => status(tab1, consumed.id)).toBe('accepted');
    await page.getByTestId('sync-icon').locator('.mark').waitFor({ state: 'detached' });
    await context.close();
  });

  it('leaves the server version only after confirmation, and the audit trail shows it', async () => {
    const { context } = await openContext();
    const page = await openPage(context, tab1, '#/attention');
    const consumed = await api<{ id: string }>(tab1, 'POST', '/api/events', {
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
    expect(await status(tab1, consumed.id)).toBe('deadletter');
    await card.getByRole('button', { name: 'Leave server version' }).click();
    await dialog.getByLabel('Reason (for the audit trail)').fill('counted again: stock is right');
    await dialog.getByRole('button', { name: 'Yes, leave server version' }).click();
    await card.waitFor({ state: 'detached' });
    expect(await status(tab1, consumed.id)).toBe('resolved');
    await page.goto(`${origin(tab1)}/#/audit`);
    const row = page.getByTestId('audit').getByRole('row').filter({ hasText: consumed.id }).first();
    await row.waitFor();
    expect(await row.textContent()).toContain('Leave server version');
    expect(await row.textContent()).toContain('counted again: stock is right');
    await context.close();
  });

  it('amends a rejected change from the page: the correction supersedes it and is accepted', async () => {
    const { context } = await openContext();
    const page = await openPage(context, tab1, '#/attention');
    const consumed = await api<{ id: string }>(tab1, 'POST', '/api/events', {
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
      tab1,
      'GET',
      `/api/events/${consumed.id}`,
    );
    expect(info.status).toBe('resolved');
    const amend = await api<{ event: { supersedes?: string; data: { quantity: number } } }>(
      tab1,
      'GET',
      `/api/events/${info.resolvedBy ?? 'none'}`,
    );
    expect(amend.event).toMatchObject({ supersedes: consumed.id, data: { quantity: 1 } });
    await expect.poll(() => status(tab1, info.resolvedBy ?? 'none')).toBe('accepted');
    await context.close();
  });

  it('refuses a page of another origin that posts to the agent', async () => {
    const before = (await api<unknown[]>(tab1, 'GET', '/api/events')).length;
    const target = `${origin(tab1)}/api/events`;
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
    expect((await api<unknown[]>(tab1, 'GET', '/api/events')).length).toBe(before);
    // The agent saw the no-cors write and refused it as coming from another page.
    const audit = await api<{ action: string; outcome: string; detail?: { code?: string } }[]>(
      tab1,
      'GET',
      '/api/audit',
    );
    expect(audit.some((a) => a.outcome === 'refused' && a.detail?.code === 'DEVICE_FOREIGN_ORIGIN')).toBe(
      true,
    );
  });

  it('has no serious or critical accessibility violation on each main screen (screenshots saved)', async () => {
    const anyEvent = (await api<{ event: { id: string } }[]>(tab1, 'GET', '/api/events?status=resolved'))[0];
    expect(anyEvent).toBeDefined();
    // A deadletter to show while the screens are scanned.
    await api(tab1, 'POST', '/api/events', {
      type: 'StockConsumed',
      data: { lot: 'L-1', quantity: 999, reason: 'transfer' },
    });
    await expect.poll(async () => (await api<unknown[]>(tab1, 'GET', '/api/deadletters')).length).toBe(1);
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
    const { context } = await openContext();
    const page = await openPage(context, tab1, '#/attention');
    const found: Record<string, string[]> = {};
    for (const screen of screens) {
      await page.goto(`${origin(tab1)}/#/${screen}`);
      await page.getByRole('heading', { level: 1 }).first().waitFor();
      await page.getByText('Loading…').waitFor({ state: 'detached' });
      const result = await new AxeBuilder({ page }).analyze();
      found[screen] = result.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id}: ${v.help}`);
      await page.screenshot({ path: join(ARTIFACTS, `${screen.split('/')[0]!}.png`), fullPage: true });
    }
    expect(found).toEqual(Object.fromEntries(screens.map((s) => [s, []])));
    await context.close();
    // On a phone, too: the list one tap away from the warning mark.
    const phone = await openContext({ width: 390, height: 844 });
    const small = await openPage(phone.context, tab1, '#/outbox');
    await small.getByTestId('sync-icon').click();
    await small.getByRole('heading', { level: 1, name: 'Needs attention' }).waitFor();
    await small.getByTestId('deadletter').first().waitFor();
    await small.screenshot({ path: join(ARTIFACTS, 'attention-phone.png'), fullPage: true });
    await phone.context.close();
  });
});
