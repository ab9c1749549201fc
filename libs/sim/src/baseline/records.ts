import type { SignedEvent } from '@accord/protocol';
import { checkEvent, specOf } from '@accord/domain';

/**
 * The records an event writes or reads, as `kind/id` keys: its subject, the records it refers to
 * and the related ones (a vaccination's lot). In the incumbent these travel together in one
 * bundle, and a pull that returns any of them overwrites the local copy.
 */
export function recordsOf(event: SignedEvent): string[] {
  const checked = checkEvent(event);
  if (!checked.ok) return [`${event.subject.kind}/${event.subject.id}`];
  const c = checked.value;
  const spec = specOf(c.type);
  const subjects = [c.subject, ...spec.references(c.data), ...(spec.related?.(c.data) ?? [])];
  return [...new Set(subjects.map((s) => `${s.kind}/${s.id}`))];
}
