import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import pino, { DestinationStream, Logger } from 'pino';

export const CORRELATION_HEADER = 'x-correlation-id';

// A caller's id is echoed into logs and headers: only short, plain tokens are taken as they are.
const SAFE_ID = /^[A-Za-z0-9._:@\/+=-]{1,128}$/;

/** The caller's correlation id when it is a safe token, else a fresh UUID. */
export function correlationIdOf(req: Pick<IncomingMessage, 'headers'>): string {
  const h = req.headers[CORRELATION_HEADER];
  const v = Array.isArray(h) ? h[0] : h;
  return typeof v === 'string' && SAFE_ID.test(v) ? v : randomUUID();
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** One JSON object per line on stdout (or the given stream): what log shippers read without parsing rules. */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'idlc-api' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Credentials never reach a log line, even if someone logs a whole request.
      redact: ['req.headers.authorization', 'req.headers["x-idlc-signature"]', 'req.headers.cookie'],
    },
    destination,
  );
}
