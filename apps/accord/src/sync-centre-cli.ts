// `accord sync-centre`: the Sync Centre's operations on the command line, over a device agent's
// local HTTP API. Tables for people by default, the API's JSON with --json.
import { randomUUID } from 'node:crypto';
import { AccordError, ErrorCode } from '@accord/protocol';
import { parse, usage } from './cli-args.js';
import type { CliIo } from './cli.js';
import { syncCentreStrings, type SyncCentreStrings } from './sync-centre-strings.js';
import { formatPairs, formatTable } from './text-table.js';

/** How long one request may take before the CLI gives up on it (ms). */
const REQUEST_TIMEOUT_MS = 15_000;

// The agent's rule (`isIdempotencyKey` of @accord/device), repeated so that this command does not
// load the agent's libraries (Automerge, LevelDB) just to check a flag.
const KEY_PATTERN = /^[A-Za-z0-9._:~-]{1,128}$/;

/** Commands and which take an event id. */
const COMMANDS: Readonly<Record<string, 'id' | 'none' | 'unavailable'>> = {
  status: 'none',
  outbox: 'none',
  conflicts: 'none',
  inspect: 'id',
  retry: 'id',
  'retry-all': 'none',
  discard: 'id',
  audit: 'none',
  resubmit: 'none',
  integrity: 'none',
};

/** What the agent's API answers (only the fields the tables show; `--json` prints all of it). */
interface EventView {
  readonly event: {
    readonly id: string;
    readonly type: string;
    readonly device: string;
    readonly seq: number;
    readonly hlc: string;
    readonly subject: { readonly kind: string; readonly id: string };
    readonly data: unknown;
    readonly supersedes?: string;
  };
  readonly status: string;
  readonly resolvedBy?: string;
  readonly verdictData?: {
    readonly outcome: string;
    readonly seq?: number;
    readonly code?: number;
    readonly rule?: string;
    readonly reason?: string;
    readonly details?: unknown;
  };
}

interface StatusView {
  readonly device: string;
  readonly name: string;
  readonly facility: string;
  readonly online: boolean;
  readonly counts: { readonly deadletter: number };
  readonly pending: number;
  readonly outbox: number;
  readonly peers: readonly { readonly connected: boolean }[];
  readonly relay: { readonly connected: boolean; readonly lastContact: string | null } | null;
  readonly lastVerdict: {
    readonly target: string;
    readonly outcome: string;
    readonly seq?: number;
    readonly code?: number;
  } | null;
  readonly confirmedSeq: number;
}

interface DeadletterView {
  readonly id: string;
  readonly type: string;
  readonly device: string;
  readonly code: number | null;
  readonly rule: string | null;
  readonly reason: string | null;
}

interface AuditView {
  readonly at: string;
  readonly action: string;
  readonly target?: string;
  readonly event?: string;
  readonly outcome: string;
  readonly detail?: unknown;
}

/** A connection to one agent's API. */
class AgentClient {
  readonly #base: URL;
  readonly #text: SyncCentreStrings;
  readonly #key: string;

  constructor(base: URL, text: SyncCentreStrings, key: string) {
    this.#base = base;
    this.#text = text;
    this.#key = key;
  }

  get(path: string): Promise<unknown> {
    return this.#request('GET', path);
  }

  /**
   * A write: declared JSON (the agent refuses anything else) and carrying this invocation's
   * `Idempotency-Key`, so that the one repeat after a lost answer records nothing twice.
   */
  async post(path: string, body: unknown): Promise<unknown> {
    try {
      return await this.#request('POST', path, body);
    } catch (e) {
      // The request may have been recorded with its answer lost: ask again, same key.
      if (e instanceof AccordError && e.code === ErrorCode.CLI_UNREACHABLE && e.details['retry'] === true)
        return this.#request('POST', path, body);
      throw e;
    }
  }

