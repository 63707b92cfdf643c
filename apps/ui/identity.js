// One identity: current state, state as of any instant (slider), deadlines, and a vertical timeline of every event.
import { api, qs } from './api.js';
import { h, fmt, day, displayName, statusBadge } from './dom.js';

// Same list as the domain's PERSONAL_ATTRIBUTES: hidden here once an account is deleted. An erased
// identity needs no hiding: the server itself answers ERASED for every personal value.
const PERSONAL = new Set(['givenName', 'familyName', 'displayName', 'email', 'phone', 'address', 'managerName']);
const ERASED = '[erased]';
const MINUTE = 60_000;
const DAY = 86_400_000;

export const sourceText = (s) => {
  if (!s) return '—';
  if (s.kind === 'birthright') return `rule ${s.ruleId}`;
  if (s.kind === 'scim-group') return `SCIM group ${s.groupId}`;
  if (s.kind === 'manual') return s.by ? `manual, by ${s.by}` : 'manual';
  return s.kind;
};

const redact = (erased, k, v) => (erased && PERSONAL.has(k) ? '[erased]' : v ?? '∅');

async function allEvents(id) {
  const events = [];
  let from = 0;
  for (;;) {
    const page = await api(`/identities/${encodeURIComponent(id)}/history${qs({ fromRevision: from, limit: 1000 })}`);
    events.push(...page.events);
    if (page.nextRevision === null) return events;
    from = page.nextRevision;
  }
}

function attributesTable(attrs, erased, id) {
  const rows = Object.entries(attrs || {}).sort(([a], [b]) => a.localeCompare(b));
  if (erased) for (const k of PERSONAL) if (!(k in attrs)) rows.push([k, undefined]);
  return h(
    'table',
    { class: 'kv', id },
    rows.map(([k, v]) => {
      const shown = erased && PERSONAL.has(k) ? ERASED : v;
      return h('tr', { dataset: { attr: k } }, h('th', {}, k), h('td', { class: shown === ERASED ? 'erased' : '' }, shown));
    }),
  );
}

function rolesList(identity, id) {
  if (!identity.roles.length) return h('p', { class: 'muted', id }, 'No roles.');
  return h(
    'ul',
    { class: 'roles', id },
    [...identity.roles]
      .sort((a, b) => a.role.localeCompare(b.role))
      .map((g) => h('li', { dataset: { role: g.role } }, h('strong', {}, g.role), h('span', { class: 'source' }, sourceText(g.source)), h('span', { class: 'when' }, `since ${day(g.grantedAt)}`))),
  );
}

/** Events as timeline entries: logins collapse into one entry per UTC day. */
export function timelineEntries(events) {
  const out = [];
  const logins = new Map();
  for (const e of events) {
    if (e.type === 'LoginRecorded' || e.type === 'LoginRefused') {
      const d = e.recordedAt.slice(0, 10);
      let entry = logins.get(d);
      if (!entry) {
        entry = { kind: 'logins', day: d, recordedAt: e.recordedAt, ok: 0, refused: 0, issuers: new Set(), reasons: new Set() };
        logins.set(d, entry);
        out.push(entry);
      }
      if (e.type === 'LoginRecorded') entry.ok++;
      else {
        entry.refused++;
        entry.reasons.add(e.data.reason);
      }
      entry.issuers.add(e.data.issuer);
      entry.lastAt = e.recordedAt;
      continue;
    }
    out.push({ kind: 'event', event: e, recordedAt: e.recordedAt });
  }
  return out;
}

