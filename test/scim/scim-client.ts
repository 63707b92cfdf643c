import { startTestApp, TestApp } from '../support/app';

export const SCIM_TOKEN = 'scim-test-token-0123456789abcdef';
export const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const SEARCH = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';

export interface ScimResponse {
  status: number;
  body: any;
  headers: Headers;
  text: string;
}

/** A SCIM client speaking to the real server over HTTP, the way an IdP does. */
export interface ScimClient {
  t: TestApp;
  base: string;
  req(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ScimResponse>;
  /** Every event of an identity, from the audit API. */
  history(id: string): Promise<any[]>;
  close(): Promise<void>;
}

export async function startScim(env: Record<string, string> = {}): Promise<ScimClient> {
  const t = await startTestApp({ SCIM_TOKENS: `other-token-0123456789,${SCIM_TOKEN}`, ...env });
  const base = `${t.url}/scim/v2`;
  return {
    t,
    base,
    async req(method, path, body, headers = {}) {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${SCIM_TOKEN}`,
          ...(body !== undefined ? { 'content-type': 'application/scim+json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: any = undefined;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = text;
      }
      return { status: res.status, body: parsed, headers: res.headers, text };
    },
    async history(id) {
      const r = await t.get(`/identities/${id}/history`);
      if (r.status !== 200) throw new Error(`history ${id}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.events;
    },
    close: () => t.close(),
  };
}

export const userBody = (userName: string, extra: Record<string, unknown> = {}) => ({
  schemas: [USER],
  userName,
  name: { givenName: 'Ada', familyName: 'Lovelace' },
  emails: [{ value: `${userName}`, type: 'work', primary: true }],
  active: true,
  ...extra,
});
