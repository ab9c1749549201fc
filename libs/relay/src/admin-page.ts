import { createHash } from 'node:crypto';
import type { DeviceId, FacilityId } from '@accord/protocol';
import type { OpenDeadletter } from './adjudicator.js';

/** One enrolled device as the admin page shows it. */
export interface AdminPageDevice {
  readonly id: DeviceId;
  readonly name: string;
  readonly revoked: boolean;
  /** ISO 8601 time of enrollment. */
  readonly enrolled: string;
  /** ISO 8601 time of revocation, once revoked. */
  readonly revokedAt?: string;
  /** Authenticated sessions open now. */
  readonly sessions: number;
  /** When a session last began or ended (ms); absent: none since the relay started. */
  readonly lastContact?: number;
}

/** The open deadletters of a loaded facility, counted by code and by author. */
export interface AdminPageDeadletters {
  readonly total: number;
  /** By rejection code, most first; `rules` lists the rule ids seen under that code, sorted. */
  readonly byCode: readonly {
    readonly code: number;
    readonly rules: readonly string[];
    readonly count: number;
  }[];
  /** By the device that signed the rejected event, most first; `device` undefined when unknown. */
  readonly byDevice: readonly { readonly device: DeviceId | undefined; readonly count: number }[];
}

/** One facility as the admin page shows it. */
export interface AdminPageFacility {
  readonly facility: FacilityId;
  readonly rosterVersion: number;
  readonly devices: readonly AdminPageDevice[];
  /** Undefined when the facility is not loaded: the page never loads one (see the README). */
  readonly deadletters: AdminPageDeadletters | undefined;
}

/** Everything the admin page shows: a plain snapshot, so rendering is a pure function. */
export interface AdminPageSnapshot {
  readonly relay: DeviceId;
  /** When the snapshot was taken (ms); relative times count from here. */
  readonly now: number;
  /** When the relay process started (ms): last contact is known since then only. */
  readonly startedAt: number;
  readonly facilities: readonly AdminPageFacility[];
}

/** Counts open deadletters by code and by device (both most first, ties in a stable order). */
export function summarizeDeadletters(open: readonly OpenDeadletter[]): AdminPageDeadletters {
  const byCode = new Map<number, { rules: Set<string>; count: number }>();
  const byDevice = new Map<DeviceId | undefined, number>();
  for (const d of open) {
    const entry = byCode.get(d.code) ?? { rules: new Set<string>(), count: 0 };
    entry.rules.add(d.rule);
    entry.count++;
    byCode.set(d.code, entry);
    byDevice.set(d.device, (byDevice.get(d.device) ?? 0) + 1);
  }
  return {
    total: open.length,
    byCode: [...byCode]
      .map(([code, e]) => ({ code, rules: [...e.rules].sort(), count: e.count }))
      .sort((a, b) => b.count - a.count || a.code - b.code),
    byDevice: [...byDevice]
      .map(([device, count]) => ({ device, count }))
      .sort((a, b) => b.count - a.count || (a.device ?? '~').localeCompare(b.device ?? '~')),
  };
}

/** HTML-escapes text for element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Markup that is already safe; anything else interpolated into {@link markup} is escaped. */
class SafeHtml {
  constructor(readonly html: string) {}
}

type HtmlValue = SafeHtml | string | number | undefined | readonly HtmlValue[];

/**
 * A template whose interpolations are escaped unless they are {@link SafeHtml}: escaping by default.
 * Not named `html` so that Prettier leaves the markup as written (the style's hash depends on it).
 */
