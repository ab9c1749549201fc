/**
 * The drafts `prepareDraft` has checked against the catalogue (kept by identity, for as long as
 * the caller holds one). Internal to the package: only `prepareDraft` adds to it, and
 * `markPrepared` believes an event's data valid only when it was built from one of these.
 */
export const preparedDrafts = new WeakSet<object>();
