// Every text the Sync Centre page shows, in one place: a translation is one more object of
// type SyncCentreStrings. Codes, rule ids and the relay's own reason text are not translated.

/** Numbers and names from a verdict's `details`, as the rule texts read them. */
export type Details = { readonly [key: string]: unknown };

/** The user-facing texts of the Sync Centre page. */
export interface SyncCentreStrings {
  readonly appTitle: string;
  readonly skipToContent: string;
  readonly nav: {
    readonly label: string;
    readonly attention: string;
    readonly outbox: string;
    readonly patients: string;
    readonly queue: string;
    readonly vaccinate: string;
    readonly stock: string;
    readonly appointments: string;
    readonly counters: string;
    readonly adjust: string;
    readonly integrity: string;
    readonly environment: string;
    readonly audit: string;
  };
  readonly status: {
    readonly label: string;
    readonly online: string;
    readonly offline: string;
    readonly connecting: string;
    readonly relay: string;
    readonly relayNone: string;
    readonly relayConnected: (lastContact: string) => string;
    readonly relayDisconnected: (lastContact: string) => string;
    readonly never: string;
    readonly peers: string;
    readonly peersValue: (connected: number, known: number) => string;
    readonly pending: string;
    readonly outbox: string;
    readonly needsAttention: string;
    readonly confirmedSeq: string;
    readonly syncOk: string;
    readonly syncWarning: (n: number) => string;
  };
  readonly common: {
    readonly loading: string;
    readonly error: (code: string, message: string) => string;
    readonly saved: string;
    readonly save: string;
    readonly cancel: string;
    readonly inspect: string;
    readonly none: string;
    readonly yes: string;
    readonly no: string;
    readonly age: (ms: number) => string;
  };
  /**
   * Words for the agent's refusal codes the page's users meet (shown after the code, which stays
   * visible for support); any other code shows the agent's own message.
   */
  readonly apiErrors: { readonly [code: string]: string };
  readonly outbox: {
    readonly title: string;
    readonly empty: string;
    readonly intro: string;
  };
  readonly attention: {
    readonly title: string;
    readonly empty: string;
    readonly retryAll: string;
    readonly retryAllDone: (retried: number, skipped: number) => string;
    readonly codeHeading: (code: string, meaning: string) => string;
    readonly rule: string;
    readonly reason: string;
    readonly numbers: string;
    readonly device: string;
    readonly rejectedAt: string;
    readonly retry: string;
    readonly discard: string;
    readonly amend: string;
    readonly retried: string;
    readonly discarded: string;
    readonly amended: string;
    readonly keepMine: string;
    readonly keepTheirs: string;
    readonly keptMine: string;
    readonly keepMineNotYet: string;
    readonly compareCaption: string;
    readonly field: string;
    readonly mine: string;
    readonly confirmed: string;
    readonly same: string;
    readonly duplicateHint: string;
  };
  readonly discard: {
    readonly title: string;
    readonly explain: (what: string) => string;
    readonly reason: string;
    readonly defaultReason: string;
    readonly confirm: string;
    readonly adminPassword: string;
    readonly adminNeeded: string;
    readonly adminOptional: string;
    readonly working: string;
  };
  readonly amend: {
    readonly title: (what: string) => string;
    readonly explain: string;
    readonly record: string;
  };
  /** What each rejection code means and how it is resolved (DESIGN.md §4). */
  readonly codes: { readonly [code: string]: { readonly meaning: string; readonly how: string } };
  /** Plain-language rule names and, where the verdict carries numbers, a sentence with them. */
  readonly rules: {
    readonly [rule: string]: {
      readonly name: string;
      readonly numbers?: (d: Details) => string | undefined;
      /** When the relay re-judges the rejection by itself (the verdict's details say so), in words. */
      readonly heals?: (d: Details) => string | undefined;
    };
  };
  readonly unknownRule: string;
  readonly inspect: {
    readonly title: string;
    readonly notFound: string;
    readonly summary: string;
    readonly id: string;
    readonly type: string;
    readonly author: string;
    readonly seq: string;
    readonly time: string;
    readonly hlc: string;
    readonly subject: string;
    readonly status: string;
    readonly supersedes: string;
    readonly fields: string;
    readonly verdict: string;
    readonly verdictNone: string;
    readonly accepted: (seq: number) => string;
    readonly rejected: (code: string) => string;
    readonly resolvedBy: string;
    readonly notResolved: string;
    readonly statuses: { readonly [status: string]: string };
    readonly verdicts: string;
    readonly verdictAt: (time: string) => string;
    readonly latestOnly: string;
  };
  readonly environment: {
    readonly title: string;
    readonly device: string;
    readonly deviceName: string;
    readonly deviceId: string;
    readonly facility: string;
    readonly relayAddress: string;
    readonly relayId: string;
    readonly pageVersion: string;
    readonly agentVersion: string;
    readonly node: string;
    readonly keyFingerprint: string;
    readonly dataFolder: string;
    readonly dataFolderSize: string;
    readonly olderAgent: string;
    readonly counts: string;
    readonly countNames: { readonly [key: string]: string };
    readonly integrity: string;
    readonly holes: (device: string, missing: number) => string;
    readonly noHoles: string;
    readonly withheld: (device: string, from: number, reason: string, heldBack: number) => string;
    readonly noWithheld: string;
    readonly clockSkew: (device: string, hours: number) => string;
    readonly noClockSkews: string;
    readonly ownHistory: string;
    readonly setAside: (path: string) => string;
    readonly network: string;
    readonly goOffline: string;
    readonly goOnline: string;
    readonly wentOffline: string;
    readonly wentOnline: string;
  };
  readonly audit: {
    readonly title: string;
    readonly empty: string;
    readonly at: string;
    readonly action: string;
    readonly target: string;
    readonly outcome: string;
    readonly detail: string;
    readonly actions: { readonly [action: string]: string };
    readonly outcomes: { readonly [outcome: string]: string };
  };
  /** One event in words, for the outbox, the deadletters and Inspect. */
  readonly events: {
    readonly [type: string]: (d: Details, patient: (id: unknown) => string) => string;
  };
  readonly unknownEvent: (type: string) => string;
  readonly patients: {
    readonly title: string;
    readonly register: string;
    readonly nationalId: string;
    readonly givenName: string;
    readonly familyName: string;
    readonly birthDate: string;
    readonly sex: string;
    readonly sexes: { readonly [sex: string]: string };
    readonly list: string;
    readonly name: string;
    readonly checkIn: string;
    readonly checkedIn: (name: string) => string;
    readonly empty: string;
    readonly edit: string;
    readonly editTitle: (name: string) => string;
    readonly saveChanges: string;
    readonly nothingChanged: string;
    readonly search: string;
    readonly searchHint: string;
    readonly noMatch: string;
    readonly showing: (shown: number, total: number) => string;
    readonly showMore: string;
  };
  readonly queue: {
    readonly title: (day: string) => string;
    readonly waiting: string;
    readonly inProgress: string;
    readonly done: string;
    readonly start: string;
    readonly checkOut: string;
    readonly empty: string;
  };
  readonly vaccinate: {
    readonly title: string;
    readonly patient: string;
    readonly choose: string;
    readonly antigen: string;
    readonly dose: string;
    readonly lot: string;
    readonly date: string;
    readonly record: string;
    readonly warning: (reason: string) => string;
    readonly narrow: (shown: number, total: number) => string;
  };
  readonly stock: {
    readonly title: string;
    readonly receive: string;
    readonly lot: string;
    readonly antigen: string;
    readonly quantity: string;
    readonly expiry: string;
    readonly balance: string;
    readonly lots: string;
    readonly empty: string;
  };
  readonly adjust: {
    readonly title: string;
    readonly intro: string;
    readonly lot: string;
    readonly choose: string;
    readonly lotOption: (lot: string, antigen: string, balance: number) => string;
    readonly direction: string;
    readonly remove: string;
    readonly add: string;
    readonly doses: string;
    readonly reason: string;
    readonly reasons: { readonly [key: string]: string };
    readonly note: string;
    readonly noteHint: string;
    readonly preview: (lot: string, balance: number, after: number) => string;
    readonly belowZero: string;
    readonly record: string;
    readonly empty: string;
  };
  readonly integrity: {
    readonly title: string;
    readonly intro: string;
    readonly from: string;
    readonly to: string;
    readonly compare: string;
    readonly comparing: string;
    readonly day: string;
    readonly device: string;
    readonly relay: string;
    readonly match: string;
    readonly same: string;
    readonly differs: string;
    readonly allMatch: (days: number) => string;
    readonly someDiffer: (days: number) => string;
    readonly noDays: string;
    readonly resubmitTitle: string;
    readonly resubmitIntro: string;
    readonly adminPassword: string;
    readonly resubmit: string;
    readonly elevating: string;
    readonly progress: (done: number, total: number, day: string) => string;
    readonly nothingToResubmit: string;
    readonly resubmitted: (resent: number, days: number) => string;
    readonly missing: string;
    readonly resent: string;
  };
  readonly appointments: {
    readonly title: string;
    readonly book: string;
    readonly date: string;
    readonly upcoming: string;
    readonly missed: string;
    readonly empty: string;
  };
  readonly counters: {
    readonly title: string;
    readonly intro: string;
    readonly name: string;
    readonly value: string;
    readonly empty: string;
  };
}

