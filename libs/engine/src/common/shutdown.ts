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
    // Once the server has stopped listening, only unref'd timers may be left (the subscription's idle
    // wait): without a handle of our own, Node would exit with code 0 in the middle of the flush.
    const keepAlive = setInterval(() => undefined, 1000);
    for (const step of steps) await step();
    clearInterval(keepAlive);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
