// js-yaml 4 ships no types; this declares the one function and schema the scenario parser uses.
declare module 'js-yaml' {
  /** Parses one YAML document; throws a YAMLException (with `mark`) on bad syntax. */
  export function load(text: string, options?: { schema?: unknown; filename?: string }): unknown;
  /** Only JSON types: strings stay strings ("2d", "no"), so a scenario means the same in YAML and JSON. */
  export const JSON_SCHEMA: unknown;
}
