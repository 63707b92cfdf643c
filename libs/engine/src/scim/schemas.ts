/**
 * The SCIM schemas this service provider implements (RFC 7643 sections 4 and 8.7.1), used for
 * discovery, input validation, PATCH path resolution, filters and attribute projection alike, so
 * what /Schemas publishes is exactly what the server does.
 */
export type AttrType = 'string' | 'boolean' | 'decimal' | 'integer' | 'dateTime' | 'binary' | 'reference' | 'complex';
export type Mutability = 'readOnly' | 'readWrite' | 'immutable' | 'writeOnly';
export type Returned = 'always' | 'never' | 'default' | 'request';

export interface AttrDef {
  name: string;
  type: AttrType;
  multiValued: boolean;
  description: string;
  required: boolean;
  caseExact: boolean;
  mutability: Mutability;
  returned: Returned;
  uniqueness: 'none' | 'server' | 'global';
  canonicalValues?: string[];
  referenceTypes?: string[];
  subAttributes?: AttrDef[];
}

export const CORE_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const ENTERPRISE_USER = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const CORE_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const LIST_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const SEARCH_REQUEST = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const SPC_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig';
export const RESOURCE_TYPE_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ResourceType';
export const SCHEMA_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Schema';

type Opts = Partial<Omit<AttrDef, 'name' | 'type' | 'description' | 'subAttributes'>>;

function attr(name: string, type: AttrType, description: string, opts: Opts = {}, subAttributes?: AttrDef[]): AttrDef {
  const a: AttrDef = {
    name,
    type,
    multiValued: false,
    description,
    required: false,
    caseExact: false,
    mutability: 'readWrite',
    returned: 'default',
    uniqueness: 'none',
    ...opts,
  };
  if (subAttributes) a.subAttributes = subAttributes;
  return a;
}

/** value / display / type / primary: the shape of most multi-valued attributes. */
function multi(name: string, description: string, valueType: AttrType, types: string[] | undefined, extra: Opts = {}, valueOpts: Opts = {}): AttrDef {
  return attr(name, 'complex', description, { multiValued: true, ...extra }, [
    attr('value', valueType, `The value of ${name}.`, valueOpts),
    attr('display', 'string', 'A human-readable name, primarily used for display purposes.'),
    attr('type', 'string', `A label indicating the attribute's function.`, types ? { canonicalValues: types } : {}),
    attr('primary', 'boolean', `A Boolean value indicating the 'primary' or preferred attribute value for this attribute.`),
  ]);
}

