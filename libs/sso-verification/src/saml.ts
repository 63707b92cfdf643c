import { DOMParser, onErrorStopParsing, type Document, type Element, type Node } from '@xmldom/xmldom';
import { SAML, SamlStatusError, ValidateInResponseTo } from '@node-saml/node-saml';
import { checkEmailDomain, mapAttributes } from './attributes';
import { LoginRefused, type Clock, type TrustedIdpConfig, type VerifiedLogin } from './types';

const NS_SAMLP = 'urn:oasis:names:tc:SAML:2.0:protocol';
const NS_SAML = 'urn:oasis:names:tc:SAML:2.0:assertion';
const NS_DS = 'http://www.w3.org/2000/09/xmldsig#';
const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const CM_BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
const NAMEID_TRANSIENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient';
const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';

const MAX_RESPONSE_BASE64_LENGTH = 2 * 1024 * 1024;
const ELEMENT_NODE = 1;
const TEXT_NODE = 3;
const CDATA_SECTION_NODE = 4;
const COMMENT_NODE = 8;

function parseXml(xml: string, what: string): Document {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) {
    throw new LoginRefused('malformed', `${what} contains a DTD (not allowed)`);
  }
  try {
    return new DOMParser({ onError: onErrorStopParsing }).parseFromString(xml, 'text/xml');
  } catch (e) {
    throw new LoginRefused('malformed', `${what} is not well-formed XML: ${(e as Error).message}`);
  }
}

function childElements(parent: Node, ns: string, localName: string): Element[] {
  const out: Element[] = [];
  const nodes = parent.childNodes;
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i] as Node;
    if (n.nodeType === ELEMENT_NODE) {
      const el = n as Element;
      if (el.namespaceURI === ns && el.localName === localName) out.push(el);
    }
  }
  return out;
}

function onlyChild(parent: Node, ns: string, localName: string, required: boolean): Element | undefined {
  const found = childElements(parent, ns, localName);
  if (found.length > 1) throw new LoginRefused('malformed', `more than one <${localName}> where one is expected`);
  if (required && found.length === 0) throw new LoginRefused('malformed', `missing <${localName}>`);
  return found[0];
}

/** Concatenated text of an element that may hold only text (comments ignored; child elements refused). */
function textOnly(el: Element, what: string): string {
  let text = '';
  const nodes = el.childNodes;
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i] as Node;
    if (n.nodeType === TEXT_NODE || n.nodeType === CDATA_SECTION_NODE) text += n.nodeValue ?? '';
    else if (n.nodeType !== COMMENT_NODE) {
      throw new LoginRefused('malformed', `${what} must contain text only`);
    }
  }
  return text.trim();
}

function attr(el: Element, name: string): string | undefined {
  return el.hasAttribute(name) ? (el.getAttribute(name) ?? undefined) : undefined;
}

function parseInstant(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  // xs:dateTime in UTC as SAML requires; a time without zone would be read in server-local time.
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(value)) {
    throw new LoginRefused('malformed', `${what} "${value}" is not an xs:dateTime with a time zone`);
  }
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new LoginRefused('malformed', `${what} "${value}" is not a valid date`);
  return ms;
}

export interface PeekedSamlResponse {
  issuer: string;
  responseHasSignature: boolean;
  response: Element;
}

