// What the page's browser tests share: a real relay process, tablets (in-process DeviceAgents on
// real LevelDB in a temp folder, serving the page `accord` serves), headless Debian chromium, and
// the small helpers every scenario uses (the agent's API as a script calls it, pages, axe scans,
// screenshots). One world per test file, started before its tests and torn down after them.
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AxeBuilder } from '@axe-core/playwright';
import { chromium, type Browser, type BrowserContext, type Page, type Request } from 'playwright-core';
import { afterAll, beforeAll, inject } from 'vitest';
import { DeviceAgent, type StaticAsset } from '@accord/device';
// The relay process and enrollment helpers of the accord command's tests, and the page loader the
// command itself uses: reused rather than copied.
// eslint-disable-next-line @nx/enforce-module-boundaries -- test helpers of the app that wires the agent
import { enrollDevice, RelayProcess, runAccord } from '../../../accord/src/test-support.js';
// eslint-disable-next-line @nx/enforce-module-boundaries -- the same assets `accord device run` serves
import { loadSyncCentrePage } from '../../../accord/src/sync-centre-page.js';

/** Where screenshots go (git-ignored). */
export const ARTIFACTS = fileURLToPath(new URL('../../test-results/', import.meta.url));

/** A tablet's size (10-inch, landscape) and a phone's. */
export const TABLET = { width: 1280, height: 800 } as const;
export const PHONE = { width: 390, height: 844 } as const;

/** Options of {@link pageWorld}. */
export interface PageWorldOptions {
  /** Prefix of the temp folder. */
  readonly prefix: string;
  readonly facility: string;
  /** The tablets, enrolled in this order: a name (in `facility`), or a name in another facility of the relay. */
  readonly tablets: readonly (string | { readonly name: string; readonly facility: string })[];
  /** Sets the relay's admin password (through `accord relay admin-password`) when given. */
  readonly adminPassword?: string;
}

/** A relay, its tablets and a browser, for one test file. */
export class PageWorld {
  readonly #opts: PageWorldOptions;
  #dir = '';
  #relay: RelayProcess | undefined;
  #assets: ReadonlyMap<string, StaticAsset> | undefined;
  #browser: Browser | undefined;
  readonly #tablets: (DeviceAgent | undefined)[] = [];

  constructor(opts: PageWorldOptions) {
    this.#opts = opts;
  }

