// `GET /api/audit`: this device's sync and admin actions, from its log and from memory.
import type { IncomingMessage } from 'node:http';
import { SystemEventType, type DeviceId } from '@accord/protocol';
import type { DeviceLogApi } from '@accord/log';
import type { AuditEntry } from './types.js';

/** How many non-event audit entries (replays, refusals, retry-alls, network switches) are kept. */
const AUDIT_MEMORY = 200;
/** Longest text from a request (a target, a path) kept in an audit entry. */
export const MAX_AUDIT_TEXT = 128;

/** What the audit says of a request while it runs (a handler may refine it: an amend). */
export interface AuditNote {
  action: string;
  target?: string;
}

/**
 * The audit trail of one device: its own resolution events, read from the log at each request,
 * and the last {@link AUDIT_MEMORY} actions that are not events, kept in memory.
 */
export class AuditTrail {
  readonly #log: DeviceLogApi;
  readonly #device: DeviceId;
  readonly #clock: () => number;
  /** Entries that are not events (newest last). */
  readonly #memory: AuditEntry[] = [];

  constructor(opts: { readonly log: DeviceLogApi; readonly device: DeviceId; readonly clock: () => number }) {
    this.#log = opts.log;
    this.#device = opts.device;
    this.#clock = opts.clock;
  }

  /** Keeps an entry that is not an event, stamped now (the oldest go beyond {@link AUDIT_MEMORY}). */
  remember(entry: Omit<AuditEntry, 'at'>): void {
    const at = new Date(this.#clock()).toISOString();
    // A target comes from the URL: keep what fits an event id and a little more.
    const target = entry.target === undefined ? {} : { target: entry.target.slice(0, MAX_AUDIT_TEXT) };
    this.#memory.push({ at, ...entry, ...target });
    if (this.#memory.length > AUDIT_MEMORY) this.#memory.shift();
  }

  /**
   * This device's sync and admin actions, newest first, at most `limit`: its own resolution
   * events from the log (retries, discards, amends: durable, the same on every device) and the
   * entries kept in memory (retry-alls, replays, refusals, network switches: since the agent started).
   */
  list(limit: number): AuditEntry[] {
    const entries: { entry: AuditEntry; order: number }[] = [];
    for (const { event } of this.#log.list({ device: this.#device })) {
      const at = event.hlc.slice(0, 24);
      const data = event.data as { target?: unknown; reason?: unknown } | null;
      const target = typeof data?.target === 'string' ? data.target : undefined;
      let entry: AuditEntry | undefined;
      if (event.type === SystemEventType.RetryRequested && target !== undefined) {
        entry = { at, action: 'retry', target, event: event.id, outcome: 'recorded' };
      } else if (event.type === SystemEventType.DeadletterDiscarded && target !== undefined) {
        entry = {
          at,
          action: 'discard',
          target,
          event: event.id,
          outcome: 'recorded',
          ...(typeof data?.reason === 'string' ? { detail: { reason: data.reason } } : {}),
        };
      } else if (event.supersedes !== undefined) {
        entry = { at, action: 'amend', target: event.supersedes, event: event.id, outcome: 'recorded' };
      }
      if (entry !== undefined) entries.push({ entry, order: -1 });
    }
    this.#memory.forEach((entry, order) => entries.push({ entry, order }));
    return entries
      .sort((a, b) =>
        a.entry.at !== b.entry.at
          ? a.entry.at < b.entry.at
            ? 1
            : -1
          : a.order !== b.order
            ? b.order - a.order
            : (b.entry.event ?? '') < (a.entry.event ?? '')
              ? -1
              : 1,
      )
      .slice(0, limit)
      .map((e) => e.entry);
  }
}

/** The path of a request URL as sent (not `new URL`, which takes `//a/b` for a host). */
export function pathnameOf(url: string | undefined): string {
  return (url ?? '/').split('?')[0]!;
}

/** What the audit calls a request, from its method and path (a handler may refine it). */
export function auditNoteOf(req: IncomingMessage): AuditNote {
  const segments = pathnameOf(req.url)
    .split('/')
    .filter((s) => s !== '');
  const [a, b, c, d] = segments;
  if (req.method === 'POST' && a === 'api') {
    if (b === 'events' && segments.length === 2) return { action: 'record' };
    if (b === 'events' && c !== undefined && segments.length === 4 && (d === 'retry' || d === 'discard')) {
      let target = c;
      try {
        target = decodeURIComponent(c);
      } catch {
        // Kept as sent.
      }
      return { action: d, target };
    }
    if (b === 'deadletters' && c === 'retry-all' && segments.length === 3) return { action: 'retry-all' };
    if ((b === 'elevate' || b === 'resubmit') && segments.length === 2) return { action: b };
    if (b === 'network' && segments.length === 2) return { action: 'network' };
  }
  return { action: 'request' };
}