/** Decodes and parses the posted Response (unverified) to pick the IdP by its Issuer. */
export function peekSamlResponse(samlResponseBase64: unknown): PeekedSamlResponse {
  if (typeof samlResponseBase64 !== 'string' || samlResponseBase64.trim() === '') {
    throw new LoginRefused('malformed', 'SAMLResponse must be a non-empty base64 string');
  }
  if (samlResponseBase64.length > MAX_RESPONSE_BASE64_LENGTH) {
    throw new LoginRefused('malformed', 'SAMLResponse is too large');
  }
  const compact = samlResponseBase64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) {
    throw new LoginRefused('malformed', 'SAMLResponse is not base64');
  }
  const xml = Buffer.from(compact, 'base64').toString('utf8');
  const doc = parseXml(xml, 'SAMLResponse');
  const response = doc.documentElement;
  if (!response || response.namespaceURI !== NS_SAMLP || response.localName !== 'Response') {
    throw new LoginRefused('malformed', 'SAMLResponse root element is not a SAML 2.0 <samlp:Response>');
  }
  let issuerEl = childElements(response, NS_SAML, 'Issuer')[0];
  if (!issuerEl) {
    const assertion = childElements(response, NS_SAML, 'Assertion')[0];
    if (assertion) issuerEl = childElements(assertion, NS_SAML, 'Issuer')[0];
  }
  const issuer = issuerEl ? issuerEl.textContent?.trim() : undefined;
  if (!issuer) throw new LoginRefused('malformed', 'SAMLResponse has no Issuer');
  return {
    issuer,
    responseHasSignature: childElements(response, NS_DS, 'Signature').length > 0,
    response,
  };
}

/** node-saml error -> refusal. node-saml throws plain Errors; everything it rejects is a signature/structure problem. */
function refusalFromNodeSaml(e: unknown): LoginRefused {
  if (e instanceof LoginRefused) return e;
  const message = (e as Error)?.message ?? String(e);
  if (e instanceof SamlStatusError) return new LoginRefused('malformed', message);
  if (/audience/i.test(message)) return new LoginRefused('wrong_audience', message);
  if (
    /Missing SAML assertion|Unable to process multiple|Error parsing|Unknown SAML response message|decryption key|EncryptedAssertion/i.test(
      message,
    )
  ) {
    return new LoginRefused('malformed', message);
  }
  return new LoginRefused('invalid_signature', message);
}

export interface SamlVerifyContext {
  idp: TrustedIdpConfig;
  clock: Clock;
  /** node-saml instances per IdP and response-signature requirement. */
  samlFor(idp: TrustedIdpConfig, wantAuthnResponseSigned: boolean): SAML;
}

export function createNodeSaml(idp: TrustedIdpConfig, wantAuthnResponseSigned: boolean): SAML {
  return new SAML({
    callbackUrl: idp.acsUrl as string,
    issuer: idp.spEntityId as string,
    idpIssuer: idp.issuer,
    idpCert: [...(idp.signingCertificates ?? [])],
    wantAssertionsSigned: idp.wantAssertionsSigned ?? true,
    wantAuthnResponseSigned,
    // node-saml reads the system clock; time windows, audience and recipient are checked below on the
    // verified assertion with the injected clock instead.
    acceptedClockSkewMs: -1,
    audience: false,
    validateInResponseTo: ValidateInResponseTo.never,
  });
}

