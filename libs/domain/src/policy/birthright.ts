import { AttributeName, Attributes, isAttributeName } from '../identity/attributes';

/**
 * Birthright roles: rules over attributes that grant roles by virtue of who someone is. A policy is
 * validated once at start; evaluation is pure and allocation-light because it runs on every hire,
 * mover event and reconcile.
 */
export type Condition =
  | { attribute: AttributeName; equals: string; ignoreCase?: boolean }
  | { attribute: AttributeName; in: string[]; ignoreCase?: boolean }
  | { attribute: AttributeName; prefix: string; ignoreCase?: boolean }
  | { attribute: AttributeName; regex: string; ignoreCase?: boolean }
  | { attribute: AttributeName; exists: boolean }
  | { and: Condition[] }
  | { or: Condition[] }
  | { not: Condition };

export interface BirthrightRule {
  id: string;
  description?: string;
  when: Condition;
  roles: string[];
}

export interface BirthrightPolicy {
  version: 1;
  /** Least-privilege roles everyone with an active account gets, granted with rule id `default`. */
  defaultRoles: string[];
  rules: BirthrightRule[];
}

export const DEFAULT_RULE_ID = 'default';

export class PolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyError';
  }
}

const ROLE_RE = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;
const RULE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

type Compiled = (a: Attributes) => boolean;

/** Validates an untrusted policy document and throws a PolicyError naming the bad rule and field. */
export function parseBirthrightPolicy(doc: unknown): BirthrightPolicy {
  const fail = (where: string, what: string): never => {
    throw new PolicyError(`birthright policy: ${where}: ${what}`);
  };
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) fail('document', 'must be an object with version, defaultRoles and rules');
  const d = doc as Record<string, unknown>;
  if (d.version !== 1) fail('version', 'must be 1');
  const defaultRoles = d.defaultRoles ?? [];
  if (!Array.isArray(defaultRoles) || !defaultRoles.every((r) => typeof r === 'string' && ROLE_RE.test(r))) {
    fail('defaultRoles', 'must be a list of role names (letters, digits, . _ : @ / -)');
  }
  if (!Array.isArray(d.rules)) fail('rules', 'must be a list');
  const seen = new Set<string>();
  const rules = (d.rules as unknown[]).map((raw, i) => {
    const r = raw as Record<string, unknown>;
    const id = r && typeof r === 'object' ? r.id : undefined;
    const where = typeof id === 'string' ? `rule '${id}' (rules[${i}])` : `rules[${i}]`;
    if (!r || typeof r !== 'object') fail(where, 'must be an object');
    if (typeof id !== 'string' || !RULE_ID_RE.test(id)) fail(where, 'id must be a short identifier');
    if (id === DEFAULT_RULE_ID) fail(where, `id '${DEFAULT_RULE_ID}' is reserved for defaultRoles`);
    if (seen.has(id as string)) fail(where, 'duplicate rule id');
    seen.add(id as string);
    if (!Array.isArray(r.roles) || r.roles.length === 0 || !r.roles.every((x) => typeof x === 'string' && ROLE_RE.test(x))) {
      fail(where, 'roles must be a non-empty list of role names');
    }
    validateCondition(r.when, `${where}: when`, fail);
    return {
      id: id as string,
      description: typeof r.description === 'string' ? r.description : undefined,
      when: r.when as Condition,
      roles: r.roles as string[],
    };
  });
  return { version: 1, defaultRoles: defaultRoles as string[], rules };
}

