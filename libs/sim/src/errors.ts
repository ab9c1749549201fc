/**
 * Stable error codes of the simulator, each documented under "Errors" in the README.
 *
 * @remarks They belong in `ErrorCode` of `@accord/protocol` (one list for the whole system);
 * they live here until that list gains them, under the same SCREAMING_SNAKE, prefixed form.
 */
export const SimErrorCode = {
  /** A scenario (object, JSON or YAML text) is malformed or out of range; `details.issues` says where. */
  SIM_SCENARIO_INVALID: 'SIM_SCENARIO_INVALID',
  /** A scenario names a node (device, relay) that the scenario does not have. */
  SIM_UNKNOWN_NODE: 'SIM_UNKNOWN_NODE',
  /** The scheduler was asked to go back in time or to run an event at a non-finite time. */
  SIM_BAD_TIME: 'SIM_BAD_TIME',
  /** One or more runs of a sweep failed; `details.failures` lists them (run index and error). */
  SIM_SWEEP_RUN_FAILED: 'SIM_SWEEP_RUN_FAILED',
  /** A results file (`runs.jsonl`) holds a line that is not a sweep result; `details.line` names it. */
  SIM_RESULTS_INVALID: 'SIM_RESULTS_INVALID',
} as const;
/** One of {@link SimErrorCode}. */
export type SimErrorCode = (typeof SimErrorCode)[keyof typeof SimErrorCode];

/** The simulator's operational failure: a stable `code`, a message and JSON-safe `details`. */
export class SimError extends Error {
  readonly code: SimErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: SimErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'SimError';
    this.code = code;
    this.details = details;
  }

  /** `{code, message, details}`, as a CLI prints it. */
  toJSON(): { code: SimErrorCode; message: string; details: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}
