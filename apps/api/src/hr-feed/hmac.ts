import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures: `X-IDLC-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.
 * The timestamp bounds replays to the tolerance window; several secrets allow rotation.
 */
export const SIGNATURE_HEADER = 'x-idlc-signature';

export function sign(secret: string, rawBody: string | Buffer, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.`).update(rawBody).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

export function verifySignature(header: string | undefined, rawBody: Buffer | string, secrets: string[], nowMs: number, toleranceSeconds: number): SignatureCheck {
  if (!secrets.length) return { ok: false, reason: 'HR webhooks are not configured (set HR_WEBHOOK_SECRETS)' };
  if (!header) return { ok: false, reason: `missing ${SIGNATURE_HEADER} header` };
  const parts = new Map<string, string[]>();
  for (const p of header.split(',')) {
    const i = p.indexOf('=');
    if (i <= 0) continue;
    const k = p.slice(0, i).trim();
    parts.set(k, [...(parts.get(k) ?? []), p.slice(i + 1).trim()]);
  }
  const t = Number(parts.get('t')?.[0]);
  const given = parts.get('v1') ?? [];
  if (!Number.isInteger(t) || given.length === 0) return { ok: false, reason: 'malformed signature header (expected t=...,v1=...)' };
  if (Math.abs(nowMs / 1000 - t) > toleranceSeconds) return { ok: false, reason: 'signature timestamp outside the replay window' };
  for (const secret of secrets) {
    const want = Buffer.from(createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest('hex'), 'utf8');
    for (const g of given) {
      const got = Buffer.from(g, 'utf8');
      if (got.length === want.length && timingSafeEqual(got, want)) return { ok: true };
    }
  }
  return { ok: false, reason: 'signature does not match' };
}
