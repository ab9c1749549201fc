import { AccordError, ErrorCode } from '@accord/protocol';

/**
 * Stable error codes of the simulator, each documented under "Errors" in the README: the `SIM_*`
 * entries of `ErrorCode` (`@accord/protocol`, the one list of the whole system), named here so a
 * caller of the simulator needs no second import.
 */
export const SimErrorCode = {
  /** A scenario (object, JSON or YAML text) is malformed or out of range; `details.issues` says where. */
  SIM_SCENARIO_INVALID: ErrorCode.SIM_SCENARIO_INVALID,
  /** A scenario names a node (device, relay) that the scenario does not have. */
  SIM_UNKNOWN_NODE: ErrorCode.SIM_UNKNOWN_NODE,
  /** The scheduler was asked to go back in time or to run an event at a non-finite time. */
  SIM_BAD_TIME: ErrorCode.SIM_BAD_TIME,
  /** One or more runs of a sweep failed; `details.failures` lists them (run index and error). */
  SIM_SWEEP_RUN_FAILED: ErrorCode.SIM_SWEEP_RUN_FAILED,
  /** A results file (`runs.jsonl`) holds a line that is not a sweep result; `details.line` names it. */
  SIM_RESULTS_INVALID: ErrorCode.SIM_RESULTS_INVALID,
} as const;
/** One of {@link SimErrorCode}. */
export type SimErrorCode = (typeof SimErrorCode)[keyof typeof SimErrorCode];

/**
 * The simulator's operational failure: an {@link AccordError} (so the CLI and every other caller
 * that handles Accord's one error class prints its code) whose code is one of {@link SimErrorCode}.
 */
export class SimError extends AccordError {
  declare readonly code: SimErrorCode;

  constructor(code: SimErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(code, message, { details });
    this.name = 'SimError';
  }

  /** `{code, message, details}`, as a CLI prints it. */
  override toJSON(): { code: SimErrorCode; message: string; details: Readonly<Record<string, unknown>> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}
