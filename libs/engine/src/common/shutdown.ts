/**
 * Stops a process once on SIGTERM or SIGINT: the steps run in order (stop accepting work first,
 * then flush and close the store), then the process exits.
 */
export function stopOnSignals(what: string, ...steps: (() => unknown)[]): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping ${what}`);
    for (const step of steps) await step();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
