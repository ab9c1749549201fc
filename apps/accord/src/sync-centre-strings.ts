/**
 * Every text `accord sync-centre` shows a person, in one place, so that a translation is one more
 * object of this type (chosen by {@link syncCentreStrings}).
 *
 * @remarks Codes (`DEVICE_NOT_FOUND`, 422…) and the API's own `message`s are not translated here:
 * codes are stable identifiers, and the agent's messages come from the agent.
 */
export interface SyncCentreStrings {
  readonly yes: string;
  readonly no: string;
  readonly none: string;
  /** An age: how long ago, in whole units. */
  readonly age: (amount: number, unit: 's' | 'min' | 'h' | 'd') => string;
  readonly status: {
    readonly device: string;
    readonly facility: string;
    readonly online: string;
    readonly relay: string;
    readonly relayConnected: (lastContact: string | null) => string;
    readonly relayDisconnected: (lastContact: string | null) => string;
    readonly noRelay: string;
    readonly peers: string;
    readonly peersConnected: (connected: number, known: number) => string;
    readonly pending: string;
    readonly outbox: string;
    readonly needsAttention: string;
    readonly confirmedSeq: string;
    readonly lastVerdict: string;
    readonly verdictAccepted: (seq: number | undefined, target: string) => string;
    readonly verdictRejected: (code: number | undefined, target: string) => string;
  };
  readonly columns: {
    readonly age: string;
    readonly type: string;
    readonly subject: string;
    readonly id: string;
    readonly device: string;
    readonly rule: string;
    readonly reason: string;
    readonly code: string;
    readonly at: string;
    readonly action: string;
    readonly target: string;
    readonly event: string;
    readonly outcome: string;
    readonly detail: string;
    readonly field: string;
    readonly value: string;
  };
  readonly outboxEmpty: string;
  readonly conflictsEmpty: string;
  /** The heading of one group of `conflicts`: the code, what it means, how many. */
  readonly conflictGroup: (code: number | null, count: number) => string;
  /** What each rejection code means (DESIGN.md §4). */
  readonly codeMeaning: (code: number | null) => string;
  readonly inspect: {
    readonly id: string;
    readonly type: string;
    readonly status: string;
    readonly device: string;
    readonly seq: string;
    readonly hlc: string;
    readonly subject: string;
    readonly data: string;
    readonly supersedes: string;
    readonly verdict: string;
    readonly verdictAccepted: (seq: number | undefined) => string;
    readonly verdictRejected: (code: number | undefined, rule: string, reason: string) => string;
    readonly details: string;
    readonly resolvedBy: string;
  };
  readonly retried: (event: string, target: string) => string;
  readonly retriedAll: (retried: number, skipped: number) => string;
  readonly discarded: (event: string, target: string) => string;
  readonly defaultDiscardReason: string;
  readonly auditEmpty: string;
  readonly adminPasswordPrompt: string;
  readonly integrity: {
    readonly day: string;
    readonly device: string;
    readonly relay: string;
    readonly match: string;
    readonly missing: string;
    readonly resent: string;
    readonly empty: (from: string, to: string) => string;
    readonly summary: (mismatched: number, days: number) => string;
    readonly resubmitted: (missing: number, resent: number) => string;
  };
  readonly errors: {
    readonly needsRange: string;
    readonly badDate: (flag: string, value: string) => string;
    readonly needsUrl: string;
    readonly badUrl: (value: string) => string;
    readonly needsCommand: string;
    readonly unknownCommand: (command: string) => string;
    readonly needsId: (command: string) => string;
    readonly extraArgument: (value: string) => string;
    readonly flagNotFor: (flag: string, command: string) => string;
    readonly badLimit: (value: string) => string;
    readonly badKey: string;
    readonly notAvailable: (command: string) => string;
    readonly unreachable: (url: string, why: string) => string;
    readonly timedOut: (url: string, seconds: number) => string;
    readonly badResponse: (url: string, status: number) => string;
  };
}