export const USER_ATTRIBUTES: AttrDef[] = [
  attr('userName', 'string', 'Unique identifier for the User, typically used by the user to directly authenticate to the service provider.', {
    required: true,
    uniqueness: 'server',
  }),
  attr('name', 'complex', "The components of the user's real name.", {}, [
    attr('formatted', 'string', "The full name, including all middle names, titles, and suffixes as appropriate, formatted for display."),
    attr('familyName', 'string', 'The family name of the User, or last name in most Western languages.'),
    attr('givenName', 'string', 'The given name of the User, or first name in most Western languages.'),
    attr('middleName', 'string', 'The middle name(s) of the User.'),
    attr('honorificPrefix', 'string', "The honorific prefix(es) of the User, or title in most Western languages (e.g., 'Ms.')."),
    attr('honorificSuffix', 'string', "The honorific suffix(es) of the User, or suffix in most Western languages (e.g., 'III')."),
  ]),
  attr('displayName', 'string', 'The name of the User, suitable for display to end-users.'),
  attr('nickName', 'string', 'The casual way to address the user in real life.'),
  attr('profileUrl', 'reference', "A fully qualified URL pointing to a page representing the User's online profile.", { referenceTypes: ['external'] }),
  attr('title', 'string', "The user's title, such as 'Vice President'."),
  attr('userType', 'string', "Used to identify the relationship between the organization and the user (mapped to the engine's employmentType)."),
  attr('preferredLanguage', 'string', "Indicates the User's preferred written or spoken language."),
  attr('locale', 'string', "Used to indicate the User's default location for purposes of localizing items such as currency and date time format."),
  attr('timezone', 'string', "The User's time zone in the 'Olson' time zone database format, e.g., 'America/Los_Angeles'."),
  attr('active', 'boolean', "A Boolean value indicating the User's administrative status (false disables the account)."),
  attr('password', 'string', 'The User\'s cleartext password: accepted and never stored or returned.', { mutability: 'writeOnly', returned: 'never', caseExact: true }),
  multi('emails', 'Email addresses for the user.', 'string', ['work', 'home', 'other']),
  multi('phoneNumbers', 'Phone numbers for the User.', 'string', ['work', 'home', 'mobile', 'fax', 'pager', 'other']),
  multi('ims', 'Instant messaging addresses for the User.', 'string', ['aim', 'gtalk', 'icq', 'xmpp', 'msn', 'skype', 'qq', 'yahoo']),
  multi('photos', 'URLs of photos of the User.', 'reference', ['photo', 'thumbnail'], {}, { referenceTypes: ['external'] }),
  attr('addresses', 'complex', 'A physical mailing address for this User.', { multiValued: true }, [
    attr('formatted', 'string', 'The full mailing address, formatted for display or use with a mailing label.'),
    attr('streetAddress', 'string', 'The full street address component.'),
    attr('locality', 'string', 'The city or locality component (mapped to the engine\'s location for the primary address).'),
    attr('region', 'string', 'The state or region component.'),
    attr('postalCode', 'string', 'The zip code or postal code component.'),
    attr('country', 'string', 'The country name component.'),
    attr('type', 'string', "A label indicating the attribute's function, e.g., 'work' or 'home'.", { canonicalValues: ['work', 'home', 'other'] }),
    attr('primary', 'boolean', "A Boolean value indicating the 'primary' or preferred address."),
  ]),
  attr('groups', 'complex', 'A list of groups to which the user belongs, through SCIM group membership.', { multiValued: true, mutability: 'readOnly' }, [
    attr('value', 'string', "The identifier of the User's group.", { mutability: 'readOnly', caseExact: true }),
    attr('$ref', 'reference', "The URI of the corresponding 'Group' resource to which the user belongs.", {
      mutability: 'readOnly',
      caseExact: true,
      referenceTypes: ['Group'],
    }),
    attr('display', 'string', "A human-readable name, primarily used for display purposes.", { mutability: 'readOnly' }),
    attr('type', 'string', "A label indicating the attribute's function, e.g., 'direct' or 'indirect'.", {
      mutability: 'readOnly',
      canonicalValues: ['direct', 'indirect'],
    }),
  ]),
  multi('entitlements', 'A list of entitlements for the User that represent a thing the User has.', 'string', undefined),
  multi('roles', 'A list of roles for the User that collectively represent who the User is (recorded as sent; access roles come from groups and birthright rules).', 'string', undefined),
  multi('x509Certificates', 'A list of certificates issued to the User.', 'binary', undefined, {}, { caseExact: true }),
];

export const ENTERPRISE_ATTRIBUTES: AttrDef[] = [
  attr('employeeNumber', 'string', 'Numeric or alphanumeric identifier assigned to a person, typically based on order of hire or association with an organization.'),
  attr('costCenter', 'string', 'Identifies the name of a cost center.'),
  attr('organization', 'string', 'Identifies the name of an organization.'),
  attr('division', 'string', 'Identifies the name of a division.'),
  attr('department', 'string', 'Identifies the name of a department.'),
  attr('manager', 'complex', "The User's manager.", {}, [
    attr('value', 'string', "The id of the SCIM resource representing the User's manager.", { caseExact: true }),
    attr('$ref', 'reference', "The URI of the SCIM resource representing the User's manager.", { caseExact: true, referenceTypes: ['User'] }),
    attr('displayName', 'string', "The displayName of the User's manager.", { mutability: 'readOnly' }),
  ]),
];

