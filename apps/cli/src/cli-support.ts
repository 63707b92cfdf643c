import type { Engine } from '@idlc/engine';

/** sysexits EX_USAGE: bad arguments. */
export const EXIT_USAGE = 64;
/** The named identity or credential does not exist. */
export const EXIT_NOT_FOUND = 3;

/** Runs a command's body with an opened engine and closes it after (main.ts). */
export type WithEngine = <T>(fn: (engine: Engine) => Promise<T>) => Promise<T>;

/** A failure the operator can act on: its message goes to stderr with this exit code, never a stack trace. */
export class ExitError extends Error {
  constructor(
    message: string,
    readonly code: number = EXIT_USAGE,
  ) {
    super(message);
  }
}

/** Runs fn; an ExitError it throws becomes its message on stderr and the process's exit code. */
export async function exitOnError(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!(e instanceof ExitError)) throw e;
    console.error(e.message);
    process.exitCode = e.code;
  }
}
