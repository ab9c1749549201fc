import { SystemEventType } from '@accord/protocol';

const SYSTEM_EVENT_TYPES: ReadonlySet<string> = new Set(Object.values(SystemEventType));

/** True for the sync system's own event types (every `SystemEventType`), false for domain facts. */
export function isSystemEventType(type: string): boolean {
  return SYSTEM_EVENT_TYPES.has(type);
}
