import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AccordError, ErrorCode } from '@accord/protocol';

// Argument helpers shared by the CLI's commands.

/** A usage error: exit code 2, `CLI_USAGE` on stderr. */
export function usage(message: string): never {
  throw new AccordError(ErrorCode.CLI_USAGE, message);
}

/** Parses flags strictly; unknown flags and bad values are usage errors. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(
  args: readonly string[],
  options: T,
  positionals = false,
) {
  try {
    return parseArgs({ args: [...args], options, strict: true, allowPositionals: positionals });
  } catch (e) {
    usage(e instanceof Error ? e.message : String(e));
  }
}

/** A `--port`-style flag: 0-65535, or undefined when absent. */
export function port(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535)
    usage(`${flag} must be a port number 0-65535, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** A flag that must be present and non-empty. */
export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') usage(`${flag} is required`);
  return value;
}