function validateCondition(c: unknown, where: string, fail: (w: string, m: string) => never): void {
  if (!c || typeof c !== 'object' || Array.isArray(c)) fail(where, 'must be a condition object');
  const o = c as Record<string, unknown>;
  const keys = Object.keys(o);
  if ('and' in o || 'or' in o) {
    const op = 'and' in o ? 'and' : 'or';
    if (keys.length !== 1) fail(where, `'${op}' must stand alone`);
    const list = o[op];
    if (!Array.isArray(list) || list.length === 0) fail(`${where}.${op}`, 'must be a non-empty list');
    (list as unknown[]).forEach((x, i) => validateCondition(x, `${where}.${op}[${i}]`, fail));
    return;
  }
  if ('not' in o) {
    if (keys.length !== 1) fail(where, `'not' must stand alone`);
    validateCondition(o.not, `${where}.not`, fail);
    return;
  }
  if (typeof o.attribute !== 'string') fail(where, 'needs an attribute (or and/or/not)');
  if (!isAttributeName(o.attribute as string)) fail(where, `unknown attribute '${String(o.attribute)}'`);
  const ops = ['equals', 'in', 'prefix', 'regex', 'exists'].filter((k) => k in o);
  if (ops.length !== 1) fail(where, 'needs exactly one of equals, in, prefix, regex, exists');
  const extra = keys.filter((k) => !['attribute', 'ignoreCase', ...ops].includes(k));
  if (extra.length) fail(where, `unknown field '${extra[0]}'`);
  const op = ops[0];
  if ((op === 'equals' || op === 'prefix') && typeof o[op] !== 'string') fail(`${where}.${op}`, 'must be a string');
  if (op === 'in' && (!Array.isArray(o.in) || !o.in.every((x) => typeof x === 'string'))) fail(`${where}.in`, 'must be a list of strings');
  if (op === 'exists' && typeof o.exists !== 'boolean') fail(`${where}.exists`, 'must be true or false');
  if (op === 'regex') {
    if (typeof o.regex !== 'string') fail(`${where}.regex`, 'must be a string');
    try {
      new RegExp(o.regex as string);
    } catch (e) {
      fail(`${where}.regex`, `invalid regular expression: ${(e as Error).message}`);
    }
  }
  if ('ignoreCase' in o && typeof o.ignoreCase !== 'boolean') fail(`${where}.ignoreCase`, 'must be true or false');
}

function compile(c: Condition): Compiled {
  if ('and' in c) {
    const parts = c.and.map(compile);
    return (a) => parts.every((p) => p(a));
  }
  if ('or' in c) {
    const parts = c.or.map(compile);
    return (a) => parts.some((p) => p(a));
  }
  if ('not' in c) {
    const inner = compile(c.not);
    return (a) => !inner(a);
  }
  const attr = c.attribute;
  if ('exists' in c) return (a) => (a[attr] !== undefined && a[attr] !== '') === c.exists;
  if ('regex' in c) {
    const re = new RegExp(c.regex, c.ignoreCase ? 'i' : '');
    return (a) => a[attr] !== undefined && re.test(a[attr] as string);
  }
  const fold = c.ignoreCase ? (s: string) => s.toLowerCase() : (s: string) => s;
  if ('equals' in c) {
    const want = fold(c.equals);
    return (a) => a[attr] !== undefined && fold(a[attr] as string) === want;
  }
  if ('in' in c) {
    const set = new Set(c.in.map(fold));
    return (a) => a[attr] !== undefined && set.has(fold(a[attr] as string));
  }
  const p = fold(c.prefix);
  return (a) => a[attr] !== undefined && fold(a[attr] as string).startsWith(p);
}

/** A validated policy with its conditions compiled once. */
export class BirthrightEngine {
  private readonly compiled: { id: string; test: Compiled; roles: string[] }[];

  constructor(readonly policy: BirthrightPolicy) {
    this.compiled = policy.rules.map((r) => ({ id: r.id, test: compile(r.when), roles: r.roles }));
  }

  static from(doc: unknown): BirthrightEngine {
    return new BirthrightEngine(parseBirthrightPolicy(doc));
  }

  /** Role -> id of the first rule granting it (default roles first). */
  evaluate(attributes: Attributes): Map<string, string> {
    const out = new Map<string, string>();
    for (const role of this.policy.defaultRoles) out.set(role, DEFAULT_RULE_ID);
    for (const rule of this.compiled) {
      if (!rule.test(attributes)) continue;
      for (const role of rule.roles) if (!out.has(role)) out.set(role, rule.id);
    }
    return out;
  }
}

export const EMPTY_POLICY: BirthrightPolicy = { version: 1, defaultRoles: [], rules: [] };
