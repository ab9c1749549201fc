// Resolving what the relay rejected, and re-submitting what it lost, from the page (issue #10): a
// 409 edited on two tablets and resolved with Keep mine, Keep theirs behind the admin password, a
// stock correction and the relay's own admin page, a 422 that stock received on the page clears by
// itself, and the relay's folder replaced by an older copy (last: it restarts the relay from a
// backup). A real relay process with an admin password, tablets on real LevelDB, headless chromium;
// one world for the whole file, since starting one costs seconds.
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import type { DeviceAgent } from '@accord/device';
import { en } from './strings.js';
import {
  api,
  checkScreen,
  markWindow,
  pageWorld,
  sameWindow,
  screenshot,
  status,
} from './testing/page-harness.js';

const PASSWORD = 'clinic admin 42';
const FACILITY = 'clinic-resolve';
const world = pageWorld({
  prefix: 'accord-resolve-',
  facility: FACILITY,
  // The store room's tablet is alone in its facility: when the relay loses its events, no other
  // tablet can bring them back by syncing, only its own re-submit.
  tablets: ['Front desk', 'Ward', { name: 'Store', facility: 'clinic-store' }],
  adminPassword: PASSWORD,
});
const STORE = 2;
const one = (): DeviceAgent => world.tablet(0);
const two = (): DeviceAgent => world.tablet(1);
const store = (): DeviceAgent => world.tablet(STORE);

interface Listed {
  readonly event: { readonly id: string; readonly type: string; readonly data: Record<string, unknown> };
  readonly status: string;
}

/** Records on `agent` through its API and returns the new event's id. */
async function record(agent: DeviceAgent, type: string, data: Record<string, unknown>): Promise<string> {
  return (await api<{ id: string }>(agent, 'POST', '/api/events', { type, data })).id;
}

/** Resolves once `check` holds; polled (the agents are in this process, their state is not pushed here). */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  await expect.poll(check, { timeout: timeoutMs, interval: 50, message: what }).toBe(true);
}

/** The event of `type` on `agent` whose data matches `data`, once there is one (its id). */
async function findEvent(agent: DeviceAgent, type: string, data: Record<string, unknown>): Promise<string> {
  let id: string | undefined;
  await until(`a ${type} like ${JSON.stringify(data)}`, async () => {
    const all = await api<Listed[]>(agent, 'GET', '/api/events');
    id = all.find(
      (e) =>
        e.event.type === type &&
        Object.entries(data).every(([k, v]) => JSON.stringify(e.event.data[k]) === JSON.stringify(v)),
    )?.event.id;
    return id !== undefined;
  });
  return id!;
}

const registration = (patientId: string, nationalId: string, givenName: string, familyName: string) => ({
  patientId,
  nationalId,
  givenName,
  familyName,
  birthDate: '2025-01-05',
  sex: 'female',
});

interface Day {
  readonly day: string;
  readonly device: number;
  readonly relay: number;
  readonly match: boolean;
}

/** Registers patient `n` on `agent` and waits for the relay's acceptance. */
async function registerAccepted(agent: DeviceAgent, n: number): Promise<string> {
  const id = await record(
    agent,
    'PatientRegistered',
    registration(`P-s${n}`, `NID-s${n}`, 'Neema', `Family${n}`),
  );
  await until(`registration ${n} accepted`, async () => (await status(agent, id)) === 'accepted');
  return id;
}

/** Presses Compare and resolves with the summary sentence it shows. */
async function compare(page: Page): Promise<string> {
  const summary = page.getByTestId('integrity-summary');
  const answered = page.waitForResponse((r) => r.url().includes('/api/integrity'));
  await page.getByRole('button', { name: 'Compare with the server' }).click();
  // The page clears the old answer when asked again: the summary seen after this answer is its own.
  await answered;
  await summary.waitFor();
  return (await summary.textContent()) ?? '';
}

/** Changes a patient's family name from the Patients screen's edit form. */
async function editFamilyName(page: Page, who: string, familyName: string): Promise<void> {
  await page.getByRole('link', { name: 'Patients' }).click();
  await page.getByRole('button', { name: `Edit details: ${who}` }).click();
  const form = page.getByRole('form', { name: `Edit the details of ${who}` });
  await form.getByLabel('Family name').fill(familyName);
  await form.getByRole('button', { name: 'Save changes' }).click();
  await form.waitFor({ state: 'detached' });
  await page.getByRole('status').filter({ hasText: 'Saved on this tablet.' }).waitFor();
}