function describe(e, erased) {
  const d = e.data || {};
  const kv = (obj) =>
    h(
      'dl',
      { class: 'kvs' },
      Object.entries(obj || {}).map(([k, v]) => [h('dt', {}, k), h('dd', {}, redact(erased, k, v))]),
    );
  switch (e.type) {
    case 'IdentityHired':
      return ['Hired', `employee ${d.employeeId}, effective ${day(d.effectiveAt)}`, kv(d.attributes)];
    case 'IdentityRehired':
      return ['Rehired', `employee ${d.employeeId}, effective ${day(d.effectiveAt)}`];
    case 'IdentityTerminated':
      return ['Terminated', `effective ${day(d.effectiveAt)}, reason: ${d.reason}`];
    case 'AttributesChanged': {
      const moved = 'department' in d.changes || 'title' in d.changes || 'managerId' in d.changes;
      return [
        moved ? 'Moved' : 'Attributes changed',
        `effective ${day(d.effectiveAt)}, from ${d.source}`,
        h(
          'table',
          { class: 'diff' },
          h('tr', {}, h('th', {}, 'attribute'), h('th', {}, 'before'), h('th', {}, 'after')),
          Object.entries(d.changes).map(([k, c]) =>
            h('tr', { dataset: { attr: k } }, h('td', {}, k), h('td', { class: 'before' }, redact(erased, k, c && c.from)), h('td', { class: 'after' }, redact(erased, k, c && c.to))),
          ),
        ),
      ];
    }
    case 'RoleGranted':
      return [`Role granted: ${d.role}`, `by ${sourceText(d.source)}`];
    case 'RoleRevoked':
      return [`Role revoked: ${d.role}`, `granted by ${sourceText(d.source)}; reason: ${d.reason}`];
    case 'AccountProvisioned':
      return ['Account provisioned', `from ${d.source}, effective ${day(d.effectiveAt)}`];
    case 'AccountEnabled':
      return ['Account enabled', `reason: ${d.reason} (${d.source})`];
    case 'AccountDisabled':
      return ['Account disabled', `reason: ${d.reason} (${d.source})${d.note ? ` — ${d.note}` : ''}, effective ${fmt(d.effectiveAt)}`];
    case 'AccountDeleted':
      return ['Account deleted', `reason: ${d.reason} (${d.source})`];
    case 'ExternalKeyLinked':
    case 'ExternalKeyUnlinked':
      return [e.type === 'ExternalKeyLinked' ? 'Key linked' : 'Key unlinked', erased ? d.key.kind : `${d.key.kind}: ${d.key.issuer ? `${d.key.issuer} | ` : ''}${d.key.value}`];
    case 'InactivityWarningIssued':
      return ['Inactivity warning', `last activity ${fmt(d.lastActivityAt)}; disabled at ${fmt(d.disableAt)} without a login`];
    case 'ScimResourceReplaced':
      return ['SCIM resource written', ''];
    case 'ScimResourceDeleted':
      return ['SCIM resource deleted', `mode: ${d.mode}`];
    case 'IdentityErased':
      return ['Personal data erased', `by ${d.requestedBy}; reason: ${d.reason}`];
    default:
      return [e.type, ''];
  }
}

function timeline(entries, erased, onPick) {
  return h(
    'ol',
    { class: 'timeline', id: 'timeline' },
    entries.map((t) => {
      if (t.kind === 'logins') {
        const parts = [];
        if (t.ok) parts.push(`${t.ok} login${t.ok > 1 ? 's' : ''}`);
        if (t.refused) parts.push(`${t.refused} refused (${[...t.reasons].join(', ')})`);
        return h(
          'li',
          { class: 'entry type-logins', dataset: { type: 'logins', at: t.lastAt } },
          h('time', {}, t.day),
          h('div', { class: 'body' }, h('div', { class: 'title' }, parts.join(', ')), h('div', { class: 'sub' }, `via ${[...t.issuers].join(', ')}`)),
        );
      }
      const e = t.event;
      const [title, sub, extra] = describe(e, erased);
      return h(
        'li',
        { class: `entry type-${e.type}`, dataset: { type: e.type, at: e.recordedAt }, title: 'Show the state right after this event', onclick: () => onPick(Date.parse(e.recordedAt)) },
        h('time', {}, fmt(e.recordedAt)),
        h(
          'div',
          { class: 'body' },
          h('div', { class: 'title' }, title),
          sub ? h('div', { class: 'sub' }, sub) : null,
          extra || null,
          h('div', { class: 'meta' }, `#${e.revision} · ${e.source || 'unknown source'}${e.actor && e.actor !== e.source ? ` · ${e.actor}` : ''}`),
        ),
      );
    }),
  );
}

