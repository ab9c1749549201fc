// The shapes of the agent's answers that the page reads (see libs/device's README for the routes).
// Declared here rather than imported: the page is browser code and @accord/device is Node's.

/** `event: status` of `GET /api/stream`. */
export interface LiveStatus {
  readonly online: boolean;
  readonly relay: { readonly connected: boolean; readonly lastContact: string | null } | null;
  readonly peers: { readonly connected: number; readonly known: number };
  readonly pending: number;
  readonly outbox: number;
  readonly needsAttention: number;
  readonly confirmedSeq: number;
}

/** A signed event as the API shows it. */
export interface ApiEvent {
  readonly id: string;
  readonly device: string;
  readonly seq: number;
  readonly hlc: string;
  readonly type: string;
  readonly facility?: string;
  readonly subject: { readonly kind: string; readonly id: string };
  readonly deps?: readonly string[];
  readonly supersedes?: string;
  readonly data: unknown;
}

/** `GET /api/events/:id` and the rows of `GET /api/outbox`. */
export interface EventInfo {
  readonly event: ApiEvent;
  readonly status: string;
  readonly verdict?: ApiEvent;
  /** The event that resolved it; `null` (newer agents) or absent when nothing has. */
  readonly resolvedBy?: string | null;
  /** Every verdict about it, oldest first (newer agents only; older ones send the latest alone). */
  readonly verdicts?: readonly VerdictRecord[];
  readonly verdictData?: {
    readonly outcome: 'accepted' | 'deadletter';
    readonly seq?: number;
    readonly code?: number;
    readonly rule?: string;
    readonly reason?: string;
    readonly details?: { readonly [key: string]: unknown };
    readonly ruleSet?: string;
  };
}

/** One entry of `verdicts` in `GET /api/events/:id`. */
export interface VerdictRecord {
  readonly verdictId: string;
  readonly seq: number;
  readonly outcome: 'accepted' | 'deadletter';
  readonly code?: number;
  readonly rule?: string;
  readonly reason?: string;
  readonly details?: { readonly [key: string]: unknown };
  readonly at: string | number;
}

/** One row of `GET /api/deadletters`. */
export interface DeadletterInfo {
  readonly id: string;
  readonly type: string;
  readonly device: string;
  readonly seq: number;
  readonly hlc: string;
  readonly data: unknown;
  readonly code: number | null;
  readonly rule: string | null;
  readonly reason: string | null;
  readonly details: { readonly [key: string]: unknown } | null;
  readonly verdictAt: string;
}

/** One row of `GET /api/audit`. */
export interface AuditEntry {
  readonly at: string;
  readonly action: string;
  readonly target?: string;
  readonly event?: string;
  readonly outcome: string;
  readonly detail?: { readonly [key: string]: unknown };
}

/** `GET /api/status` (the parts the Environment screen shows). */
export interface FullStatus {
  readonly device: string;
  readonly name: string;
  readonly facility: string;
  readonly online: boolean;
  readonly counts: { readonly [key: string]: number };
  readonly relay: { readonly url: string | null; readonly id: string } | null;
  readonly confirmedSeq: number;
  readonly integrity: {
    readonly holes: readonly { readonly device: string; readonly missing: readonly number[] }[];
    readonly own?: { readonly check?: string };
    readonly setAside?: { readonly path: string } | null;
  };
  readonly withheld: readonly {
    readonly device: string;
    readonly from: number;
    readonly reason: string;
    readonly heldBack: number;
  }[];
  readonly clockSkews: readonly { readonly device: string; readonly offByHours: number }[];
}

/**
 * `GET /api/environment` (newer agents; older ones answer 404). Only the parts the page shows are
 * typed; the rest is read defensively.
 */
export interface EnvironmentInfo {
  readonly device?: unknown;
  readonly facility?: unknown;
  readonly keyFingerprint?: string;
  readonly version?: string;
  readonly node?: string;
  readonly relay?: unknown;
  readonly dataFolder?: string;
  readonly dataFolderBytes?: number;
  readonly counts?: { readonly [key: string]: number };
  readonly integrity?: unknown;
}

/** One day of `GET /api/integrity`. */
export interface IntegrityDay {
  readonly day: string;
  readonly device: number;
  readonly relay: number;
  readonly match: boolean;
}

/** `GET /api/integrity`: this tablet's events against the relay's, per UTC day. */
export interface IntegrityReport {
  readonly from: string;
  readonly to: string;
  readonly zone: string;
  readonly match: boolean;
  readonly days: readonly IntegrityDay[];
}

/** `POST /api/resubmit`: per differing day, what the relay lacked and what was sent again. */
export interface ResubmitResult {
  readonly from: string;
  readonly to: string;
  readonly days: readonly { readonly day: string; readonly missing: number; readonly resent: number }[];
}

/** A patient of `GET /api/patients`. */
export interface Patient {
  readonly id: string;
  readonly nationalId: string;
  readonly givenName: string;
  readonly familyName: string;
  readonly birthDate: string;
  readonly sex: string;
}

/** A lot of `GET /api/stock`. */
export interface Lot {
  readonly lot: string;
  readonly antigen: string;
  readonly expiry: string;
  readonly balance: number;
}

/** An encounter of `GET /api/queue`. */
export interface Encounter {
  readonly encounterId: string;
  readonly patientId: string;
  readonly state: string;
}

/** An appointment of `GET /api/appointments`. */
export interface Appointment {
  readonly appointmentId: string;
  readonly patientId: string;
  readonly antigen: string;
  readonly dose: number;
  readonly date: string;
}
