/**
 * Gates suites that need a real service. Set the service's variable to run them; with
 * REQUIRE_SERVICES=1 a missing service fails the run instead of skipping (CI sets it).
 */
export function serviceEnv(name: string, variable: string, opts: { optionalInCi?: boolean } = {}): string | undefined {
  const value = process.env[variable];
  if (value) return value;
  if (process.env.REQUIRE_SERVICES === '1' && !opts.optionalInCi) {
    throw new Error(`${name} is required (REQUIRE_SERVICES=1) but ${variable} is not set`);
  }
  // One clear line, so a skipped service suite is never silent.
  process.stdout.write(`[skip] ${name} suite skipped: ${variable} is not set\n`);
  return undefined;
}

export const describeIf = (cond: unknown): jest.Describe => (cond ? describe : describe.skip);