  async #request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const url = new URL(path, this.#base);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        redirect: 'error',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        ...(method === 'POST'
          ? {
              headers: { 'content-type': 'application/json', 'idempotency-key': this.#key },
              body: JSON.stringify(body ?? {}),
            }
          : {}),
      });
    } catch (e) {
      throw this.#unreachable(e);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw this.#unreachable(e);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new AccordError(
        ErrorCode.CLI_BAD_RESPONSE,
        this.#text.errors.badResponse(this.#base.origin, res.status),
      );
    }
    if (res.ok) return json;
    const error = json as { code?: unknown; message?: unknown; details?: unknown } | null;
    if (typeof error?.code !== 'string' || typeof error.message !== 'string') {
      throw new AccordError(
        ErrorCode.CLI_BAD_RESPONSE,
        this.#text.errors.badResponse(this.#base.origin, res.status),
      );
    }
    // The agent's own code and message, as documented in @accord/device.
    throw new AccordError(error.code as ErrorCode, error.message, {
      details: { status: res.status, ...(isObject(error.details) ? error.details : {}) },
    });
  }

  #unreachable(e: unknown): AccordError {
    const origin = this.#base.origin;
    if (e instanceof DOMException && e.name === 'TimeoutError') {
      return new AccordError(
        ErrorCode.CLI_UNREACHABLE,
        this.#text.errors.timedOut(origin, REQUEST_TIMEOUT_MS / 1000),
        {
          details: { retry: true },
        },
      );
    }
    const cause = e instanceof Error ? (e.cause as { code?: unknown } | undefined) : undefined;
    const why = typeof cause?.code === 'string' ? cause.code : e instanceof Error ? e.message : String(e);
    // A refused connection reached nobody; anything else may have been cut after the agent acted.
    return new AccordError(ErrorCode.CLI_UNREACHABLE, this.#text.errors.unreachable(origin, why), {
      details: { retry: why !== 'ECONNREFUSED' },
    });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `now - then` as "5 min", "3 h"… */
function age(text: SyncCentreStrings, iso: string, now: number): string {
  const ms = Math.max(0, now - Date.parse(iso));
  if (Number.isNaN(ms)) return text.none;
  if (ms < 60_000) return text.age(Math.floor(ms / 1000), 's');
  if (ms < 3600_000) return text.age(Math.floor(ms / 60_000), 'min');
  if (ms < 86_400_000) return text.age(Math.floor(ms / 3600_000), 'h');
  return text.age(Math.floor(ms / 86_400_000), 'd');
}

/** The wall time of an HLC stamp (its first 24 characters are ISO 8601). */
const hlcTime = (hlc: string): string => hlc.slice(0, 24);

function baseUrl(value: string | undefined, text: SyncCentreStrings): URL {
  if (value === undefined || value === '') usage(text.errors.needsUrl);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    usage(text.errors.badUrl(value));
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.search !== '')
    usage(text.errors.badUrl(value));
  return new URL('/', url);
}

/**
 * Runs `accord sync-centre …args` and returns the exit code (errors are thrown for `runCli`).
 *
 * @remarks Usage errors throw `CLI_USAGE` (exit 2); an answer with an error throws the agent's
 * code (exit 1). `resubmit` (and `discard --admin`) read the admin password from
 * `ACCORD_ADMIN_PASSWORD` or stdin, never from the command line.
 */
