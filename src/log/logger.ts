/**
 * pino JSON logs with credentials redacted. Redaction works on known field paths (pino's
 * fast-redact) and, because secrets also hide inside free text (a URL with user:password@, an
 * error message quoting a header), every message and error text passes through `scrub`.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'uri',
  '*.uri',
  'connection.password',
  'secret',
  '*.secret',
];

const CREDENTIALS_IN_URL = /([a-z][a-z0-9+.-]*:\/\/)[^/\s:@]+:[^/\s@]+@/gi;
const BASIC_AUTH = /(basic|bearer)\s+[A-Za-z0-9+/=._-]+/gi;

/** Removes credentials from free text: `amqp://user:pass@host` and `Basic ...` headers. */
export function scrub(text: string): string {
  return text.replace(CREDENTIALS_IN_URL, '$1***:***@').replace(BASIC_AUTH, '$1 ***');
}

export interface LoggerOptions {
  /** Defaults to info. */
  level?: string;
  /** Where to write; defaults to stdout. */
  destination?: pino.DestinationStream;
  /** Exact secret values to scrub from messages (e.g. passwords read from Secrets). */
  secrets?: () => Iterable<string>;
}

export function createLogger({ level = 'info', destination, secrets }: LoggerOptions = {}): Logger {
  const scrubAll = (text: string) => {
    let out = scrub(text);
    for (const s of secrets?.() ?? []) if (s.length >= 4) out = out.split(s).join('***');
    return out;
  };
  return pino(
    {
      level,
      base: { app: 'rabbitbatch' },
      redact: { paths: REDACT_PATHS, censor: '***' },
      hooks: {
        logMethod(args, method) {
          method.apply(
            this,
            args.map((a) => (typeof a === 'string' ? scrubAll(a) : a)) as Parameters<typeof method>,
          );
        },
      },
      serializers: {
        // Whatever was logged as `err` (an Error, a string, undefined): never let the logger throw.
        err: (err: unknown) =>
          err instanceof Error
            ? { type: err.name, message: scrubAll(String(err.message)), stack: err.stack ? scrubAll(err.stack) : undefined }
            : scrubAll(String(err)),
      },
    },
    destination ?? pino.destination(1),
  );
}