export async function renderIdentity(main, id) {
  const [identity, events, deadlines] = await Promise.all([
    api(`/identities/${encodeURIComponent(id)}`),
    allEvents(id),
    api(`/audit/identities/${encodeURIComponent(id)}/deadlines`),
  ]);
  // A deleted (not erased) account's history still holds its personal data: hidden client-side.
  const erased = identity.status === 'deleted' && !identity.erasedAt;
  const name = identity.erasedAt ? 'Erased identity' : erased ? 'Deleted identity' : displayName(identity) || identity.identityId;

  const first = Date.parse(events[0].recordedAt);
  const last = Date.parse(events[events.length - 1].recordedAt);
  // From midnight UTC of the first event's day, so the instant before the identity existed is reachable.
  const min = Math.floor(first / DAY) * DAY;
  const max = Math.ceil(last / MINUTE) * MINUTE + MINUTE;
  const slider = h('input', { type: 'range', id: 'asof-slider', min, max, step: MINUTE, value: max, 'aria-label': 'State as of' });
  const picker = h('input', { type: 'datetime-local', id: 'asof-picker', step: 1, 'aria-label': 'State as of (UTC)' });
  const label = h('output', { id: 'asof-label' });
  const asOf = h('div', { id: 'asof-state', class: 'asof' });

  let seq = 0;
  const show = async (ms, fromPicker) => {
    const iso = new Date(ms).toISOString();
    label.textContent = fmt(iso);
    if (!fromPicker) picker.value = iso.slice(0, 19);
    if (ms >= min && ms <= max) slider.value = String(ms);
    for (const li of document.querySelectorAll('#timeline li')) li.classList.toggle('later', Date.parse(li.dataset.at) > ms);
    const mine = ++seq;
    asOf.setAttribute('aria-busy', 'true');
    const r = await api(`/identities/${encodeURIComponent(id)}/state${qs({ at: iso })}`);
    if (mine !== seq) return; // a later move of the slider already asked again
    asOf.removeAttribute('aria-busy');
    asOf.dataset.at = iso;
    if (!r.existed) {
      asOf.replaceChildren(h('p', { class: 'muted', id: 'asof-none' }, 'The identity did not exist yet.'));
      return;
    }
    asOf.replaceChildren(
      h('p', {}, 'Status ', statusBadge(r.identity.status), ` · employment ${r.identity.employment}`),
      h('div', { class: 'cols' }, h('div', {}, h('h3', {}, 'Roles'), rolesList(r.identity, 'asof-roles')), h('div', {}, h('h3', {}, 'Attributes'), attributesTable(r.identity.attributes, erased, 'asof-attributes'))),
    );
  };
  slider.addEventListener('input', () => void show(Number(slider.value)));
  picker.addEventListener('change', () => {
    if (picker.value) void show(Date.parse(`${picker.value.length === 16 ? `${picker.value}:00` : picker.value}Z`), true);
  });

  main.replaceChildren(
    h(
      'section',
      { class: 'identity-head card' },
      h('h1', { id: 'identity-name' }, name, ' ', statusBadge(identity.status)),
      identity.erasedAt
        ? h('p', { class: 'erased-banner', id: 'erased-marker' }, `Personal data erased on ${fmt(identity.erasedAt)} (right to be forgotten): every personal value reads ${ERASED}.`)
        : erased
          ? h('p', { class: 'erased-banner', id: 'erased-marker' }, 'Account deleted: personal data is erased and not shown.')
          : null,
      h('p', { class: 'muted' }, `id ${identity.identityId} · employee ${identity.employeeId || '—'} · employment ${identity.employment}${identity.disabledReason ? ` · disabled: ${identity.disabledReason}` : ''}`),
    ),
    h(
      'div',
      { class: 'cols' },
      h('section', { class: 'card' }, h('h2', {}, 'Current attributes'), attributesTable(identity.attributes, erased, 'current-attributes')),
      h('section', { class: 'card' }, h('h2', {}, 'Current roles'), rolesList(identity, 'current-roles')),
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Upcoming deprovisioning'),
        deadlines.items.length
          ? h('ul', { id: 'deadlines', class: 'deadlines' }, deadlines.items.map((d) => h('li', { dataset: { action: d.action } }, h('strong', {}, d.action), ` due ${fmt(d.dueAt)}`)))
          : h('p', { class: 'muted', id: 'deadlines' }, 'Nothing scheduled.'),
        identity.termination ? h('p', {}, `Termination effective ${day(identity.termination.effectiveAt)}`) : null,
        h('p', { class: 'muted' }, `Last login: ${fmt(identity.lastLoginAt)}`),
      ),
    ),
    h(
      'section',
      { class: 'card travel' },
      h('h2', {}, 'State as of ', label),
      h('div', { class: 'slider-row' }, h('span', { class: 'muted' }, fmt(new Date(min).toISOString())), slider, h('span', { class: 'muted' }, fmt(new Date(max).toISOString()))),
      h('label', { class: 'picker' }, 'or pick an instant (UTC) ', picker),
      asOf,
    ),
    h('section', { class: 'card' }, h('h2', {}, `Timeline (${events.length} events)`), timeline(timelineEntries(events), erased, (ms) => void show(ms))),
  );
  await show(max);
}
