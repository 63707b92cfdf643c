import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import type { SchemaObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayNotEmpty, IsArray, IsISO8601, IsOptional, IsString, MaxLength } from 'class-validator';
import { CredentialError, Engine, SCOPES } from '@idlc/engine';
import { problem, validBody } from '../common/problem';
import { ApiBodyProblems, ApiJson, ApiProblems } from '../common/openapi';
import { RequireScope } from './scopes';

class CreateCredentialDto {
  @IsString() @MaxLength(100) name!: string;
  @IsArray() @ArrayNotEmpty() @ArrayMaxSize(SCOPES.length) @IsString({ each: true }) scopes!: string[];
  @IsOptional() @IsISO8601({ strict: true }) expiresAt?: string;
}

const CREDENTIAL = { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, scopes: { type: 'array', items: { type: 'string' } }, createdAt: { type: 'string' }, expiresAt: { type: 'string', nullable: true }, revokedAt: { type: 'string', nullable: true }, lastUsedAt: { type: 'string', nullable: true } }, required: ['id', 'name', 'scopes', 'createdAt'] } as SchemaObject;

/**
 * The body create() accepts, as precisely as JSON Schema can say it (test/http/openapi.spec.ts holds
 * server and document to the same answers); that expiresAt lies in the future it can only describe.
 */
const CREATE_CREDENTIAL = {
  type: 'object',
  required: ['name', 'scopes'],
  additionalProperties: false,
  properties: {
    // Not blank once trimmed, no control characters.
    name: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[^\\u0000-\\u001f]*[^\\s\\u0000-\\u001f][^\\u0000-\\u001f]*$' },
    scopes: { type: 'array', minItems: 1, maxItems: SCOPES.length, items: { type: 'string', enum: [...SCOPES] } },
    expiresAt: { type: 'string', format: 'date-time', description: 'An instant in the future; absent: the credential does not expire.' },
  },
} as SchemaObject;

/** Operators manage API credentials here or with `idlc credentials:*`; the token is shown once, on creation. */
@ApiTags('credentials')
@RequireScope('admin')
@Controller('credentials')
export class CredentialsController {
  constructor(private readonly engine: Engine) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Create an API credential; the response carries its token, which is never shown again' })
  @ApiBody({ schema: CREATE_CREDENTIAL })
  @ApiJson({ allOf: [CREDENTIAL, { type: 'object', properties: { token: { type: 'string' } }, required: ['token'] }] }, 201, 'Created; the token is shown only here')
  @ApiBodyProblems()
  async create(@Body() body: unknown) {
    const dto = validBody(CreateCredentialDto, body);
    try {
      return await this.engine.credentials.create({ name: dto.name, scopes: dto.scopes, expiresAt: dto.expiresAt ? new Date(dto.expiresAt) : undefined });
    } catch (e) {
      if (e instanceof CredentialError) throw problem(400, 'validation_failed', 'Invalid credential', e.message);
      throw e;
    }
  }

  @Get()
  @ApiOperation({ summary: 'List credentials (never their secrets)' })
  @ApiJson({ type: 'object', properties: { credentials: { type: 'array', items: CREDENTIAL } }, required: ['credentials'] })
  async list() {
    return { credentials: await this.engine.credentials.list() };
  }

  @Delete(':id')
  @HttpCode(200)
  @ApiOperation({ summary: 'Revoke a credential (effective at once here, within seconds on other instances)' })
  @ApiJson(CREDENTIAL)
  @ApiProblems(404)
  async revoke(@Param('id') id: string) {
    const c = await this.engine.credentials.revoke(id);
    if (!c) throw problem(404, 'credential_not_found', 'Credential not found', `no credential ${id}`);
    return c;
  }
}
