import { pino, type DestinationStream, type Level, type Logger } from 'pino';
import { AccordError, ErrorCode } from '@accord/protocol';

/** The relay's structured logger (pino): one JSON object per line. */
export type RelayLogger = Logger;

/** Log levels accepted by {@link createRelayLogger}, most verbose first; `silent` logs nothing. */
export const RELAY_LOG_LEVELS: readonly (Level | 'silent')[] = [
  'trace',
  'debug',
  'info',
  'warn',
  'error',
  'fatal',
  'silent',
];

/** Options of {@link createRelayLogger}. */
export interface RelayLoggerOptions {
  /** Minimum level (default `info`). */
  readonly level?: string;
  /**
   * Where lines go: a file descriptor (default 1, stdout), a file path (appended to, folders
   * created), or a stream (tests pass one to capture lines).
   */
  readonly destination?: number | string | DestinationStream;
}

/**
 * Paths redacted from every line: secrets must never reach a log (enrollment tokens, passwords,
 * credentials in headers).
 */
export const REDACTED_PATHS: readonly string[] = [
  'password',
  'token',
  '*.password',
  '*.token',
  'req.headers.authorization',
  'headers.authorization',
];

/**
 * Creates the relay's logger: JSON lines with an ISO time, the level as a word and
 * `name: 'accord-relay'`.
 *
 * @remarks Writes synchronously to descriptors and files, so the last lines before a crash or an
 * exit are not lost in a buffer. Secrets under {@link REDACTED_PATHS} are replaced by `[redacted]`.
 * @throws AccordError `RELAY_CONFIG_INVALID` for an unknown level.
 */
export function createRelayLogger(options: RelayLoggerOptions = {}): RelayLogger {
  const level = options.level ?? 'info';
  if (!(RELAY_LOG_LEVELS as readonly string[]).includes(level)) {
    throw new AccordError(ErrorCode.RELAY_CONFIG_INVALID, `unknown log level ${JSON.stringify(level)}`, {
      details: { level, levels: RELAY_LOG_LEVELS },
    });
  }
  const target = options.destination ?? 1;
  const destination =
    typeof target === 'number' || typeof target === 'string'
      ? pino.destination({ dest: target, sync: true, mkdir: typeof target === 'string' })
      : target;
  return pino(
    {
      name: 'accord-relay',
      level,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    },
    destination,
  );
}
