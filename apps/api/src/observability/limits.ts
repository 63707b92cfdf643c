import type { NestFastifyApplication } from '@nestjs/platform-fastify';

const KiB = 1024;
const MiB = 1024 * KiB;

/** The largest body any route takes; the server-wide limit, so nothing bigger is ever read. */
export const MAX_BODY_BYTES = 4 * MiB;
export const MAX_JSON_DEPTH = 32;

/** Body limit by route: HR batches are big, SCIM bodies medium, a login small, everything else tiny. */
export function bodyLimitFor(url: string): number {
  if (url === '/hr/events') return MAX_BODY_BYTES;
  if (url.startsWith('/scim/')) return 1 * MiB;
  if (url === '/sso/login') return 256 * KiB;
  return 64 * KiB;
}

/** `{` and `[`. */
const OPENING_BRACKETS = [0x7b, 0x5b] as const;

/**
 * True when the JSON text nests objects/arrays deeper than `max`. A byte scan before parsing, so a
 * hostile payload costs a bracket count that stops past `max`, then one pass, and no allocation;
 * UTF-8 continuation bytes never equal `"` or `\`.
 */
export function jsonDepthExceeds(buf: Buffer, max = MAX_JSON_DEPTH): boolean {
  // Most bodies hold fewer brackets than the limit, so cannot nest past it: counting them with
  // indexOf (native) is far cheaper than walking every byte.
  let brackets = 0;
  for (const open of OPENING_BRACKETS) {
    for (let i = buf.indexOf(open); i !== -1 && brackets <= max; i = buf.indexOf(open, i + 1)) brackets++;
  }
  if (brackets <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** An error Fastify hands to the global filters, which render it as problem+json (or SCIM errors). */
function clientError(statusCode: number, code: string, message: string): Error {
  return Object.assign(new Error(message), { statusCode, code });
}

/**
 * Per-route body limits, a JSON depth limit and strict content types. Call before app.init():
 * the JSON parsers registered here replace Nest's (keeping `rawBody` for the HR signature), and
 * only JSON media types stay registered, so anything else is a 415 before its body is read.
 */
export function installInputLimits(app: NestFastifyApplication): void {
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onRoute', (route) => {
    route.bodyLimit ??= bodyLimitFor(route.url ?? route.path);
  });
  const json = fastify.getDefaultJsonParser('error', 'error');
  // SCIM clients send application/scim+json (RFC 7644 3.1): parsed like JSON, with the same guards.
  app.useBodyParser(['application/json', 'application/scim+json'], {}, (req, body, done) => {
    if (jsonDepthExceeds(body)) return done(clientError(400, 'IDLC_JSON_TOO_DEEP', `JSON nested deeper than ${MAX_JSON_DEPTH} levels`), undefined);
    json(req as any, body as any, done);
  });
  // Fastify parses text/plain by default; no route takes it. Form posts are not registered either
  // (Nest's urlencoded parser is skipped once a body parser is set).
  fastify.removeContentTypeParser('text/plain');
}
