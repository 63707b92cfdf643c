import type { EventStore, StoredEvent } from '@idlc/event-store';
import type { SqlDatabase } from '@idlc/sql';
import { ChildProcess, spawn } from 'node:child_process';
import { request, Agent } from 'node:http';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '../..');
export const API_MAIN = join(ROOT, 'dist/apps/api/src/main.js');
export const WORKER_MAIN = join(ROOT, 'dist/apps/worker/src/main.js');

export interface Spawned {
  child: ChildProcess;
  /** The URL the process printed once it was listening. */
  url: string;
  /** Exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  output(): string;
}

/** Runs a built entry point (`npm start` / `npm run start:worker`) and resolves once it prints the URL it listens on. */
export function spawnBuilt(main: string, env: Record<string, string>, listening = /(?:listening on|health and \/metrics on) (http:\/\/\S+)/): Promise<Spawned> {
  const child = spawn(process.execPath, [main], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let out = '';
  return new Promise((resolveP, reject) => {
    const timer = setTimeout(() => reject(new Error(`${main} did not start:\n${out}`)), 30000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = listening.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveP({ child, url: m[1].replace('localhost', '127.0.0.1').replace(/\)$/, ''), exited, output: () => out });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${main} exited with ${code} before listening:\n${out}`));
    });
  });
}

export type HttpOutcome = { status: number; body: string } | { error: string };

/**
 * One HTTP request through node:http, so a test picks its connection: a keep-alive `agent`
 * reuses sockets, `agent: false` opens a new one. Connection failures come back as `{ error }`.
 */
export function httpRequest(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string; agent?: Agent | false; timeoutMs?: number } = {}): Promise<HttpOutcome> {
  return new Promise((resolveP) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent, timeout: opts.timeoutMs ?? 60000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolveP({ status: res.statusCode!, body }));
      res.on('error', (e) => resolveP({ error: String(e) }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => resolveP({ error: (e as NodeJS.ErrnoException).code ?? String(e) }));
    req.end(opts.body);
  });
}

/** Every stored event in global order, paged (for comparing a store after a crash or a stop). */
export async function readAllEvents(engine: { store: Pick<EventStore, 'readAll'> }): Promise<StoredEvent[]> {
  const all: StoredEvent[] = [];
  for (;;) {
    const page = await engine.store.readAll({ fromPosition: all.length ? all[all.length - 1].position : 0, maxCount: 5000 });
    if (!page.length) return all;
    all.push(...page);
  }
}

/** The read models a restart must reproduce exactly, in a stable order. */
export async function dumpProjections(engine: { readDb: Pick<SqlDatabase, 'all'> }) {
  const q = (sql: string) => engine.readDb.all<Record<string, unknown>>(sql);
  return {
    identities: await q('SELECT * FROM identities ORDER BY identity_id'),
    roleAssignments: await q('SELECT * FROM role_assignments ORDER BY identity_id, role, source_key, granted_position'),
    auditTimeline: await q('SELECT * FROM audit_timeline ORDER BY position'),
  };
}