/** The Needs attention card of event `id` on `page`. */
const card = (page: Page, id: string) => page.locator(`[data-testid="deadletter"][data-id="${id}"]`);

describe('resolving rejected changes from the page', () => {
  it('the same field edited on two tablets: the 409 shows on both, Keep mine on one resolves it live on the other', async () => {
    const reg = await record(one(), 'PatientRegistered', registration('P-409', 'NID-409', 'Amina', 'Kamau'));
    await until(
      'the registration accepted on tablet 2',
      async () => (await status(two(), reg)) === 'accepted',
    );
    const ctx1 = await world.openContext();
    const ctx2 = await world.openContext();
    const page1 = await world.openPage(ctx1.context, one(), '#/patients');
    const page2 = await world.openPage(ctx2.context, two(), '#/environment');

    // Tablet 2 goes offline with its page's switch; both tablets change the family name.
    await page2.getByRole('button', { name: 'Take this tablet offline' }).click();
    await page2.getByTestId('status-online').filter({ hasText: 'Offline' }).waitFor();
    await editFamilyName(page1, 'Amina Kamau', 'Otieno');
    const theirs = await findEvent(one(), 'PatientDemographicsUpdated', {
      changes: { familyName: 'Otieno' },
    });
    await until('tablet 1’s change accepted', async () => (await status(one(), theirs)) === 'accepted');
    await editFamilyName(page2, 'Amina Kamau', 'Odhiambo');
    const mine = await findEvent(two(), 'PatientDemographicsUpdated', {
      changes: { familyName: 'Odhiambo' },
    });
    expect(await status(two(), mine)).toBe('pending');

    // Back online: the relay refuses tablet 2's change (stale basis) and both pages show the 409.
    await page2.getByRole('link', { name: 'Environment' }).click();
    await page2.getByRole('button', { name: 'Bring this tablet back online' }).click();
    await page1.getByRole('link', { name: 'Needs attention' }).first().click();
    await page2.getByRole('link', { name: 'Needs attention' }).first().click();
    await markWindow(page1);
    for (const page of [page1, page2]) {
      const c = card(page, mine);
      await c.waitFor();
      expect(await page.getByTestId('code-409').getByRole('heading', { level: 2 }).textContent()).toBe(
        'Code 409: someone else changed the same thing first',
      );
      // Mine against the confirmed value, field by field.
      const row = c.getByTestId('conflict').locator('tr[data-field="familyName"]');
      expect(await row.getByTestId('mine').textContent()).toBe('Odhiambo');
      expect(await row.getByTestId('confirmed').textContent()).toBe('Otieno');
      expect(await c.getByRole('button', { name: 'Keep mine' }).isVisible()).toBe(true);
      expect(await c.getByRole('button', { name: 'Keep theirs' }).isVisible()).toBe(true);
      expect(await c.getByRole('button', { name: 'Edit and send again' }).isVisible()).toBe(true);
      // A retry would meet the same conflict: not offered on a 409.
      expect(await c.getByRole('button', { name: 'Retry', exact: true }).count()).toBe(0);
    }
    expect(await checkScreen(page2, 'attention-409', { phone: true })).toEqual({});

    // Keep mine on tablet 2: one tap, an amend on the current confirmed basis.
    await card(page2, mine).getByRole('button', { name: 'Keep mine' }).click();
    await page2
      .getByRole('status')
      .filter({ hasText: 'Your values were recorded again on top of the confirmed version and sent.' })
      .waitFor();
    // Tablet 1's page, live: the 409 leaves Needs attention and the confirmed name is mine.
    await card(page1, mine).waitFor({ state: 'detached' });
    await page1.getByRole('link', { name: 'Patients' }).click();
    await page1.getByRole('cell', { name: 'Amina Odhiambo', exact: true }).waitFor();
    expect(await sameWindow(page1)).toBe(true);

    const resolved = await api<{ status: string; resolvedBy?: string | null }>(
      one(),
      'GET',
      `/api/events/${mine}`,
    );
    expect(resolved.status).toBe('resolved');
    // The list shows the tentative name as soon as tablet 1 holds the amend; its verdict may come after.
    await until(
      'the amend accepted on tablet 1',
      async () => (await status(one(), resolved.resolvedBy ?? 'none')) === 'accepted',
    );
    const amend = await api<{ status: string; event: { supersedes?: string; data: unknown } }>(
      one(),
      'GET',
      `/api/events/${resolved.resolvedBy ?? 'none'}`,
    );
    expect(amend).toMatchObject({
      status: 'accepted',
      event: { supersedes: mine, data: { patientId: 'P-409', changes: { familyName: 'Odhiambo' } } },
    });

    // Inspect tells the story: the 409, and what resolved it.
    await page1.goto(`${page1.url().split('#')[0]}#/inspect/${mine}`);
    await page1.getByTestId('inspect-status').filter({ hasText: 'Resolved' }).waitFor();
    const verdicts = page1.getByTestId('verdicts').getByRole('listitem');
    expect(await verdicts.last().textContent()).toContain(
      'Rejected with code 409: someone else changed the same thing first',
    );
    expect(await verdicts.last().textContent()).toContain('Changed by someone else first (RULE_STALE_BASIS)');
    expect(await page1.getByTestId('resolved-by').textContent()).toBe(resolved.resolvedBy);
    expect(await checkScreen(page1, 'inspect-resolved')).toEqual({});
    await ctx1.context.close();
    await ctx2.context.close();
  });

  it('Keep theirs on a clinical record needs the admin password: a wrong one is refused (403) and nothing is discarded', async () => {
    // Tablet 2, offline, registers a national id that tablet 1 registers meanwhile: a 409.
    await api(two(), 'POST', '/api/network', { online: false });
    const mine = await record(
      two(),
      'PatientRegistered',
      registration('P-dup-2', 'NID-dup', 'Grace', 'Wanjiru'),
    );
    const theirs = await record(
      one(),
      'PatientRegistered',
      registration('P-dup-1', 'NID-dup', 'Grace', 'Njeri'),
    );
    await until('tablet 1’s registration accepted', async () => (await status(one(), theirs)) === 'accepted');
    await api(two(), 'POST', '/api/network', { online: true });
    await until('the 409 on tablet 2', async () => (await status(two(), mine)) === 'deadletter');

    const { context } = await world.openContext();
    const page = await world.openPage(context, two(), '#/attention');
    const c = card(page, mine);
    const row = c.getByTestId('conflict').locator('tr[data-field="familyName"]');
    await row.getByTestId('confirmed').filter({ hasText: 'Njeri' }).waitFor();
    expect(await row.getByTestId('mine').textContent()).toBe('Wanjiru');
    expect(await c.textContent()).toContain('National id already registered (RULE_DUPLICATE_NATIONAL_ID)');
    // Kept as it is, it would be refused again: no Keep mine for a duplicate national id.
    expect(await c.getByRole('button', { name: 'Keep mine' }).count()).toBe(0);

    await c.getByRole('button', { name: 'Keep theirs' }).click();
    const dialog = page.getByRole('dialog', { name: 'Leave the server’s version?' });
    await dialog.waitFor();
    const password = dialog.getByLabel('Admin password');
    expect(await password.getAttribute('type')).toBe('password');
    expect(await password.evaluate((el) => (el as HTMLInputElement).required)).toBe(true);
    expect(await dialog.textContent()).toContain('This is a clinical record');
    expect(await checkScreen(page, 'keep-theirs-dialog')).toEqual({});

    await dialog.getByLabel('Reason (for the audit trail)').fill('registered twice');
    await password.fill('not the password');
    await dialog.getByRole('button', { name: 'Yes, leave server version' }).click();
    const refusal = dialog.getByTestId('discard-error');
    await refusal.waitFor();
    expect(await refusal.textContent()).toBe(
      'Not done (DEVICE_ELEVATION_REFUSED): The server refused the admin password. Nothing was changed.',
    );
    // Nothing was discarded: still a deadletter, no discard event, the password field emptied.
    expect(await status(two(), mine)).toBe('deadletter');
    const discards = (await api<Listed[]>(two(), 'GET', '/api/events')).filter(
      (e) => e.event.type === 'DeadletterDiscarded' && e.event.data['target'] === mine,
    );
    expect(discards).toEqual([]);
    expect(await password.inputValue()).toBe('');

    await password.fill(PASSWORD);
    await dialog.getByRole('button', { name: 'Yes, leave server version' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('status').filter({ hasText: 'Your change was set aside' }).waitFor();
    await c.waitFor({ state: 'detached' });
    await until('the registration resolved', async () => (await status(two(), mine)) === 'resolved');

    // The confirmed registration is what the tablet shows; the audit trail has both attempts.
    await page.getByRole('link', { name: 'Patients' }).click();
    const patient = page.getByTestId('patients').locator('tr[data-patient="P-dup-1"]');
    await patient.waitFor();
    expect(await patient.textContent()).toContain('Grace Njeri');
    expect(await page.getByTestId('patients').locator('tr[data-patient="P-dup-2"]').count()).toBe(0);
    await page.getByRole('link', { name: 'Audit trail' }).click();
    const rows = page.getByTestId('audit').getByRole('row');
    await rows
      .filter({ hasText: mine })
      .filter({ hasText: 'Leave server version' })
      .filter({ hasText: 'recorded' })
      .first()
      .waitFor();
    expect(
      await rows
        .filter({ hasText: mine })
        .filter({ hasText: 'refused' })
        .filter({ hasText: 'DEVICE_ELEVATION_REFUSED' })
        .count(),
    ).toBe(1);
    expect(
      await rows.filter({ hasText: 'Admin password' }).filter({ hasText: 'done' }).count(),
    ).toBeGreaterThan(0);
    expect(await page.locator('main').textContent()).not.toContain(PASSWORD);
    await context.close();
  });

  it('a stock correction below zero shows its 422, and the relay’s admin page counts it by code', async () => {
    await record(one(), 'StockReceived', { lot: 'ADJ-1', antigen: 'BCG', quantity: 2, expiry: '2030-06-30' });
    const { context } = await world.openContext();
    const page = await world.openPage(context, one(), '#/adjust');
    const form = page.getByRole('form', { name: 'Adjust stock' });
    await form.getByLabel('Lot').selectOption('ADJ-1');
    await form.getByLabel('Correction').selectOption('remove');
    await form.getByLabel('Doses').fill('5');
    await form.getByLabel('Reason').selectOption('broken');
    await form.getByLabel('Details').fill('vials dropped');
    expect(await form.getByTestId('adjust-preview').textContent()).toBe(
      'Lot ADJ-1: 2 in stock, -3 after this correction. This would take the lot below zero: the server will refuse it.',
    );
    expect(await checkScreen(page, 'adjust', { phone: true })).toEqual({});
    await form.getByRole('button', { name: 'Record correction' }).click();
    // Saved, with the agent's own warning that the relay will probably refuse it.
    await page
      .getByRole('status')
      .filter({ hasText: /^Saved/ })
      .waitFor();
    const id = await findEvent(one(), 'StockAdjusted', {
      lot: 'ADJ-1',
      delta: -5,
      reason: 'broken or spoiled: vials dropped',
    });
    await page.getByRole('link', { name: 'Needs attention' }).first().click();
    expect(await card(page, id).getByTestId('numbers').textContent()).toBe(
      'Lot ADJ-1 would go to -3: 2 in stock, 5 requested.',
    );
    await context.close();

    // The relay's own admin page (HTTP Basic, user admin) in the browser.
    const admin = await world.openContext(undefined, {
      httpCredentials: { username: 'admin', password: PASSWORD },
    });
    const adminPage = await admin.context.newPage();
    const res = await adminPage.goto(`http://127.0.0.1:${world.relay.port}/admin/`);
    expect(res?.status()).toBe(200);
    await adminPage.getByRole('heading', { level: 1, name: 'Accord relay: administration' }).waitFor();
    const facility = adminPage.getByRole('region', { name: FACILITY });
    // The devices table names each tablet, connected now (the by-device count rows come after it).
    for (const [device, name] of [
      [one(), 'Front desk'],
      [two(), 'Ward'],
    ] as const) {
      const row = await facility.locator(`tr[data-device="${device.deviceId}"]`).first().textContent();
      expect(row).toContain(name);
      expect(row).toContain('connected now');
    }
    const byCode = facility.locator('tr[data-code="422"]');
    expect(await byCode.textContent()).toContain('422 breaks a business rule');
    expect(await byCode.textContent()).toContain('RULE_NEGATIVE_STOCK');
    // The relay's page, not one of the Sync Centre's: scanned once, its phone layout shot.
    expect(await checkScreen(adminPage, 'relay-admin', { phone: 'shot-only' })).toEqual({});
    await admin.context.close();
  });

  it('a vaccination that would take a lot below zero shows its 422 numbers; stock received on the page gets it accepted without a retry', async () => {
    // One dose in lot V-1, used by a first vaccination; the second one has none left.
    await record(one(), 'StockReceived', { lot: 'V-1', antigen: 'BCG', quantity: 1, expiry: '2030-06-30' });
    await record(one(), 'PatientRegistered', registration('P-v1', 'NID-v1', 'Baraka', 'Mwangi'));
    await record(one(), 'PatientRegistered', registration('P-v2', 'NID-v2', 'Zawadi', 'Ouma'));
    const first = await record(one(), 'VaccinationAdministered', {
      patientId: 'P-v1',
      antigen: 'BCG',
      dose: 1,
      lot: 'V-1',
      date: new Date().toISOString().slice(0, 10),
    });
    await until('the first vaccination accepted', async () => (await status(one(), first)) === 'accepted');

    const { context } = await world.openContext();
    const page = await world.openPage(context, one(), '#/vaccinate');
    const form = page.getByRole('form', { name: 'Record a vaccination' });
    await form.getByLabel('Patient').selectOption('P-v2');
    await form.getByLabel('Vaccine').selectOption('BCG');
    await form.getByLabel('Lot').fill('V-1');
    await form.getByRole('button', { name: 'Record vaccination' }).click();
    await page
      .getByRole('status')
      .filter({ hasText: /^Saved/ })
      .waitFor();
    const id = await findEvent(one(), 'VaccinationAdministered', { patientId: 'P-v2', lot: 'V-1' });

    await page.getByRole('link', { name: 'Needs attention' }).first().click();
    const c = card(page, id);
    expect(await c.getByTestId('numbers').textContent()).toBe(
      'Lot V-1 would go to -1: 0 in stock, 1 requested.',
    );
    expect(await c.getByTestId('heals').textContent()).toBe(
      'The server accepts it by itself, with no retry, once lot V-1 has enough stock.',
    );
    await c.getByRole('link', { name: 'Inspect contents' }).click();
    await page.getByTestId('inspect-status').filter({ hasText: 'Needs attention' }).waitFor();

    // Stock arrives, recorded on the page.
    await page.getByRole('link', { name: 'Stock', exact: true }).click();
    const receive = page.getByRole('form', { name: 'Receive stock' });
    await receive.getByLabel('Lot').fill('V-1');
    await receive.getByLabel('Vaccine').selectOption('BCG');
    await receive.getByLabel('Doses').fill('5');
    await receive.getByLabel('Expiry date').fill('2030-06-30');
    await receive.getByRole('button', { name: 'Receive stock' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved on this tablet.' }).waitFor();
    // 1 + 5 received, 1 given; the rejected dose is taken too once the relay accepts it (which can
    // happen before this row is first drawn on a busy machine).
    await page
      .locator('tr[data-lot="V-1"]')
      .getByTestId('balance')
      .filter({ hasText: /^[45]$/ })
      .waitFor();

    // Nobody presses Retry: the relay judges the 422 again once the stock is confirmed (issue #10).
    await page.goBack();
    const accepted = page.getByTestId('inspect-status').filter({ hasText: 'Accepted' });
    try {
      await accepted.waitFor({ timeout: 20_000 });
    } catch {
      throw new Error(
        `the 422 of ${id} was not accepted within 20 s of the stock arriving, without a retry ` +
          `(status ${await status(one(), id)})`,
      );
    }
    const verdicts = page.getByTestId('verdicts').getByRole('listitem');
    expect(await verdicts.last().textContent()).toContain('Accepted, confirmed number');
    const retries = (await api<Listed[]>(one(), 'GET', '/api/events')).filter(
      (e) => e.event.type === 'RetryRequested' && e.event.data['target'] === id,
    );
    expect(retries).toEqual([]);
    // Both doses now come out of the lot.
    await page.getByRole('link', { name: 'Stock', exact: true }).click();
    await page.locator('tr[data-lot="V-1"]').getByTestId('balance').filter({ hasText: /^4$/ }).waitFor();
    await context.close();
  });

  it('Environment shows the version and the data folder with its size, or today’s view on an older agent', async () => {
    const res = await fetch(`http://127.0.0.1:${one().httpPort}/api/environment`);
    const { context } = await world.openContext();
    const page = await world.openPage(context, one(), '#/environment');
    await page.getByTestId('env-device').waitFor();
    expect(await page.getByTestId('env-device').textContent()).toBe(one().deviceId);
    if (res.status === 200) {
      const env = (await res.json()) as { version: string; dataFolder: string; dataFolderBytes: number };
      await page.getByTestId('env-version').filter({ hasText: env.version }).waitFor();
      expect(await page.getByTestId('env-data-folder').textContent()).toBe(env.dataFolder);
      expect(await page.getByTestId('env-data-size').textContent()).toMatch(/^\d+(\.\d)? (B|kB|MB|GB|TB)$/);
    } else {
      // An agent without the route (this branch's): the page says so and shows what it showed before.
      expect(res.status).toBe(404);
      await page.getByTestId('env-older').waitFor();
      expect(await page.getByTestId('env-version').count()).toBe(0);
    }
    expect(await page.locator('main').textContent()).toContain('Sync Centre version');
    // Scanned with the main screens (page.int.test.ts); the shot shows this tablet's variant.
    await screenshot(page, 'environment-details');
    await context.close();
  });

  it('after the relay’s folder is replaced by an older copy, shows per day what it lacks and re-submits it with the admin password', async () => {
    await registerAccepted(store(), 1);
    await world.snapshotRelay('relay-backup');
    const later = [await registerAccepted(store(), 2), await registerAccepted(store(), 3)];
    await world.stopTablet(STORE);
    await world.restoreRelay('relay-backup');
    // The store's tablet talks to the relay over HTTP only for now: no sync brings the events back meanwhile.
    const tablet = await world.startTablet(STORE, { dialRelay: false });
    const before = (await api<{ days: Day[] }>(tablet, 'GET', '/api/integrity')).days;
    const lacking = before.reduce((n, d) => n + d.device - d.relay, 0);
    expect(lacking).toBeGreaterThanOrEqual(later.length);
    // One day, unless the test ran across midnight UTC.
    const differing = before.filter((d) => !d.match);
    expect(differing.length).toBeGreaterThan(0);

    const { context } = await world.openContext();
    const page = await world.openPage(context, tablet, '#/integrity');
    expect(await compare(page)).toBe(en.integrity.someDiffer(differing.length));
    for (const d of differing) {
      const cells = await page
        .getByTestId('integrity-days')
        .locator(`tr[data-day="${d.day}"]`)
        .getByRole('cell')
        .allTextContents();
      expect(cells).toEqual([String(d.device), String(d.relay), 'differs']);
    }

    await page.getByLabel('Admin password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Re-submit to server' }).click();
    const progress = page.getByTestId('resubmit-progress').getByRole('listitem');
    await progress.filter({ hasText: /^Done:/ }).waitFor();
    expect(await progress.allTextContents()).toEqual([
      'Comparing…',
      'Checking the admin password…',
      ...differing.map((d, i) => `Re-submitting: day ${i + 1} of ${differing.length} (${d.day})…`),
      en.integrity.resubmitted(lacking, differing.length),
    ]);
    const perDay = await page.getByTestId('resubmit-days').getByRole('row').allTextContents();
    expect(perDay.slice(1)).toEqual(
      differing.map((d) => `${d.day}${d.device - d.relay}${d.device - d.relay}`),
    );
    expect(await page.getByLabel('Admin password').inputValue()).toBe('');
    // Every part of the screen is shown now: the comparison, the progress and the per-day counts.
    expect(await checkScreen(page, 'integrity', { phone: true })).toEqual({});
    const audit = await api<{ action: string; outcome: string }[]>(tablet, 'GET', '/api/audit');
    expect(audit.filter((a) => a.action === 'resubmit').map((a) => a.outcome)).toEqual(
      differing.map(() => 'done'),
    );

    // Back on its relay link (same port: the open page reconnects by itself), the tablet's sync
    // carries them: the page's comparison shows every day the same again.
    const port = tablet.httpPort;
    await world.stopTablet(STORE);
    await world.startTablet(STORE, { http: port });
    const deadline = Date.now() + 20_000;
    let summary = '';
    while (!summary.startsWith('The server holds the same changes')) {
      if (Date.now() > deadline) throw new Error(`the relay never held the re-submitted events: ${summary}`);
      summary = await compare(page);
    }
    expect(summary).toBe(en.integrity.allMatch(before.length));
    await context.close();
  });
});
