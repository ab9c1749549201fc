import type { EventId, JsonValue, Result, Subject } from '@accord/protocol';
import { err, ok } from '@accord/protocol';
import type { DomainEventType } from './catalogue.js';
import { checkEventData, isDomainEventType, specOf } from './catalogue.js';
import { toJson } from './json-copy.js';
import type { Projection } from './projection.js';
import { preparedDrafts } from './prepared.js';

/** What a user action produces before the device turns it into an event: a type and its data. */
export interface Draft {
  readonly type: string;
  readonly data: unknown;
}

/** The parts of an event envelope that follow from a draft and the device's current view. */
export interface PreparedDraft {
  readonly type: DomainEventType;
  readonly schema: number;
  readonly subject: Subject;
  readonly deps: EventId[];
  readonly basis?: Record<string, EventId | null>;
  readonly data: JsonValue;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Checks a draft against the catalogue and fills in what the device needs to build the event.
 *
 * @remarks `deps` = the creators (in `view`) of the subject, of the referenced records and of
 * related records (the lot of a vaccination), plus the events named in `basis` — deduplicated and
 * sorted. Depending on the basis events makes the relay judge the update only after it has
 * accepted what the device saw (a 404 that retries itself, never a false 409). `basis` (only for
 * `PatientDemographicsUpdated`) maps every changed field to {@link Projection.fieldVersion}.
 * Fails with the `PROTOCOL_SCHEMA` error of {@link checkEventData}; never throws.
 */
export function prepareDraft(view: Projection, draft: Draft): Result<PreparedDraft> {
  const schema = isDomainEventType(draft.type) ? specOf(draft.type).schema : 1;
  const checked = checkEventData(draft.type, schema, draft.data);
  if (!checked.ok) return err(checked.error);
  const { type, data, subject } = checked.value;
  const spec = specOf(type);
  const deps = new Set<EventId>();
  for (const s of [subject, ...spec.references(data), ...(spec.related?.(data) ?? [])]) {
    const creator = view.creatorOf(s);
    if (creator !== undefined) deps.add(creator);
  }
  let basis: Record<string, EventId | null> | undefined;
  if (spec.updatedFields !== undefined) {
    basis = {};
    for (const field of spec.updatedFields(data)) {
      const version = view.fieldVersion(subject, field);
      basis[field] = version;
      if (version !== null) deps.add(version);
    }
  }
  const prepared: PreparedDraft = {
    type,
    schema: spec.schema,
    subject,
    deps: [...deps].sort(cmp),
    ...(basis !== undefined ? { basis } : {}),
    data: toJson(data),
  };
  preparedDrafts.add(prepared);
  return ok(prepared);
}
