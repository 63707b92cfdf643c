export {
  LoginRefused,
  IdpUnavailableError,
  systemClock,
  type IdpKind,
  type TrustedIdpConfig,
  type VerifiedLogin,
  type RefusalType,
  type Clock,
  type ReplayCache,
} from './types';
export {
  parseIdpConfig,
  IdpConfigError,
  DEFAULT_OIDC_ALGORITHMS,
  SUPPORTED_OIDC_ALGORITHMS,
  DEFAULT_CLOCK_SKEW_SECONDS,
} from './config';
export { CredentialVerifier, type CredentialVerifierOptions } from './verifier';
export { InMemoryReplayCache } from './replay-cache';