export const GROUP_ATTRIBUTES: AttrDef[] = [
  attr('displayName', 'string', 'A human-readable name for the Group; also the name of the role its members are granted.', { required: true }),
  attr('members', 'complex', 'A list of members of the Group.', { multiValued: true }, [
    attr('value', 'string', 'Identifier of the member of this Group.', { mutability: 'immutable', caseExact: true }),
    attr('$ref', 'reference', 'The URI corresponding to a SCIM resource that is a member of this Group.', {
      mutability: 'immutable',
      caseExact: true,
      referenceTypes: ['User', 'Group'],
    }),
    attr('type', 'string', "A label indicating the type of resource, e.g., 'User' or 'Group'.", { mutability: 'immutable', canonicalValues: ['User', 'Group'] }),
    attr('display', 'string', 'A human-readable name for the member, as the client sent it.', { mutability: 'immutable' }),
  ]),
];

/** Attributes every resource has (RFC 7643 section 3.1); not part of any schema's attribute list. */
export const COMMON_ATTRIBUTES: AttrDef[] = [
  attr('id', 'string', 'A unique identifier for a SCIM resource as defined by the service provider.', {
    mutability: 'readOnly',
    returned: 'always',
    caseExact: true,
    uniqueness: 'server',
  }),
  attr('externalId', 'string', 'An identifier for the resource as defined by the provisioning client.', { caseExact: true }),
  attr('meta', 'complex', 'A complex attribute containing resource metadata.', { mutability: 'readOnly' }, [
    attr('resourceType', 'string', 'The name of the resource type of the resource.', { mutability: 'readOnly', caseExact: true }),
    attr('created', 'dateTime', 'The "DateTime" that the resource was added to the service provider.', { mutability: 'readOnly' }),
    attr('lastModified', 'dateTime', 'The most recent DateTime that the details of this resource were updated at the service provider.', {
      mutability: 'readOnly',
    }),
    attr('location', 'reference', 'The URI of the resource being returned.', { mutability: 'readOnly', caseExact: true, referenceTypes: ['uri'] }),
    attr('version', 'string', 'The version of the resource being returned (the stream revision).', { mutability: 'readOnly', caseExact: true }),
  ]),
];

export interface SchemaDef {
  id: string;
  name: string;
  description: string;
  attributes: AttrDef[];
}

export interface ResourceTypeDef {
  id: 'User' | 'Group';
  name: 'User' | 'Group';
  endpoint: '/Users' | '/Groups';
  description: string;
  schema: string;
  schemaExtensions: { schema: string; required: boolean }[];
}

export const SCHEMAS: SchemaDef[] = [
  { id: CORE_USER, name: 'User', description: 'User Account', attributes: USER_ATTRIBUTES },
  { id: ENTERPRISE_USER, name: 'EnterpriseUser', description: 'Enterprise User', attributes: ENTERPRISE_ATTRIBUTES },
  { id: CORE_GROUP, name: 'Group', description: 'Group', attributes: GROUP_ATTRIBUTES },
];

export const RESOURCE_TYPES: ResourceTypeDef[] = [
  {
    id: 'User',
    name: 'User',
    endpoint: '/Users',
    description: 'User Account (an identity provisioned by SCIM)',
    schema: CORE_USER,
    schemaExtensions: [{ schema: ENTERPRISE_USER, required: false }],
  },
  { id: 'Group', name: 'Group', endpoint: '/Groups', description: 'Group (membership grants a role)', schema: CORE_GROUP, schemaExtensions: [] },
];

export const MAX_RESULTS = 1000;
export const DEFAULT_COUNT = 100;

/** What /ServiceProviderConfig says; each flag matches what the handlers do. */
export function serviceProviderConfig(base: string) {
  return {
    schemas: [SPC_SCHEMA],
    documentationUri: 'https://datatracker.ietf.org/doc/html/rfc7644',
    patch: { supported: true },
    bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
    filter: { supported: true, maxResults: MAX_RESULTS },
    changePassword: { supported: false },
    sort: { supported: true },
    etag: { supported: true },
    authenticationSchemes: [
      {
        type: 'oauthbearertoken',
        name: 'OAuth Bearer Token',
        description: 'Authentication with a bearer token configured in SCIM_TOKENS',
        specUri: 'https://www.rfc-editor.org/info/rfc6750',
        primary: true,
      },
    ],
    meta: { resourceType: 'ServiceProviderConfig', location: `${base}/ServiceProviderConfig` },
  };
}