const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v ?? null));

/** English, the default catalogue. */
export const en: SyncCentreStrings = {
  appTitle: 'Sync Centre',
  skipToContent: 'Skip to content',
  nav: {
    label: 'Screens',
    attention: 'Needs attention',
    outbox: 'Outbox',
    patients: 'Patients',
    queue: 'Queue',
    vaccinate: 'Vaccination',
    stock: 'Stock',
    appointments: 'Appointments',
    counters: 'Counters',
    adjust: 'Adjust stock',
    integrity: 'Compare and re-submit',
    environment: 'Environment',
    audit: 'Audit trail',
  },
  status: {
    label: 'Sync status',
    online: 'Online',
    offline: 'Offline',
    connecting: 'Connecting to this tablet…',
    relay: 'Server',
    relayNone: 'no server',
    relayConnected: (t) => `connected, last contact ${t}`,
    relayDisconnected: (t) => `not connected, last contact ${t}`,
    never: 'never',
    peers: 'Tablets',
    peersValue: (c, k) => `${c} of ${k} connected`,
    pending: 'Waiting for the server',
    outbox: 'This tablet’s outbox',
    needsAttention: 'Needs attention',
    confirmedSeq: 'Last confirmed',
    syncOk: 'Everything is in sync order: nothing needs attention',
    syncWarning: (n) => `${plural(n, 'change needs', 'changes need')} attention: open the list`,
  },
  common: {
    loading: 'Loading…',
    error: (code, message) => `Not done (${code}): ${message}`,
    saved: 'Saved on this tablet.',
    save: 'Save',
    cancel: 'Cancel',
    inspect: 'Inspect contents',
    none: 'none',
    yes: 'yes',
    no: 'no',
    age: (ms) => {
      const min = Math.floor(ms / 60_000);
      if (min < 1) return 'just now';
      if (min < 60) return `${plural(min, 'minute', 'minutes')} ago`;
      const h = Math.floor(min / 60);
      if (h < 48) return `${plural(h, 'hour', 'hours')} ago`;
      return `${plural(Math.floor(h / 24), 'day', 'days')} ago`;
    },
  },
  apiErrors: {
    DEVICE_ELEVATION_REFUSED: 'The server refused the admin password. Nothing was changed.',
    DEVICE_ELEVATION_RATE_LIMITED:
      'Too many wrong admin passwords from this tablet. Wait a few minutes, then try again.',
    DEVICE_RELAY_UNREACHABLE: 'This needs the server, and it cannot be reached now. Nothing was changed.',
    DEVICE_GRANT_INVALID: 'The admin permission is not valid (expired or for something else).',
    DEVICE_NOT_DEADLETTER: 'This change no longer needs attention: someone resolved it already.',
    NETWORK: 'This tablet’s Sync Centre did not answer. Check that it is running, then try again.',
  },
  outbox: {
    title: 'Outbox',
    intro: 'Changes made on this tablet that the server has not confirmed yet, oldest first.',
    empty: 'Nothing is waiting: the server has answered every change made on this tablet.',
  },
  attention: {
    title: 'Needs attention',
    empty: 'Nothing needs attention.',
    retryAll: 'Retry conflicted',
    retryAllDone: (r, s) => `Sent again: ${r}. Skipped: ${s}.`,
    codeHeading: (code, meaning) => `Code ${code}: ${meaning}`,
    rule: 'Rule',
    reason: 'Why',
    numbers: 'Numbers',
    device: 'Recorded on',
    rejectedAt: 'Rejected',
    retry: 'Retry',
    discard: 'Leave server version',
    amend: 'Edit and send again',
    retried: 'Sent again; waiting for the server.',
    discarded: 'Your change was set aside; the server’s version stands. It stays in the audit trail.',
    amended: 'The corrected change was recorded and sent.',
    keepMine: 'Keep mine',
    keepTheirs: 'Keep theirs',
    keptMine: 'Your values were recorded again on top of the confirmed version and sent.',
    keepMineNotYet:
      'The confirmed version has not fully reached this tablet yet, so yours cannot be put on top of it. Try again in a moment.',
    compareCaption: 'Yours against the confirmed version',
    field: 'Field',
    mine: 'Yours',
    confirmed: 'Confirmed',
    same: '(same)',
    duplicateHint:
      'This national id already belongs to a registered patient: keep theirs, or edit yours (another national id).',
  },
  discard: {
    title: 'Leave the server’s version?',
    explain: (what) =>
      `Your change “${what}” will not be applied. Nothing is deleted: the change and this decision stay in the audit trail.`,
    reason: 'Reason (for the audit trail)',
    defaultReason: 'left the server’s version',
    confirm: 'Yes, leave server version',
    adminPassword: 'Admin password',
    adminNeeded: 'This is a clinical record: the facility’s administrator must type the admin password.',
    adminOptional: 'Only if your facility asks for it.',
    working: 'Asking the server…',
  },
  amend: {
    title: (what) => `Edit “${what}”`,
    explain: 'Correct the fields and record the change again. The rejected one is kept, marked as replaced.',
    record: 'Record corrected change',
  },
  codes: {
    '500': {
      meaning: 'the server could not process the change',
      how: 'Edit it, or retry after the server is updated.',
    },
    '422': {
      meaning: 'a business rule was not met',
      how: 'Edit it, or retry when the situation changed (for example, stock received).',
    },
    '409': {
      meaning: 'someone else changed the same thing first',
      how: 'Keep mine (yours again, on top of the confirmed version), keep theirs (the server’s version), or edit yours and send it again.',
    },
    '404': {
      meaning: 'something it refers to has not arrived',
      how: 'It is retried by itself when what it waits for arrives.',
    },
    '410': {
      meaning: 'the record it refers to is gone (merged)',
      how: 'Edit it to refer to the surviving record.',
    },
    '403': {
      meaning: 'the server refused this tablet’s change',
      how: 'This cannot be retried from the tablet: call your administrator.',
    },
    unknown: { meaning: 'the rejection could not be read', how: 'Inspect its contents.' },
  },
  rules: {
    RULE_NEGATIVE_STOCK: {
      name: 'Not enough stock',
      numbers: (d) => {
        const balance = num(d['balance']);
        const requested = num(d['requested']);
        if (balance === undefined || requested === undefined) return undefined;
        return `Lot ${str(d['lot'])} would go to ${balance - requested}: ${balance} in stock, ${requested} requested.`;
      },
      heals: (d) =>
        d['retriesWhen'] === 'stock'
          ? `The server accepts it by itself, with no retry, once lot ${str(d['lot'])} has enough stock.`
          : undefined,
    },
    RULE_DOSE_OUT_OF_SEQUENCE: { name: 'Dose out of sequence' },
    RULE_DOSE_TOO_EARLY: { name: 'Dose too early' },
    RULE_BEFORE_BIRTH: { name: 'Date before birth' },
    RULE_IN_FUTURE: { name: 'Date in the future' },
    RULE_LOT_EXPIRED: {
      name: 'Lot expired',
      numbers: (d) =>
        `Lot ${str(d['lot'])} expired on ${str(d['expiry'])}; the date given is ${str(d['date'])}.`,
    },
    RULE_LOT_ANTIGEN_MISMATCH: { name: 'Lot holds another vaccine' },
    RULE_LOT_EXPIRY_MISMATCH: { name: 'Lot received with another expiry date' },
    RULE_UNKNOWN_ANTIGEN: { name: 'Unknown vaccine' },
    RULE_ALREADY_IN_QUEUE: { name: 'Patient already in the queue' },
    RULE_INVALID_TRANSITION: { name: 'Not possible in the current state' },
    RULE_STALE_BASIS: {
      name: 'Changed by someone else first',
      // Mine against the confirmed value, field by field.
      numbers: (d) => {
        const conflicts = Array.isArray(d['conflicts']) ? (d['conflicts'] as unknown[]) : [d];
        return conflicts
          .map((c) => {
            const f = (typeof c === 'object' && c !== null ? c : {}) as Details;
            return `${str(f['field'])}: yours ${JSON.stringify(f['proposed'] ?? null)}, now ${JSON.stringify(f['current'] ?? null)}`;
          })
          .join('; ');
      },
    },
    RULE_DUPLICATE_NATIONAL_ID: {
      name: 'National id already registered',
      numbers: (d) =>
        `National id ${str(d['nationalId'])} already belongs to patient ${str(d['existingPatientId'])}.`,
    },
    RULE_ALREADY_EXISTS: { name: 'Record already exists' },
    RULE_DEPENDENCY_MISSING: {
      name: 'Waiting for an earlier change',
      numbers: (d) => {
        const missing = Array.isArray(d['missing']) ? d['missing'].length : 0;
        return `Waits for ${plural(missing, 'earlier change', 'earlier changes')}; it is retried by itself when they arrive.`;
      },
    },
    RULE_NOT_FOUND: { name: 'Record not found' },
    RULE_MERGED: {
      name: 'Patient record merged into another',
      numbers: (d) => `Record it again on the surviving patient ${str(d['survivorId'])}.`,
    },
    RULE_SCHEMA: { name: 'Malformed data' },
    RULE_UNKNOWN_TYPE: { name: 'Unknown kind of change' },
    RULE_UNKNOWN_VERSION: { name: 'Unknown version of this kind of change' },
    RULE_SUBJECT_MISMATCH: { name: 'Inconsistent change' },
    RULE_UNPROCESSABLE: { name: 'Could not be processed' },
    RULE_UNKNOWN_DEVICE: { name: 'Tablet not enrolled' },
    RULE_DEVICE_REVOKED: { name: 'Tablet revoked' },
    RULE_WRONG_FACILITY: { name: 'Another facility' },
    RULE_RELAY_ONLY: { name: 'Only the server may record this' },
    RULE_NOT_DEADLETTERED: { name: 'Nothing to resolve' },
    RULE_SUPERSEDES_ACCEPTED: { name: 'Replaces an accepted change' },
    RULE_ELEVATION_REQUIRED: { name: 'Needs the admin password' },
  },
  unknownRule: 'Rule not named',
  inspect: {
    title: 'Inspect contents',
    notFound: 'No such change on this tablet.',
    summary: 'Change',
    id: 'Id',
    type: 'Kind',
    author: 'Author tablet',
    seq: 'Number on that tablet',
    time: 'Recorded at',
    hlc: 'Clock stamp (HLC)',
    subject: 'About',
    status: 'State',
    supersedes: 'Replaces',
    fields: 'Fields',
    verdict: 'Server’s verdict',
    verdictNone: 'No verdict yet.',
    accepted: (seq) => `Accepted, confirmed number ${seq}`,
    rejected: (code) => `Rejected with code ${code}`,
    resolvedBy: 'Resolved by',
    notResolved: 'Not resolved',
    statuses: {
      pending: 'Waiting for the server',
      accepted: 'Accepted',
      deadletter: 'Needs attention',
      resolved: 'Resolved',
    },
    verdicts: 'Verdicts, oldest first',
    verdictAt: (time) => `at ${time}`,
    latestOnly: 'This tablet’s Sync Centre reports the latest verdict only.',
  },
  environment: {
    title: 'Environment',
    device: 'This tablet',
    deviceName: 'Name',
    deviceId: 'Device id (key fingerprint)',
    facility: 'Facility',
    relayAddress: 'Server address',
    relayId: 'Server id',
    pageVersion: 'Sync Centre version',
    agentVersion: 'Accord version',
    node: 'Node.js version',
    keyFingerprint: 'Key fingerprint',
    dataFolder: 'Data folder',
    dataFolderSize: 'Data folder size',
    olderAgent:
      'This tablet runs an older Accord: its version and data folder are not reported. Everything else below is.',
    counts: 'Changes held',
    countNames: {
      total: 'All',
      pending: 'Waiting for the server',
      accepted: 'Accepted',
      deadletter: 'Need attention',
      resolved: 'Resolved',
      outbox: 'In this tablet’s outbox',
    },
    integrity: 'Integrity',
    holes: (device, missing) => `Tablet ${device} is missing ${plural(missing, 'change', 'changes')}`,
    noHoles: 'No missing changes.',
    withheld: (device, from, reason, held) =>
      `Changes of tablet ${device} from number ${from} are held back (${reason}): ${held} held`,
    noWithheld: 'Nothing is held back.',
    clockSkew: (device, hours) => `Clock of device ${device} is off by ${plural(hours, 'hour', 'hours')}`,
    noClockSkews: 'Every clock agrees with the server.',
    ownHistory: 'Own history check',
    setAside: (path) => `A damaged database was set aside at ${path}`,
    network: 'Network',
    goOffline: 'Take this tablet offline',
    goOnline: 'Bring this tablet back online',
    wentOffline: 'This tablet is offline: changes are kept here and sent when it is back online.',
    wentOnline: 'This tablet is back online.',
  },
  audit: {
    title: 'Audit trail',
    empty: 'No sync or admin action yet.',
    at: 'When',
    action: 'Action',
    target: 'About',
    outcome: 'Outcome',
    detail: 'Detail',
    actions: {
      retry: 'Retry',
      'retry-all': 'Retry conflicted',
      discard: 'Leave server version',
      amend: 'Edit and send again',
      record: 'Record',
      network: 'Network switch',
      request: 'Request',
      elevate: 'Admin password',
      integrity: 'Compare with the server',
      resubmit: 'Re-submit to server',
    },
    outcomes: { recorded: 'recorded', done: 'done', replayed: 'answered again', refused: 'refused' },
  },
  events: {
    PatientRegistered: (d) =>
      `Registration: ${str(d['givenName'])} ${str(d['familyName'])}, born ${str(d['birthDate'])}`,
    PatientDemographicsUpdated: (d, p) => `Patient details changed for ${p(d['patientId'])}`,
    PatientsMerged: (d, p) => `Patients merged: ${p(d['mergedId'])} into ${p(d['survivorId'])}`,
    PatientCheckedIn: (d, p) => `Check-in: ${p(d['patientId'])}`,
    EncounterStarted: (d) => `Consultation started (${str(d['encounterId'])})`,
    EncounterCompleted: (d) => `Check-out (${str(d['encounterId'])})`,
    EncounterCancelled: (d) => `Visit cancelled (${str(d['encounterId'])})`,
    AppointmentScheduled: (d, p) =>
      `Appointment: ${str(d['antigen'])} dose ${str(d['dose'])} for ${p(d['patientId'])} on ${str(d['date'])}`,
    AppointmentCancelled: (d) => `Appointment cancelled (${str(d['appointmentId'])})`,
    VaccinationAdministered: (d, p) =>
      `Vaccination: ${str(d['antigen'])} dose ${str(d['dose'])} for ${p(d['patientId'])}, lot ${str(d['lot'])}`,
    StockReceived: (d) =>
      `Stock received: ${str(d['quantity'])} doses of ${str(d['antigen'])}, lot ${str(d['lot'])}`,
    StockAdjusted: (d) => `Stock corrected: lot ${str(d['lot'])} by ${str(d['delta'])}`,
    StockConsumed: (d) => `Stock used: ${str(d['quantity'])} doses of lot ${str(d['lot'])}`,
    RetryRequested: (d) => `Retry of ${str(d['target'])}`,
    DeadletterDiscarded: (d) => `Server version kept for ${str(d['target'])}`,
  },
  unknownEvent: (type) => `Change of kind ${type}`,
  patients: {
    title: 'Patients',
    register: 'Register a patient',
    nationalId: 'National id',
    givenName: 'Given name',
    familyName: 'Family name',
    birthDate: 'Date of birth',
    sex: 'Sex',
    sexes: { female: 'female', male: 'male', other: 'other', unknown: 'unknown' },
    list: 'Registered patients',
    name: 'Name',
    checkIn: 'Check in',
    checkedIn: (name) => `${name} is in the queue.`,
    empty: 'No patient yet.',
    edit: 'Edit details',
    editTitle: (name) => `Edit the details of ${name}`,
    saveChanges: 'Save changes',
    nothingChanged: 'Nothing was changed.',
    search: 'Search',
    searchHint: 'Part of a name, a national id or a patient id.',
    noMatch: 'No patient matches.',
    showing: (shown, total) => `Showing ${shown} of ${total}.`,
    showMore: 'Show more',
  },
  queue: {
    title: (day) => `Queue of ${day}`,
    waiting: 'Waiting',
    inProgress: 'In consultation',
    done: 'Done',
    start: 'Start consultation',
    checkOut: 'Check out',
    empty: 'Nobody.',
  },
  vaccinate: {
    title: 'Record a vaccination',
    patient: 'Patient',
    choose: 'Choose…',
    antigen: 'Vaccine',
    dose: 'Dose',
    lot: 'Lot',
    date: 'Date',
    record: 'Record vaccination',
    warning: (reason) => `Saved, but the server will probably refuse it: ${reason}`,
    narrow: (shown, total) => `${shown} of ${total} patients listed: search to narrow the list.`,
  },
  stock: {
    title: 'Stock',
    receive: 'Receive stock',
    lot: 'Lot',
    antigen: 'Vaccine',
    quantity: 'Doses',
    expiry: 'Expiry date',
    balance: 'In stock',
    lots: 'Lots',
    empty: 'No lot yet.',
  },
  adjust: {
    title: 'Adjust stock',
    intro:
      'Correct a lot’s balance after a count, breakage or a cold-chain failure. Received stock is recorded on the Stock screen.',
    lot: 'Lot',
    choose: 'Choose…',
    lotOption: (lot, antigen, balance) => `${lot} (${antigen}, ${balance} in stock)`,
    direction: 'Correction',
    remove: 'Remove doses',
    add: 'Add doses',
    doses: 'Doses',
    reason: 'Reason',
    reasons: {
      count: 'counted again',
      broken: 'broken or spoiled',
      coldChain: 'cold chain failure',
      expired: 'expired',
      other: 'other',
    },
    note: 'Details',
    noteHint: 'Optional: what happened, for the audit trail.',
    preview: (lot, balance, after) => `Lot ${lot}: ${balance} in stock, ${after} after this correction.`,
    belowZero: 'This would take the lot below zero: the server will refuse it.',
    record: 'Record correction',
    empty: 'No lot yet: receive stock first.',
  },
  integrity: {
    title: 'Compare and re-submit',
    intro:
      'Compares, day by day, the changes this tablet holds with the ones the server holds. If the server lost some (for example after it was restored from an older backup), re-submit them.',
    from: 'From (UTC day)',
    to: 'To (UTC day)',
    compare: 'Compare with the server',
    comparing: 'Comparing…',
    day: 'Day (UTC)',
    device: 'This tablet',
    relay: 'Server',
    match: 'Same?',
    same: 'same',
    differs: 'differs',
    allMatch: (days) => `The server holds the same changes as this tablet on ${plural(days, 'day', 'days')}.`,
    someDiffer: (days) =>
      `${plural(days, 'day differs', 'days differ')}: re-submit ${days === 1 ? 'it' : 'them'} below.`,
    noDays: 'No change on either side in these days.',
    resubmitTitle: 'Re-submit to server',
    resubmitIntro:
      'Sends again every change of the differing days that the server does not hold. Needs the admin password.',
    adminPassword: 'Admin password',
    resubmit: 'Re-submit to server',
    elevating: 'Checking the admin password…',
    progress: (done, total, day) => `Re-submitting: day ${done} of ${total} (${day})…`,
    nothingToResubmit: 'Nothing to re-submit: the server holds every change of these days.',
    resubmitted: (resent, days) =>
      `Done: ${plural(resent, 'change', 'changes')} sent again over ${plural(days, 'day', 'days')}. They reach the server with the next sync.`,
    missing: 'Missing on the server',
    resent: 'Sent again',
  },
  appointments: {
    title: 'Appointments',
    book: 'Book an appointment',
    date: 'Date',
    upcoming: 'Upcoming',
    missed: 'Missed',
    empty: 'None.',
  },
  counters: {
    title: 'Counters',
    intro: 'Every tablet of the facility shows the same numbers once it holds the same changes.',
    name: 'Counter',
    value: 'Value',
    empty: 'No counter yet.',
  },
};

/** The catalogue for `lang` (a BCP 47 tag); English when there is no translation for it. */
export function syncCentreStrings(lang: string | undefined): SyncCentreStrings {
  const catalogues: Readonly<Record<string, SyncCentreStrings>> = { en };
  const base = (lang ?? 'en').toLowerCase().split('-')[0] ?? 'en';
  return catalogues[base] ?? en;
}
