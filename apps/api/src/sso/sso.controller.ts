import { AuthenticatedRequest, RequireScope } from '../auth/scopes';
import { Body, Controller, Headers, HttpCode, OnModuleInit, Post, Req } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Engine, parseSsoLoginBody, refusalSlug, SSO_LIMITS, SsoLoginRefused, SsoLoginService, SsoRefusalType } from '@idlc/engine';
import { IdpUnavailableError, LoginRefused } from '@idlc/sso-verification';
import { randomUUID } from 'node:crypto';
import { ApiBodyProblems, ApiJson, ApiProblems, ref } from '../common/openapi';
import { problem } from '../common/problem';

/** Credential problems are 401 (authenticate again), policy refusals 403 (this person may not log in). */
const STATUS: Record<SsoRefusalType, number> = {
  invalid_signature: 401,
  expired: 401,
  wrong_audience: 401,
  unknown_issuer: 401,
  replayed: 401,
  malformed: 400,
  domain_not_allowed: 403,
  jit_disabled: 403,
  account_disabled: 403,
};

const TITLES: Record<SsoRefusalType, string> = {
  invalid_signature: 'Credential signature invalid',
  expired: 'Credential expired or not yet valid',
  wrong_audience: 'Credential issued for another audience',
  unknown_issuer: 'Credential from an untrusted issuer',
  replayed: 'Credential already used',
  malformed: 'Credential malformed',
  domain_not_allowed: 'Email domain not allowed',
  jit_disabled: 'No account and just-in-time provisioning is off',
  account_disabled: 'Account cannot log in',
};


@ApiTags('sso')
@RequireScope('sso:login')
@Controller('sso')
export class SsoController implements OnModuleInit {
  private service!: SsoLoginService;

  constructor(private readonly engine: Engine) {}

  /** Reads SSO_IDPS_FILE: a bad file fails app start-up with a ConfigError naming the IdP and field. */
  async onModuleInit(): Promise<void> {
    this.service = await SsoLoginService.open(this.engine);
  }

  @Post('login')
  @HttpCode(200)
  @ApiOperation({
    summary: 'IdP login hook: verify an OIDC ID token or SAML response, record the login, provision just in time',
    description: 'Answers the account (identity id, status, held roles) or a problem+json refusal with a stable type.',
  })
  @ApiBody({
    schema: {
      oneOf: [
        { type: 'object', properties: { idToken: { type: 'string', minLength: 1, maxLength: SSO_LIMITS.idToken } }, required: ['idToken'], additionalProperties: false },
        {
          type: 'object',
          properties: {
            samlResponse: { type: 'string', minLength: 1, maxLength: SSO_LIMITS.samlResponse, description: 'base64' },
            relayState: { type: 'string', minLength: 1, maxLength: SSO_LIMITS.relayState },
          },
          required: ['samlResponse'],
          additionalProperties: false,
        },
      ],
    },
  })
  @ApiJson(ref('SsoLogin'))
  @ApiBodyProblems()
  @ApiProblems(401, 403, 503)
  async login(@Body() body: unknown, @Headers('x-correlation-id') correlationHeader: string | undefined, @Req() req: AuthenticatedRequest) {
    const parsed = parseSsoLoginBody(body);
    if (!parsed.ok) {
      throw problem(400, 'validation_failed', 'SSO login validation failed', parsed.errors.map((e) => `${e.field}: ${e.message}`).join('; '), {
        errors: parsed.errors,
      });
    }
    const correlationId = typeof correlationHeader === 'string' && correlationHeader ? correlationHeader.slice(0, 128) : randomUUID();
    try {
      const p = req.principal;
      return await this.service.login(parsed.credential, correlationId, p?.credentialId ? { credentialId: p.credentialId, credentialName: p.name } : {});
    } catch (e) {
      throw toSsoProblem(e);
    }
  }
}

function toSsoProblem(e: unknown): unknown {
  if (e instanceof LoginRefused || e instanceof SsoLoginRefused) {
    const extra = e instanceof SsoLoginRefused && e.reason ? { reason: e.reason } : {};
    return problem(STATUS[e.type], refusalSlug(e.type), TITLES[e.type], e.detail, extra);
  }
  if (e instanceof IdpUnavailableError) {
    // Not the user's fault and not ours to fix: the caller may retry once the IdP answers.
    return problem(503, 'idp_unavailable', 'Identity provider unavailable', `the keys of IdP ${e.idpId} cannot be fetched; retry later`);
  }
  return e;
}