function markup(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

function render(v: HtmlValue): string {
  if (v instanceof SafeHtml) return v.html;
  if (v === undefined) return '';
  if (typeof v === 'number') return escapeHtml(String(v));
  if (typeof v === 'string') return escapeHtml(v);
  return v.map(render).join('');
}

/** The page's only style sheet; the Content-Security-Policy allows exactly this text by its hash. */
const STYLE = `
body{font:16px/1.4 system-ui,sans-serif;margin:0 auto;padding:1rem;max-width:72rem;color:#111;background:#fff}
h1{font-size:1.4rem;margin:0 0 .25rem}h2{font-size:1.2rem;margin:1.5rem 0 .25rem}h3{font-size:1rem;margin:1rem 0 .25rem}
p{margin:.25rem 0}.muted{color:#555}code{overflow-wrap:anywhere;font-size:.85em}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ccc;vertical-align:top;overflow-wrap:anywhere}
th{background:#f2f2f2}.revoked{color:#8a1c1c;font-weight:600}.ok{color:#1c5e20}.warn{color:#8a4b00;font-weight:600}
section{border-top:2px solid #333;margin-top:1.5rem}
@media (max-width:40rem){thead{display:none}table,tbody,tr,td{display:block;width:auto}tr{border:1px solid #ccc;margin:.5rem 0;padding:.25rem}td{border:0;padding:.15rem .25rem}td::before{content:attr(data-label) ": ";font-weight:600}}
`;

/** The `Content-Security-Policy` of the admin page: no script, no fetch, no framing, one hashed style. */
export const ADMIN_PAGE_CSP =
  `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; ` +
  `frame-ancestors 'none'; base-uri 'none'; form-action 'none'`;

/** Headers the admin page is served with, besides `Cache-Control: no-store` (the front sets it). */
export const ADMIN_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': ADMIN_PAGE_CSP,
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

/** Words for each rejection code: a code is never shown alone. */
const CODE_WORDS: Readonly<Record<number, string>> = {
  403: 'refused (roster, forgery or elevation)',
  404: 'waiting for or missing a dependency',
  409: 'conflict with a confirmed change',
  410: 'record merged or gone',
  422: 'breaks a business rule',
  500: 'invalid or could not be judged',
};

/**
 * Renders the relay's admin page: facilities, their devices (name, id, last contact, revoked or
 * not) and open deadletters by code and by device.
 *
 * @remarks Pure: the same snapshot gives the same bytes. Every value from the snapshot is
 * HTML-escaped (device names are chosen by whoever enrolls); the page has no script and no
 * external resource, so {@link ADMIN_PAGE_CSP} holds it.
 */
export function renderAdminPage(snapshot: AdminPageSnapshot): string {
  const { now } = snapshot;
  const page = markup`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Accord relay: administration</title>
<style>${new SafeHtml(STYLE)}</style>
</head>
<body>
<header>
<h1>Accord relay: administration</h1>
<p class="muted">Relay <code>${snapshot.relay}</code> · page taken ${time(now, now)} · last contact known since the relay started ${time(snapshot.startedAt, now)}</p>
<p>${plural(snapshot.facilities.length, 'facility', 'facilities')}</p>
</header>
<main>
${snapshot.facilities.length === 0 ? markup`<p>No facility yet: enroll a device (<code>accord relay enroll</code>).</p>` : ''}
${snapshot.facilities.map((f) => facility(f, now))}
</main>
</body>
</html>
`;
  return page.html;
}

function facility(f: AdminPageFacility, now: number): SafeHtml {
  const revoked = f.devices.filter((d) => d.revoked).length;
  const connected = f.devices.filter((d) => d.sessions > 0).length;
  const names = new Map(f.devices.map((d) => [d.id, d.name]));
  const devices =
    f.devices.length === 0
      ? markup`<p class="muted">No device enrolled.</p>`
      : markup`<table>
<thead><tr><th scope="col">Name</th><th scope="col">Device id</th><th scope="col">Last contact</th><th scope="col">Status</th></tr></thead>
<tbody>
${f.devices.map((d) => device(d, now))}</tbody>
</table>`;
  return markup`<section aria-labelledby="f-${f.facility}">
<h2 id="f-${f.facility}">${f.facility}</h2>
<p>${plural(f.devices.length, 'device', 'devices')} (${revoked} revoked, ${connected} connected now) · roster version ${f.rosterVersion}</p>
<h3>Devices</h3>
${devices}
<h3>Open deadletters</h3>
${deadletters(f.deadletters, names)}
</section>
`;
}

function device(d: AdminPageDevice, now: number): SafeHtml {
  const contact =
    d.sessions > 0
      ? markup`<span class="ok">connected now</span> (since ${time(d.lastContact, now)})`
      : d.lastContact === undefined
        ? markup`<span class="muted">none since the relay started</span>`
        : time(d.lastContact, now);
  const revokedAt = d.revokedAt === undefined ? '' : markup` ${isoTime(d.revokedAt)}`;
  const status = d.revoked
    ? markup`<span class="revoked">revoked</span>${revokedAt}`
    : markup`active, enrolled ${isoTime(d.enrolled)}`;
  return markup`<tr data-device="${d.id}"><td data-label="Name">${d.name}</td><td data-label="Device id"><code>${d.id}</code></td><td data-label="Last contact">${contact}</td><td data-label="Status">${status}</td></tr>
`;
}

function deadletters(dl: AdminPageDeadletters | undefined, names: ReadonlyMap<DeviceId, string>): SafeHtml {
  if (dl === undefined) {
    return markup`<p class="muted">Not loaded: the relay loads a facility when one of its devices connects and unloads it when idle; this page does not load it. Counts show once a device connects.</p>`;
  }
  if (dl.total === 0) return markup`<p class="ok">None: nothing needs attention.</p>`;
  const byCode = dl.byCode.map(
    (c) =>
      markup`<tr data-code="${c.code}"><td data-label="Code">${c.code} ${CODE_WORDS[c.code] ?? 'rejected'}</td><td data-label="Rules">${c.rules.join(', ')}</td><td data-label="Open">${c.count}</td></tr>
`,
  );
  const byDevice = dl.byDevice.map(
    (d) =>
      markup`<tr data-device="${d.device ?? ''}"><td data-label="Device">${deviceLabel(d.device, names)}</td><td data-label="Open">${d.count}</td></tr>
`,
  );
  return markup`<p class="warn">${plural(dl.total, 'open deadletter', 'open deadletters')}</p>
<table>
<thead><tr><th scope="col">Code</th><th scope="col">Rules</th><th scope="col">Open</th></tr></thead>
<tbody>
${byCode}</tbody>
</table>
<table>
<thead><tr><th scope="col">Device</th><th scope="col">Open</th></tr></thead>
<tbody>
${byDevice}</tbody>
</table>`;
}

function deviceLabel(device: DeviceId | undefined, names: ReadonlyMap<DeviceId, string>): SafeHtml {
  if (device === undefined)
    return markup`<span class="muted">unknown (the relay holds the verdict, not the event)</span>`;
  const name = names.get(device);
  return name === undefined
    ? markup`<code>${device}</code> <span class="muted">(not in the roster)</span>`
    : markup`${name} <code>${device}</code>`;
}

function time(ms: number | undefined, now: number): SafeHtml {
  if (ms === undefined || !Number.isFinite(ms)) return markup`unknown`;
  const iso = new Date(ms).toISOString();
  return markup`<time datetime="${iso}">${iso.slice(0, 16).replace('T', ' ')} UTC</time> (${ago(now - ms)})`;
}

function isoTime(iso: string): SafeHtml {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return markup`${iso}`;
  const clean = new Date(ms).toISOString();
  return markup`<time datetime="${clean}">${clean.slice(0, 10)}</time>`;
}

function ago(ms: number): string {
  if (ms < 60_000) return 'just now';
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} days ago`;
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}