/** English, the default. */
export const SYNC_CENTRE_EN: SyncCentreStrings = {
  yes: 'yes',
  no: 'no',
  none: '—',
  age: (amount, unit) => `${amount} ${unit}`,
  status: {
    device: 'Device',
    facility: 'Facility',
    online: 'Online',
    relay: 'Relay',
    relayConnected: (at) => `connected (last contact ${at ?? 'never'})`,
    relayDisconnected: (at) => `not connected (last contact ${at ?? 'never'})`,
    noRelay: 'none (shared roster)',
    peers: 'Peers',
    peersConnected: (connected, known) => `${connected} connected of ${known}`,
    pending: 'Pending (no verdict yet)',
    outbox: 'Outbox (this device)',
    needsAttention: 'Needs attention',
    confirmedSeq: 'Last confirmed sequence',
    lastVerdict: 'Last verdict',
    verdictAccepted: (seq, target) => `accepted #${seq ?? '?'} (${target})`,
    verdictRejected: (code, target) => `rejected ${code ?? '?'} (${target})`,
  },
  columns: {
    age: 'Age',
    type: 'Type',
    subject: 'Subject',
    id: 'Id',
    device: 'Device',
    rule: 'Rule',
    reason: 'Reason',
    code: 'Code',
    at: 'At',
    action: 'Action',
    target: 'Target',
    event: 'Event',
    outcome: 'Outcome',
    detail: 'Detail',
    field: 'Field',
    value: 'Value',
  },
  outboxEmpty: 'The outbox is empty: every event of this device has a verdict.',
  conflictsEmpty: 'Nothing needs attention.',
  conflictGroup: (code, count) =>
    `${code ?? '?'} — ${SYNC_CENTRE_EN.codeMeaning(code)} (${count} ${count === 1 ? 'event' : 'events'})`,
  codeMeaning: (code) => {
    switch (code) {
      case 500:
        return 'cannot be processed: amend it';
      case 422:
        return 'a business rule refused it: amend, or retry when the condition changes';
      case 409:
        return 'conflicts with another change: keep mine, keep theirs or merge';
      case 404:
        return 'waits for a record that has not arrived: retried by itself when it does';
      case 410:
        return 'its record is gone (merged or retired): record it again on the survivor';
      case 403:
        return 'not allowed: cannot be retried by this device';
      default:
        return 'unknown rejection';
    }
  },
  inspect: {
    id: 'Id',
    type: 'Type',
    status: 'Status',
    device: 'Author device',
    seq: 'Sequence',
    hlc: 'Time (HLC)',
    subject: 'Subject',
    data: 'Data',
    supersedes: 'Amends',
    verdict: 'Verdict',
    verdictAccepted: (seq) => `accepted, confirmed #${seq ?? '?'}`,
    verdictRejected: (code, rule, reason) => `rejected ${code ?? '?'} ${rule}: ${reason}`,
    details: 'Verdict details',
    resolvedBy: 'Resolved by',
  },
  retried: (event, target) =>
    `Retry recorded (${event}): ${target} is pending again until the relay's next verdict.`,
  retriedAll: (retried, skipped) =>
    `Retried ${retried} ${retried === 1 ? 'deadletter' : 'deadletters'}` +
    (skipped === 0 ? '.' : `; skipped ${skipped}:`),
  discarded: (event, target) => `Discard recorded (${event}): ${target} is resolved; the audit keeps it.`,
  defaultDiscardReason: 'discarded from the command line',
  auditEmpty: 'No sync or admin action yet.',
  adminPasswordPrompt: 'Admin password (checked by the relay): ',
  integrity: {
    day: 'Day (UTC)',
    device: 'This device',
    relay: 'Relay',
    match: 'Match',
    missing: 'Missing on the relay',
    resent: 'Re-sent',
    empty: (from, to) => `No events from ${from} to ${to} on this device or the relay.`,
    summary: (mismatched, days) =>
      mismatched === 0
        ? `All ${days} ${days === 1 ? 'day matches' : 'days match'} the relay.`
        : `${mismatched} of ${days} ${days === 1 ? 'day differs' : 'days differ'} from the relay.`,
    resubmitted: (missing, resent) =>
      `The relay lacked ${missing} ${missing === 1 ? 'event' : 'events'}; ${resent} re-sent through the sync.`,
  },
  errors: {
    needsRange: 'resubmit needs --from YYYY-MM-DD and --to YYYY-MM-DD',
    badDate: (flag, value) => `${flag} must be a date YYYY-MM-DD, got ${JSON.stringify(value)}`,
    needsUrl: '--url http://127.0.0.1:PORT (the device agent’s HTTP API) is required',
    badUrl: (value) => `--url must be an http:// URL of the device agent, got ${JSON.stringify(value)}`,
    needsCommand:
      'sync-centre needs a command: status, outbox, conflicts, inspect ID, retry ID, retry-all, discard ID, resubmit, integrity, audit',
    unknownCommand: (command) => `unknown sync-centre command ${JSON.stringify(command)}`,
    needsId: (command) => `${command} needs an event id`,
    extraArgument: (value) => `unexpected argument ${JSON.stringify(value)}`,
    flagNotFor: (flag, command) => `${flag} does not apply to ${command}`,
    badLimit: (value) => `--limit must be an integer 1-1000, got ${JSON.stringify(value)}`,
    badKey: '--idempotency-key must be 1-128 characters of A-Z a-z 0-9 . _ : ~ -',
    notAvailable: (command) =>
      `${command} is not available yet: it needs the relay's side of the Sync Centre (issue #10), which this agent does not have`,
    unreachable: (url, why) => `cannot reach the device agent at ${url} (${why})`,
    timedOut: (url, seconds) => `the device agent at ${url} did not answer within ${seconds} s`,
    badResponse: (url, status) => `the answer from ${url} (HTTP ${status}) is not the agent's JSON`,
  },
};

/** The catalogue for `lang` (a BCP 47 tag such as `en-GB`); English when there is none for it. */
export function syncCentreStrings(_lang?: string): SyncCentreStrings {
  return SYNC_CENTRE_EN;
}
