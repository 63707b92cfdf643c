import { Worker } from 'node:worker_threads';

/**
 * Runs in the helper thread: a connection of its own that checkpoints the WAL (PASSIVE: it never
 * waits for, nor blocks, the writer or readers) every `intervalMs` until told to stop. Plain
 * JavaScript evaluated by the worker, so it runs the same from dist/ and under ts-jest.
 */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.filename);
const stop = new Int32Array(workerData.stop);
try {
  while (Atomics.load(stop, 0) === 0) {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // SQLITE_BUSY and the like: the next round tries again.
    }
    Atomics.wait(stop, 0, 0, workerData.intervalMs);
  }
  db.pragma('wal_checkpoint(PASSIVE)');
} finally {
  db.close();
}
`;

export interface WalCheckpointer {
  /** Stops the thread after its current checkpoint and one last one; resolves once it has exited. */
  stop(): Promise<void>;
  /** Called if the thread fails (the writer should checkpoint for itself again then). */
  onFailure?: (error: unknown) => void;
}

/**
 * Checkpoints a WAL-mode database file from a helper thread, so copying WAL frames into the database
 * file (and the fsync that goes with it) happens on another core instead of inside some commit: for
 * everyday commits (the writer keeps a large backstop) and for rebuilds (the writer's own off).
 */
export function startWalCheckpointer(filename: string, intervalMs = 50): WalCheckpointer {
  const stopFlag = new SharedArrayBuffer(4);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { module: require.resolve('better-sqlite3'), filename, stop: stopFlag, intervalMs },
  });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const handle: WalCheckpointer = {
    stop: async () => {
      // Held until it has exited, so the process does not end in the middle of a checkpoint.
      worker.ref();
      const flag = new Int32Array(stopFlag);
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
      await exited;
    },
  };
  worker.on('error', (e) => handle.onFailure?.(e));
  // A handle nobody stops must not keep the process alive.
  worker.unref();
  return handle;
}
