// The request schemas of the device agent's API: what each route takes in its body and query.
// A refusal is a 400 DEVICE_BAD_REQUEST whose message is the schema's description (or, without
// one, the first failing field's own message); see `zodValidatorCompiler` in @accord/network-ws.
import { isEventId } from '@accord/protocol';
import type { EventStatus } from '@accord/domain';
import { z } from 'zod';

/** Event statuses accepted by `GET /api/events?status=`. */
export const EVENT_STATUSES: readonly EventStatus[] = ['pending', 'accepted', 'deadletter', 'resolved'];

/** Longest discard reason (the protocol's limit for `DeadletterDiscarded.reason`). */
export const MAX_REASON = 4096;
/** Default and largest `limit` of `GET /api/audit`. */
export const AUDIT_DEFAULT_LIMIT = 100;
export const AUDIT_MAX_LIMIT = 1000;

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** True for a real calendar date `YYYY-MM-DD` (not `2026-02-30`). */
export function isCalendarDate(s: string): boolean {
  if (!DATE.test(s)) return false;
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === s;
}

/** An admin password as the relay accepts one (it checks the rest). */
const password = z.string().min(1).max(4096);

/** A route that takes no query parameters. */
export const NoQuery = z.strictObject({});

/** `GET /api/events`. */
export const EventsQuery = z.strictObject({
  status: z.enum(EVENT_STATUSES, { error: `status must be one of ${EVENT_STATUSES.join(', ')}` }).optional(),
  device: z.string().optional(),
});

/** `GET /api/queue` and `GET /api/appointments`: a business date, today by default. */
export const DateQuery = z.strictObject({
  date: z.string().refine(isCalendarDate, { error: 'date must be YYYY-MM-DD' }).optional(),
});

/** `GET /api/audit`. */
export const AuditQuery = z.strictObject({
  limit: z
    .string()
    .refine((s) => /^[1-9]\d{0,5}$/.test(s) && Number(s) <= AUDIT_MAX_LIMIT, {
      error: `limit must be an integer 1-${AUDIT_MAX_LIMIT}`,
    })
    .transform(Number)
    .optional(),
});

/** Largest `limit` of `GET /api/patients`, and most ids one `ids=` may name. */
export const PATIENTS_MAX_LIMIT = 500;

const wholeNumber = (name: string, min: number, max: number) =>
  z
    .string()
    .refine((s) => /^\d{1,7}$/.test(s) && Number(s) >= min && Number(s) <= max, {
      error: `${name} must be an integer ${min}-${max}`,
    })
    .transform(Number);

/**
 * `GET /api/patients`: with none of these, every live patient (as before); with any, a page
 * (`limit`, `offset`) of the patients named by `ids` (repeated) or matching `q`.
 */
export const PatientsQuery = z.strictObject({
  q: z.string().max(200, { error: 'q must be at most 200 characters' }).optional(),
  // Repeated (`ids=a&ids=b`): a patient id is any text, commas included.
  ids: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (typeof v === 'string' ? [v] : v))
    .refine((ids) => ids.length <= PATIENTS_MAX_LIMIT, {
      error: `ids may name at most ${PATIENTS_MAX_LIMIT} patients`,
    })
    .optional(),
  limit: wholeNumber('limit', 1, PATIENTS_MAX_LIMIT).optional(),
  offset: wholeNumber('offset', 0, 9_999_999).optional(),
});

/** `GET /api/integrity`: UTC days, checked (and defaulted) by the route. */
export const RangeQuery = z.strictObject({ from: z.string().optional(), to: z.string().optional() });

/** Path parameter `:id` of `/api/events/:id…` and `/api/patients/:id` (any text: unknown ids are 404s). */
export const IdParams = z.object({ id: z.string() });

/** `POST /api/events`: a domain fact, or with `supersedes` an amend of a deadletter. */
export const DraftBody = z.strictObject(
  {
    type: z
      .string({ error: 'type must be a non-empty string' })
      .min(1, { error: 'type must be a non-empty string' }),
    // Any JSON value, null included; the domain catalogue checks it.
    data: z.unknown().refine((v) => v !== undefined, { error: 'data is required' }),
    supersedes: z
      .string({ error: 'supersedes must be an event id' })
      .refine(isEventId, { error: 'supersedes must be an event id' })
      .optional(),
  },
  { error: 'body must be a JSON object {"type", "data", "supersedes"?}' },
);

/** A body-less action (retry, retry-all): no body and `{}` are the same request. */
export const EmptyBody = (what: string) =>
  z.strictObject({}).nullish().describe(`${what} takes no body (or {})`);

/** `POST /api/events/:id/discard`. */
export const DiscardBody = z
  .strictObject({
    reason: z
      .string()
      .max(MAX_REASON)
      .refine((s) => s.trim() !== ''),
    // Checked by the route (DEVICE_GRANT_INVALID), not here.
    grant: z.unknown().optional(),
    adminPassword: password.optional(),
  })
  .refine((b) => b.grant === undefined || b.adminPassword === undefined)
  .describe(
    `body must be {"reason": "…" (1-${MAX_REASON} characters), and "grant" or "adminPassword" optionally}`,
  );

/** `POST /api/elevate`. */
export const ElevateBody = z
  .strictObject({ adminPassword: password, action: z.enum(['discard', 'resubmit']) })
  .describe('body must be {"adminPassword": "…", "action": "discard" | "resubmit"}');

/** `POST /api/resubmit`: a range of UTC days, with a grant or the admin password (exactly one). */
export const ResubmitBody = z
  .strictObject({
    from: z.string(),
    to: z.string(),
    grant: z.unknown().optional(),
    adminPassword: password.optional(),
  })
  .refine((b) => (b.grant === undefined) !== (b.adminPassword === undefined))
  .describe('body must be {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"} with "grant" or "adminPassword"');

/** `POST /api/network`. */
export const NetworkBody = z
  .strictObject({ online: z.boolean() })
  .describe('body must be {"online": true|false}');
