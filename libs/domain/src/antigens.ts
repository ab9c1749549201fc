/** One antigen's schedule: how many doses, the minimum age for dose 1 and the minimum days between doses. */
export interface AntigenSchedule {
  readonly doses: number;
  readonly minAgeDays: number;
  readonly minIntervalDays: number;
}

/**
 * The antigen schedule the rules enforce (a simplified EPI schedule).
 *
 * @remarks Keys are the antigen names used in events (case-sensitive). Dose 1 may not be given
 * before `minAgeDays` of age; dose n+1 not before `minIntervalDays` after dose n (the dose ON
 * that day is allowed). Birth doses of OPV ("OPV0") are not modelled. Changing this table is a
 * rule-set change: bump `RULE_SET_VERSION` in `@accord/rules`.
 */
export const ANTIGEN_SCHEDULE: Readonly<Record<string, AntigenSchedule>> = Object.freeze({
  BCG: Object.freeze({ doses: 1, minAgeDays: 0, minIntervalDays: 0 }),
  OPV: Object.freeze({ doses: 3, minAgeDays: 42, minIntervalDays: 28 }),
  Penta: Object.freeze({ doses: 3, minAgeDays: 42, minIntervalDays: 28 }),
  PCV: Object.freeze({ doses: 3, minAgeDays: 42, minIntervalDays: 28 }),
  Rota: Object.freeze({ doses: 2, minAgeDays: 42, minIntervalDays: 28 }),
  Measles: Object.freeze({ doses: 2, minAgeDays: 270, minIntervalDays: 28 }),
});

/** The schedule of `antigen`, or undefined when it is not in {@link ANTIGEN_SCHEDULE}. */
export function antigenSchedule(antigen: string): AntigenSchedule | undefined {
  return Object.hasOwn(ANTIGEN_SCHEDULE, antigen) ? ANTIGEN_SCHEDULE[antigen] : undefined;
}
