import { plainToInstance } from 'class-transformer';
import { validateSync, ValidationError } from 'class-validator';

export interface FieldError {
  field: string;
  message: string;
}

/** Flattens class-validator errors into `path: message` pairs naming each bad field. */
export function flattenErrors(errors: ValidationError[], prefix = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const e of errors) {
    const field = prefix ? (/^\d+$/.test(e.property) ? `${prefix}[${e.property}]` : `${prefix}.${e.property}`) : e.property;
    for (const m of Object.values(e.constraints ?? {})) out.push({ field, message: m });
    if (e.children?.length) out.push(...flattenErrors(e.children, field));
  }
  return out;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

/** Validates an untrusted plain object into a DTO; unknown fields are errors, not silently dropped. */
export function validateDto<T extends object>(cls: new () => T, body: unknown, prefix = ''): Validated<T> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, errors: [{ field: prefix || 'body', message: 'must be a JSON object' }] };
  }
  // class-transformer throws on a nested object with a `constructor` key (a TypeError, so a 500):
  // such keys are never valid fields, so they are refused by name before it runs.
  const bad = forbiddenKeyPath(body, prefix);
  if (bad) return { ok: false, errors: [{ field: bad, message: 'this key is not allowed' }] };
  const dto = plainToInstance(cls, body, { enableImplicitConversion: false });
  const errors = validateSync(dto as object, { whitelist: true, forbidNonWhitelisted: true, forbidUnknownValues: true });
  return errors.length ? { ok: false, errors: flattenErrors(errors, prefix) } : { ok: true, value: dto };
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Path of the first own key anywhere in a parsed JSON value that could reach an object's prototype. */
function forbiddenKeyPath(value: unknown, path: string): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const p = forbiddenKeyPath(value[i], `${path}[${i}]`);
      if (p) return p;
    }
    return undefined;
  }
  for (const k of Object.keys(value)) {
    const p = path ? `${path}.${k}` : k;
    if (FORBIDDEN_KEYS.has(k)) return p;
    const inner = forbiddenKeyPath((value as Record<string, unknown>)[k], p);
    if (inner) return inner;
  }
  return undefined;
}