  /** Starts the relay, enrolls and starts the tablets, launches chromium. */
  async start(): Promise<void> {
    this.#dir = await mkdtemp(join(tmpdir(), this.#opts.prefix));
    await mkdir(ARTIFACTS, { recursive: true });
    const [relay, assets, browser] = await Promise.all([
      RelayProcess.start(this.path('relay'), { logLevel: 'warn' }),
      loadSyncCentrePage(),
      chromium.launch({ executablePath: inject('chromium'), args: ['--no-sandbox'] }),
    ]);
    this.#relay = relay;
    this.#assets = assets;
    this.#browser = browser;
    const password = this.#opts.adminPassword;
    await Promise.all([
      password === undefined ? Promise.resolve() : this.#setAdminPassword(password),
      ...this.#opts.tablets.map((t, i) =>
        typeof t === 'string'
          ? enrollDevice(relay, this.#tabletDir(i), t, this.#opts.facility)
          : enrollDevice(relay, this.#tabletDir(i), t.name, t.facility),
      ),
    ]);
    const agents = await Promise.all(
      this.#opts.tablets.map((_, i) => DeviceAgent.start({ data: this.#tabletDir(i), http: 0, assets })),
    );
    this.#tablets.push(...agents);
  }

  /** Stops everything started, even after a failed start. */
  async stop(): Promise<void> {
    await this.#browser?.close();
    await Promise.all(this.#tablets.map((t) => (t === undefined ? Promise.resolve() : t.stop())));
    await this.#relay?.stop();
    if (this.#dir !== '') await rm(this.#dir, { recursive: true, force: true });
  }

  async #setAdminPassword(password: string): Promise<void> {
    const r = await runAccord(['relay', 'admin-password', '--data', this.relay.data], {
      env: { ACCORD_ADMIN_PASSWORD: password },
    });
    if (r.code !== 0) throw new Error(`accord relay admin-password failed (${r.code})\n${r.stderr}`);
  }

  #tabletDir(i: number): string {
    return this.path(`tablet-${i}`);
  }

  /** A path inside this world's temp folder. */
  path(...parts: string[]): string {
    return join(this.#dir, ...parts);
  }

  get relay(): RelayProcess {
    if (this.#relay === undefined) throw new Error('the page world is not started');
    return this.#relay;
  }

  get browser(): Browser {
    if (this.#browser === undefined) throw new Error('the page world is not started');
    return this.#browser;
  }

  /** Tablet `i` (in the order of `tablets`). */
  tablet(i: number): DeviceAgent {
    const t = this.#tablets[i];
    if (t === undefined) throw new Error(`tablet ${i} is not running`);
    return t;
  }

  /** Stops tablet `i` (its data folder stays). */
  async stopTablet(i: number): Promise<void> {
    await this.#tablets[i]?.stop();
    this.#tablets[i] = undefined;
  }

  /**
   * Starts tablet `i` again on its data folder; on `http` (its previous port, so open pages
   * reconnect by themselves) when given, and without dialing the relay when `dialRelay` is false.
   */
  async startTablet(i: number, opts: { http?: number; dialRelay?: boolean } = {}): Promise<DeviceAgent> {
    if (this.#tablets[i] !== undefined) throw new Error(`tablet ${i} is running`);
    const agent = await DeviceAgent.start({
      data: this.#tabletDir(i),
      http: opts.http ?? 0,
      ...(opts.dialRelay === undefined ? {} : { dialRelay: opts.dialRelay }),
      ...(this.#assets === undefined ? {} : { assets: this.#assets }),
    });
    this.#tablets[i] = agent;
    return agent;
  }

  /** Stops the relay process and copies its data folder to `name` (a snapshot). */
  async snapshotRelay(name: string): Promise<void> {
    await this.relay.stop();
    await cp(this.relay.data, this.path(name), { recursive: true });
    this.#relay = await this.relay.restart();
  }

  /** Stops the relay, replaces its data folder with the snapshot `name`, and starts it again (same port). */
  async restoreRelay(name: string): Promise<void> {
    await this.relay.stop();
    await rm(this.relay.data, { recursive: true, force: true });
    await cp(this.path(name), this.relay.data, { recursive: true });
    this.#relay = await this.relay.restart();
  }

  /** A browser context (tablet-sized unless told) whose every request is recorded; axe needs `newContext()` pages. */
  async openContext(
    viewport: { width: number; height: number } = TABLET,
    extra: { httpCredentials?: { username: string; password: string } } = {},
  ): Promise<{ context: BrowserContext; requests: Request[] }> {
    const context = await this.browser.newContext({ viewport, ...extra });
    context.setDefaultTimeout(20_000);
    const requests: Request[] = [];
    context.on('request', (r) => requests.push(r));
    return { context, requests };
  }

  /** Opens the page of `agent` at `hash` and waits for the first live status. */
  async openPage(context: BrowserContext, agent: DeviceAgent, hash = '#/attention'): Promise<Page> {
    const page = await context.newPage();
    await page.goto(`${origin(agent)}/${hash}`);
    await page.getByTestId('status-confirmed').waitFor();
    return page;
  }
}

/**
 * A {@link PageWorld} started before the calling file's tests and stopped after them (its
 * accessors throw until then).
 */
export function pageWorld(opts: PageWorldOptions): PageWorld {
  const world = new PageWorld(opts);
  beforeAll(() => world.start());
  afterAll(() => world.stop());
  return world;
}

/** `http://127.0.0.1:PORT` of an agent's page and API. */
export function origin(agent: DeviceAgent): string {
  return `http://127.0.0.1:${agent.httpPort}`;
}

/** Calls an agent's API as a script would (no Origin; JSON writes); throws on a 4xx/5xx. */
export async function api<T>(
  agent: DeviceAgent,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(origin(agent) + path, {
    method,
    ...(method === 'POST' ? { headers: { 'content-type': 'application/json' } } : {}),
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** The state of event `id` on `agent` (`pending`, `accepted`, `deadletter`, `resolved`). */
export async function status(agent: DeviceAgent, id: string): Promise<string> {
  return (await api<{ status: string }>(agent, 'GET', `/api/events/${id}`)).status;
}

/** The serious and critical accessibility violations axe finds on `page` (`id: help`). */
export async function seriousViolations(page: Page): Promise<string[]> {
  // Only violations are read: axe skips building the passes and incomplete lists (≈ 12% faster here).
  const result = await new AxeBuilder({ page }).options({ resultTypes: ['violations'] }).analyze();
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
}

/** Saves a full-page screenshot as `test-results/NAME.png`. */
export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/**
 * Scans `page` with axe and saves its screenshot (`NAME.png`) at its own size, then, with `phone`,
 * at a phone's (`NAME-phone.png`) on the same page (resized, not reloaded; `'shot-only'`: the
 * screenshot without a scan), and gives the viewport back; resolves with the serious or critical
 * violations found at each size (none: `{}`).
 */
export async function checkScreen(
  page: Page,
  name: string,
  opts: { phone?: boolean | 'shot-only' } = {},
): Promise<Record<string, string[]>> {
  const found: Record<string, string[]> = {};
  const note = async (label: string, scan: boolean): Promise<void> => {
    const violations = scan ? await seriousViolations(page) : [];
    if (violations.length > 0) found[label] = violations;
    await screenshot(page, label);
  };
  await note(name, true);
  if (opts.phone !== undefined && opts.phone !== false) {
    const own = page.viewportSize() ?? TABLET;
    await page.setViewportSize(PHONE);
    await note(`${name}-phone`, opts.phone === true);
    await page.setViewportSize(own);
  }
  return found;
}

/** Marks the page's window, so a test can tell later that it was never reloaded. */
export async function markWindow(page: Page): Promise<void> {
  await page.evaluate(() => {
    (window as unknown as { marker: string }).marker = 'same page';
  });
}

/** True when the window marked by {@link markWindow} is still the one shown. */
export async function sameWindow(page: Page): Promise<boolean> {
  return (await page.evaluate(() => (window as unknown as { marker?: string }).marker)) === 'same page';
}