export function resourceTypeResource(rt: ResourceTypeDef, base: string) {
  return {
    schemas: [RESOURCE_TYPE_SCHEMA],
    id: rt.id,
    name: rt.name,
    endpoint: rt.endpoint,
    description: rt.description,
    schema: rt.schema,
    schemaExtensions: rt.schemaExtensions,
    meta: { resourceType: 'ResourceType', location: `${base}/ResourceTypes/${rt.id}` },
  };
}

const META_SCHEMAS: SchemaDef[] = [
  {
    id: SPC_SCHEMA,
    name: 'ServiceProviderConfig',
    description: "Schema for representing the service provider's configuration",
    attributes: [
      attr('documentationUri', 'reference', 'An HTTP-addressable URL pointing to the service provider\'s human-consumable help documentation.', {
        mutability: 'readOnly',
        referenceTypes: ['external'],
      }),
      ...['patch', 'bulk', 'filter', 'changePassword', 'sort', 'etag'].map((n) =>
        attr(n, 'complex', `A complex type that specifies ${n} configuration options.`, { required: true, mutability: 'readOnly' }, [
          attr('supported', 'boolean', 'A Boolean value specifying whether or not the operation is supported.', { required: true, mutability: 'readOnly' }),
          ...(n === 'bulk'
            ? [
                attr('maxOperations', 'integer', 'An integer value specifying the maximum number of operations.', { required: true, mutability: 'readOnly' }),
                attr('maxPayloadSize', 'integer', 'An integer value specifying the maximum payload size in bytes.', { required: true, mutability: 'readOnly' }),
              ]
            : n === 'filter'
              ? [attr('maxResults', 'integer', 'An integer value specifying the maximum number of resources returned in a response.', { required: true, mutability: 'readOnly' })]
              : []),
        ]),
      ),
      attr('authenticationSchemes', 'complex', 'A complex type that specifies supported authentication scheme properties.', { required: true, multiValued: true, mutability: 'readOnly' }, [
        attr('type', 'string', 'The authentication scheme.', { required: true, mutability: 'readOnly' }),
        attr('name', 'string', 'The common authentication scheme name.', { required: true, mutability: 'readOnly' }),
        attr('description', 'string', 'A description of the authentication scheme.', { required: true, mutability: 'readOnly' }),
        attr('specUri', 'reference', "An HTTP-addressable URL pointing to the authentication scheme's specification.", { mutability: 'readOnly', referenceTypes: ['external'] }),
        attr('documentationUri', 'reference', "An HTTP-addressable URL pointing to the authentication scheme's usage documentation.", {
          mutability: 'readOnly',
          referenceTypes: ['external'],
        }),
        attr('primary', 'boolean', 'Whether this is the preferred authentication scheme.', { mutability: 'readOnly' }),
      ]),
    ],
  },
  {
    id: RESOURCE_TYPE_SCHEMA,
    name: 'ResourceType',
    description: 'Specifies the schema that describes a SCIM resource type',
    attributes: [
      attr('id', 'string', "The resource type's server unique id.", { mutability: 'readOnly', caseExact: true }),
      attr('name', 'string', 'The resource type name.', { required: true, mutability: 'readOnly' }),
      attr('description', 'string', "The resource type's human-readable description.", { mutability: 'readOnly' }),
      attr('endpoint', 'reference', "The resource type's HTTP-addressable endpoint relative to the Base URL.", { required: true, mutability: 'readOnly', referenceTypes: ['uri'] }),
      attr('schema', 'reference', "The resource type's primary/base schema URI.", { required: true, mutability: 'readOnly', caseExact: true, referenceTypes: ['uri'] }),
      attr('schemaExtensions', 'complex', 'A list of URIs of the resource type\'s schema extensions.', { multiValued: true, mutability: 'readOnly' }, [
        attr('schema', 'reference', 'The URI of a schema extension.', { required: true, mutability: 'readOnly', caseExact: true, referenceTypes: ['uri'] }),
        attr('required', 'boolean', 'Whether resources must include this schema extension.', { required: true, mutability: 'readOnly' }),
      ]),
    ],
  },
  {
    id: SCHEMA_SCHEMA,
    name: 'Schema',
    description: 'Specifies the Schema attribute',
    attributes: [
      attr('id', 'string', 'The unique URI of the schema.', { required: true, mutability: 'readOnly', caseExact: true }),
      attr('name', 'string', 'The schema\'s human-readable name.', { mutability: 'readOnly' }),
      attr('description', 'string', 'The schema\'s human-readable description.', { mutability: 'readOnly' }),
      attr('attributes', 'complex', 'A complex attribute that includes the attributes of a schema.', { required: true, multiValued: true, mutability: 'readOnly' }, [
        attr('name', 'string', "The attribute's name.", { required: true, mutability: 'readOnly', caseExact: true }),
        attr('type', 'string', "The attribute's data type.", {
          required: true,
          mutability: 'readOnly',
          canonicalValues: ['string', 'complex', 'boolean', 'decimal', 'integer', 'dateTime', 'reference', 'binary'],
        }),
        attr('multiValued', 'boolean', 'Whether the attribute is multi-valued.', { required: true, mutability: 'readOnly' }),
        attr('description', 'string', "The attribute's human-readable description.", { mutability: 'readOnly' }),
        attr('required', 'boolean', 'Whether the attribute is required.', { mutability: 'readOnly' }),
        attr('canonicalValues', 'string', 'A collection of canonical values.', { multiValued: true, mutability: 'readOnly' }),
        attr('caseExact', 'boolean', 'Whether a string attribute is case sensitive.', { mutability: 'readOnly' }),
        attr('mutability', 'string', 'Whether the attribute is modifiable.', { mutability: 'readOnly', canonicalValues: ['readOnly', 'readWrite', 'immutable', 'writeOnly'] }),
        attr('returned', 'string', 'When the attribute is returned in a response.', { mutability: 'readOnly', canonicalValues: ['always', 'never', 'default', 'request'] }),
        attr('uniqueness', 'string', 'How the service provider enforces uniqueness.', { mutability: 'readOnly', canonicalValues: ['none', 'server', 'global'] }),
        attr('referenceTypes', 'string', 'The names of the resource types that may be referenced.', { multiValued: true, mutability: 'readOnly' }),
        attr('subAttributes', 'complex', 'The sub-attributes of a complex attribute (same shape as attributes).', { multiValued: true, mutability: 'readOnly' }),
      ]),
    ],
  },
];

export const ALL_SCHEMAS: SchemaDef[] = [...SCHEMAS, ...META_SCHEMAS];

export function schemaResource(s: SchemaDef, base: string) {
  return {
    schemas: [SCHEMA_SCHEMA],
    id: s.id,
    name: s.name,
    description: s.description,
    attributes: s.attributes,
    meta: { resourceType: 'Schema', location: `${base}/Schemas/${s.id}` },
  };
}

/** The attribute set of one resource type: core schema URN, its attributes, and its extensions. */
export interface ResourceSchema {
  type: 'User' | 'Group';
  core: string;
  attributes: AttrDef[];
  extensions: { urn: string; attributes: AttrDef[] }[];
}

export const USER_SCHEMA: ResourceSchema = { type: 'User', core: CORE_USER, attributes: USER_ATTRIBUTES, extensions: [{ urn: ENTERPRISE_USER, attributes: ENTERPRISE_ATTRIBUTES }] };
export const GROUP_SCHEMA: ResourceSchema = { type: 'Group', core: CORE_GROUP, attributes: GROUP_ATTRIBUTES, extensions: [] };

export const findAttr = (list: AttrDef[] | undefined, name: string): AttrDef | undefined => list?.find((a) => a.name.toLowerCase() === name.toLowerCase());