export async function verifySamlResponse(
  ctx: SamlVerifyContext,
  peeked: PeekedSamlResponse,
  samlResponseBase64: string,
  relayState: string | undefined,
): Promise<VerifiedLogin> {
  const { idp, clock } = ctx;
  const skewMs = (idp.clockSkewSeconds ?? 60) * 1000;
  const acsUrl = idp.acsUrl as string;

  // 1. Signatures (node-saml + xml-crypto). A Response signature, when present, must verify too.
  const saml = ctx.samlFor(idp, (idp.wantResponseSigned ?? false) || peeked.responseHasSignature);
  let assertionXml: string;
  let profileNameIdFormat: string | undefined;
  try {
    const { profile } = await saml.validatePostResponseAsync({
      SAMLResponse: samlResponseBase64.replace(/\s+/g, ''),
      ...(relayState !== undefined ? { RelayState: relayState } : {}),
    });
    if (!profile) throw new LoginRefused('malformed', 'SAMLResponse carries no assertion');
    assertionXml = profile.getAssertionXml?.() ?? '';
    profileNameIdFormat = profile.nameIDFormat;
  } catch (e) {
    throw refusalFromNodeSaml(e);
  }
  if (!assertionXml) throw new LoginRefused('malformed', 'no signed assertion content');

  // 2. Response-level checks. Refusing on unverified data is safe; nothing below is trusted from it.
  const status = onlyChild(peeked.response, NS_SAMLP, 'Status', false);
  const statusCode = status ? onlyChild(status, NS_SAMLP, 'StatusCode', false) : undefined;
  if (statusCode && attr(statusCode, 'Value') !== STATUS_SUCCESS) {
    throw new LoginRefused('malformed', `SAML status is ${attr(statusCode, 'Value') ?? '(none)'}`);
  }
  const destination = attr(peeked.response, 'Destination');
  if (destination !== undefined && destination !== acsUrl) {
    throw new LoginRefused('wrong_audience', `Response Destination "${destination}" is not our ACS URL`);
  }

  // 3. Everything else from the verified (signed, canonicalised) assertion only.
  const assertion = parseXml(assertionXml, 'signed assertion').documentElement;
  if (!assertion || assertion.namespaceURI !== NS_SAML || assertion.localName !== 'Assertion') {
    throw new LoginRefused('malformed', 'signed content is not a SAML 2.0 <saml:Assertion>');
  }
  const now = clock.now().getTime();

  const assertionId = attr(assertion, 'ID');
  if (!assertionId) throw new LoginRefused('malformed', 'assertion has no ID');

  const issuerEl = onlyChild(assertion, NS_SAML, 'Issuer', true) as Element;
  const assertionIssuer = textOnly(issuerEl, 'Issuer');
  if (assertionIssuer !== idp.issuer || peeked.issuer !== idp.issuer) {
    throw new LoginRefused('unknown_issuer', `assertion Issuer "${assertionIssuer}" is not ${idp.issuer}`);
  }

  const issueInstant = parseInstant(attr(assertion, 'IssueInstant'), 'IssueInstant');
  if (issueInstant === undefined) throw new LoginRefused('malformed', 'assertion has no IssueInstant');
  if (issueInstant > now + skewMs) {
    throw new LoginRefused('expired', `assertion IssueInstant ${new Date(issueInstant).toISOString()} is in the future`);
  }

  // Subject / NameID
  const subjectEl = onlyChild(assertion, NS_SAML, 'Subject', true) as Element;
  if (childElements(subjectEl, NS_SAML, 'EncryptedID').length > 0) {
    throw new LoginRefused('malformed', 'encrypted NameID is not supported');
  }
  const nameIdEl = onlyChild(subjectEl, NS_SAML, 'NameID', true) as Element;
  const subject = textOnly(nameIdEl, 'NameID');
  if (subject === '') throw new LoginRefused('malformed', 'NameID is empty');
  const nameIdFormat = attr(nameIdEl, 'Format') ?? profileNameIdFormat;
  if (nameIdFormat === NAMEID_TRANSIENT) {
    throw new LoginRefused('malformed', 'transient NameID cannot identify a user; configure a persistent NameID');
  }

  // Time windows (injected clock): SubjectConfirmationData and Conditions.
  const checkWindow = (notBefore: number | undefined, notOnOrAfter: number | undefined, what: string) => {
    if (notBefore !== undefined && now + skewMs < notBefore) {
      throw new LoginRefused('expired', `${what} not valid before ${new Date(notBefore).toISOString()}`);
    }
    if (notOnOrAfter !== undefined && now - skewMs >= notOnOrAfter) {
      throw new LoginRefused('expired', `${what} expired at ${new Date(notOnOrAfter).toISOString()}`);
    }
  };

  const bearer = childElements(subjectEl, NS_SAML, 'SubjectConfirmation').filter(
    (sc) => attr(sc, 'Method') === CM_BEARER,
  );
  if (bearer.length !== 1) {
    throw new LoginRefused('malformed', `expected one bearer SubjectConfirmation, found ${bearer.length}`);
  }
  const scd = onlyChild(bearer[0] as Element, NS_SAML, 'SubjectConfirmationData', true) as Element;
  const scdNotOnOrAfter = parseInstant(attr(scd, 'NotOnOrAfter'), 'SubjectConfirmationData NotOnOrAfter');
  if (scdNotOnOrAfter === undefined) {
    throw new LoginRefused('malformed', 'bearer SubjectConfirmationData has no NotOnOrAfter');
  }
  checkWindow(parseInstant(attr(scd, 'NotBefore'), 'SubjectConfirmationData NotBefore'), scdNotOnOrAfter, 'subject confirmation');

  const conditions = onlyChild(assertion, NS_SAML, 'Conditions', false);
  let conditionsNotOnOrAfter: number | undefined;
  if (conditions) {
    conditionsNotOnOrAfter = parseInstant(attr(conditions, 'NotOnOrAfter'), 'Conditions NotOnOrAfter');
    checkWindow(parseInstant(attr(conditions, 'NotBefore'), 'Conditions NotBefore'), conditionsNotOnOrAfter, 'assertion');
  }

  // Audience: every AudienceRestriction must name our SP entity id.
  const restrictions = conditions ? childElements(conditions, NS_SAML, 'AudienceRestriction') : [];
  if (restrictions.length === 0) {
    throw new LoginRefused('wrong_audience', 'assertion has no AudienceRestriction');
  }
  for (const r of restrictions) {
    const audiences = childElements(r, NS_SAML, 'Audience').map((a) => textOnly(a, 'Audience'));
    if (!audiences.includes(idp.spEntityId as string)) {
      throw new LoginRefused('wrong_audience', `assertion audience ${JSON.stringify(audiences)} does not include ${idp.spEntityId}`);
    }
  }

  // Recipient
  const recipient = attr(scd, 'Recipient');
  if (recipient !== acsUrl) {
    throw new LoginRefused('wrong_audience', `SubjectConfirmationData Recipient "${recipient ?? '(none)'}" is not our ACS URL`);
  }

  // Attributes (multi-valued: all kept in rawClaims; mapping takes the first value).
  const byName: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  const byFriendlyName: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const statement of childElements(assertion, NS_SAML, 'AttributeStatement')) {
    for (const a of childElements(statement, NS_SAML, 'Attribute')) {
      const name = attr(a, 'Name');
      if (!name) continue;
      const values = childElements(a, NS_SAML, 'AttributeValue').map((v) => (v.textContent ?? '').trim());
      byName[name] = [...(byName[name] ?? []), ...values];
      const friendly = attr(a, 'FriendlyName');
      if (friendly) byFriendlyName[friendly] = [...(byFriendlyName[friendly] ?? []), ...values];
    }
  }
  const attributes = mapAttributes(idp, (n) => byName[n] ?? byFriendlyName[n]);
  let email = attributes.email;
  if (email === undefined && nameIdFormat === NAMEID_EMAIL) email = subject;
  checkEmailDomain(idp, email);

  const authn = childElements(assertion, NS_SAML, 'AuthnStatement')[0];
  const sessionIndex = authn ? attr(authn, 'SessionIndex') : undefined;
  const expiry = Math.min(scdNotOnOrAfter, conditionsNotOnOrAfter ?? Number.POSITIVE_INFINITY);

  return {
    idpId: idp.id,
    kind: 'saml',
    issuer: idp.issuer,
    subject,
    credentialId: assertionId,
    expiresAt: new Date(expiry + skewMs),
    issuedAt: new Date(issueInstant),
    ...(email !== undefined ? { email } : {}),
    attributes,
    rawClaims: {
      issuer: assertionIssuer,
      assertionId,
      nameID: subject,
      ...(nameIdFormat !== undefined ? { nameIDFormat: nameIdFormat } : {}),
      ...(sessionIndex !== undefined ? { sessionIndex } : {}),
      ...(destination !== undefined ? { destination } : {}),
      issueInstant: new Date(issueInstant).toISOString(),
      attributes: { ...byName },
    },
    ...(relayState !== undefined ? { relayState } : {}),
  };
}
