// Data calls to the audit API with the audit:read bearer token kept in this tab (sessionStorage).
const KEY = 'idlc.auditToken';

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t) => sessionStorage.setItem(KEY, t),
  clear: () => sessionStorage.removeItem(KEY),
};

export class Unauthorized extends Error {}

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export async function api(path) {
  const headers = { accept: 'application/json' };
  const t = token.get();
  if (t) headers.authorization = `Bearer ${t}`;
  const res = await fetch(path, { headers });
  const body = await res.json().catch(() => undefined);
  // 403: a valid credential without audit:read; the page asks for another one either way.
  if (res.status === 401 || res.status === 403) throw new Unauthorized(body && body.detail);
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

export const qs = (params) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
};