export async function syncCentreCommand(args: readonly string[], io: CliIo): Promise<number> {
  const text = syncCentreStrings(process.env['LANG']);
  const { values, positionals } = parse(
    args,
    {
      url: { type: 'string' },
      json: { type: 'boolean' },
      reason: { type: 'string' },
      limit: { type: 'string' },
      'idempotency-key': { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      admin: { type: 'boolean' },
    },
    true,
  );
  const [command, id, ...extra] = positionals;
  if (command === undefined) usage(text.errors.needsCommand);
  const kind = COMMANDS[command];
  if (kind === undefined) usage(text.errors.unknownCommand(command));
  if (kind === 'id' && (id === undefined || id === '')) usage(text.errors.needsId(command));
  const surplus = kind === 'id' ? extra[0] : id;
  if (surplus !== undefined) usage(text.errors.extraArgument(surplus));
  if (values.reason !== undefined && command !== 'discard')
    usage(text.errors.flagNotFor('--reason', command));
  if (values.limit !== undefined && command !== 'audit') usage(text.errors.flagNotFor('--limit', command));
  if (values.limit !== undefined && !/^[1-9]\d{0,3}$/.test(values.limit))
    usage(text.errors.badLimit(values.limit));
  if (values.limit !== undefined && Number(values.limit) > 1000) usage(text.errors.badLimit(values.limit));
  for (const flag of ['from', 'to'] as const) {
    const v = values[flag];
    if (v !== undefined && command !== 'resubmit' && command !== 'integrity')
      usage(text.errors.flagNotFor(`--${flag}`, command));
    if (v !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(v)) usage(text.errors.badDate(`--${flag}`, v));
  }
  if (command === 'resubmit' && (values.from === undefined || values.to === undefined))
    usage(text.errors.needsRange);
  if (values.admin !== undefined && command !== 'discard') usage(text.errors.flagNotFor('--admin', command));
  // Never a flag: a password on the command line is visible to every user of the machine.
  const adminPassword = async (): Promise<string> =>
    process.env['ACCORD_ADMIN_PASSWORD'] ?? (await io.readSecret(text.adminPasswordPrompt));
  const key = values['idempotency-key'] ?? randomUUID();
  if (!KEY_PATTERN.test(key)) usage(text.errors.badKey);
  const base = baseUrl(values.url, text);
  if (kind === 'unavailable')
    throw new AccordError(ErrorCode.CLI_NOT_AVAILABLE, text.errors.notAvailable(command));

  const client = new AgentClient(base, text, key);
  const json = values.json === true;
  const print = (lines: readonly string[]): void => {
    for (const line of lines) io.out(line);
  };
  const eventPath = (suffix = ''): string => `api/events/${encodeURIComponent(id ?? '')}${suffix}`;
  switch (command) {
    case 'status': {
      const s = (await client.get('api/status')) as StatusView;
      if (json) return printJson(io, s);
      const v = s.lastVerdict;
      print(
        formatPairs([
          [text.status.device, `${s.name} (${s.device})`],
          [text.status.facility, s.facility],
          [text.status.online, s.online ? text.yes : text.no],
          [
            text.status.relay,
            s.relay === null
              ? text.status.noRelay
              : s.relay.connected
                ? text.status.relayConnected(s.relay.lastContact)
                : text.status.relayDisconnected(s.relay.lastContact),
          ],
          [
            text.status.peers,
            text.status.peersConnected(s.peers.filter((p) => p.connected).length, s.peers.length),
          ],
          [text.status.pending, String(s.pending)],
          [text.status.outbox, String(s.outbox)],
          [text.status.needsAttention, String(s.counts.deadletter)],
          [text.status.confirmedSeq, String(s.confirmedSeq)],
          [
            text.status.lastVerdict,
            v === null
              ? text.none
              : v.outcome === 'accepted'
                ? text.status.verdictAccepted(v.seq, v.target)
                : text.status.verdictRejected(v.code, v.target),
          ],
        ]),
      );
      return 0;
    }
    case 'outbox': {
      const rows = (await client.get('api/outbox')) as EventView[];
      if (json) return printJson(io, rows);
      if (rows.length === 0) {
        io.out(text.outboxEmpty);
        return 0;
      }
      const now = Date.now();
      const c = text.columns;
      const oldestFirst = [...rows].sort((a, b) =>
        a.event.hlc < b.event.hlc ? -1 : a.event.hlc > b.event.hlc ? 1 : 0,
      );
      print(
        formatTable(
          [c.age, c.type, c.subject, c.id],
          oldestFirst.map(({ event: e }) => [
            age(text, hlcTime(e.hlc), now),
            e.type,
            `${e.subject.kind} ${e.subject.id}`,
            e.id,
          ]),
        ),
      );
      return 0;
    }
    case 'conflicts': {
      const rows = (await client.get('api/deadletters')) as DeadletterView[];
      if (json) return printJson(io, rows);
      if (rows.length === 0) {
        io.out(text.conflictsEmpty);
        return 0;
      }
      const groups = new Map<number | null, DeadletterView[]>();
      for (const row of rows) groups.set(row.code, [...(groups.get(row.code) ?? []), row]);
      const c = text.columns;
      const codes = [...groups.keys()].sort((a, b) => (b ?? -1) - (a ?? -1));
      codes.forEach((code, i) => {
        const group = groups.get(code) ?? [];
        if (i > 0) io.out('');
        io.out(text.conflictGroup(code, group.length));
        print(
          formatTable(
            [c.id, c.type, c.device, c.rule, c.reason],
            group.map((d) => [d.id, d.type, d.device, d.rule ?? text.none, d.reason ?? text.none]),
          ),
        );
      });
      return 0;
    }
    case 'inspect': {
      const info = (await client.get(eventPath())) as EventView;
      if (json) return printJson(io, info);
      const e = info.event;
      const v = info.verdictData;
      const t = text.inspect;
      print(
        formatPairs([
          [t.id, e.id],
          [t.type, e.type],
          [t.status, info.status],
          [t.device, e.device],
          [t.seq, String(e.seq)],
          [t.hlc, e.hlc],
          [t.subject, `${e.subject.kind} ${e.subject.id}`],
          [t.data, JSON.stringify(e.data)],
          ...(e.supersedes === undefined ? [] : [[t.supersedes, e.supersedes] as const]),
          [
            t.verdict,
            v === undefined
              ? text.none
              : v.outcome === 'accepted'
                ? t.verdictAccepted(v.seq)
                : t.verdictRejected(v.code, v.rule ?? text.none, v.reason ?? text.none),
          ],
          ...(v?.details === undefined ? [] : [[t.details, JSON.stringify(v.details)] as const]),
          [t.resolvedBy, info.resolvedBy ?? text.none],
        ]),
      );
      return 0;
    }
    case 'retry': {
      const r = (await client.post(eventPath('/retry'), {})) as { id: string };
      if (json) return printJson(io, r);
      io.out(text.retried(r.id, id ?? ''));
      return 0;
    }
    case 'retry-all': {
      const r = (await client.post('api/deadletters/retry-all', {})) as {
        retried: { id: string; event: { id: string } }[];
        skipped: { id: string; code: string; reason: string }[];
      };
      if (json) return printJson(io, r);
      io.out(text.retriedAll(r.retried.length, r.skipped.length));
      const c = text.columns;
      if (r.skipped.length > 0)
        print(
          formatTable(
            [c.id, c.code, c.reason],
            r.skipped.map((s) => [s.id, s.code, s.reason]),
          ),
        );
      return 0;
    }
    case 'discard': {
      const reason = values.reason ?? text.defaultDiscardReason;
      const r = (await client.post(
        eventPath('/discard'),
        values.admin === true ? { reason, adminPassword: await adminPassword() } : { reason },
      )) as { id: string };
      if (json) return printJson(io, r);
      io.out(text.discarded(r.id, id ?? ''));
      return 0;
    }
    case 'integrity': {
      const q = new URLSearchParams();
      if (values.from !== undefined) q.set('from', values.from);
      if (values.to !== undefined) q.set('to', values.to);
      const r = (await client.get(`api/integrity${q.size === 0 ? '' : `?${q.toString()}`}`)) as {
        from: string;
        to: string;
        days: { day: string; device: number; relay: number; match: boolean }[];
      };
      if (json) return printJson(io, r);
      const t = text.integrity;
      if (r.days.length === 0) {
        io.out(t.empty(r.from, r.to));
        return 0;
      }
      print(
        formatTable(
          [t.day, t.device, t.relay, t.match],
          r.days.map((d) => [d.day, String(d.device), String(d.relay), d.match ? text.yes : text.no]),
        ),
      );
      io.out(t.summary(r.days.filter((d) => !d.match).length, r.days.length));
      return 0;
    }
    case 'resubmit': {
      const r = (await client.post('api/resubmit', {
        from: values.from,
        to: values.to,
        adminPassword: await adminPassword(),
      })) as { days: { day: string; missing: number; resent: number }[] };
      if (json) return printJson(io, r);
      const t = text.integrity;
      if (r.days.length > 0)
        print(
          formatTable(
            [t.day, t.missing, t.resent],
            r.days.map((d) => [d.day, String(d.missing), String(d.resent)]),
          ),
        );
      io.out(
        t.resubmitted(
          r.days.reduce((n, d) => n + d.missing, 0),
          r.days.reduce((n, d) => n + d.resent, 0),
        ),
      );
      return 0;
    }
    case 'audit': {
      const rows = (await client.get(
        `api/audit${values.limit === undefined ? '' : `?limit=${values.limit}`}`,
      )) as AuditView[];
      if (json) return printJson(io, rows);
      if (rows.length === 0) {
        io.out(text.auditEmpty);
        return 0;
      }
      const c = text.columns;
      print(
        formatTable(
          [c.at, c.action, c.target, c.event, c.outcome, c.detail],
          rows.map((r) => [
            r.at,
            r.action,
            r.target ?? '',
            r.event ?? '',
            r.outcome,
            r.detail === undefined ? '' : JSON.stringify(r.detail),
          ]),
        ),
      );
      return 0;
    }
    default:
      return usage(text.errors.unknownCommand(command));
  }
}

function printJson(io: CliIo, value: unknown): number {
  io.out(JSON.stringify(value, null, 2));
  return 0;
}
