// The auditors' page: hash routes #/dashboard, #/search?…, #/identity/<id>. Plain ES modules, no build step.
import { api, qs, token, Unauthorized } from './api.js';
import { h, displayName, statusBadge } from './dom.js';
import { renderDashboard } from './dashboard.js';
import { renderIdentity } from './identity.js';

const main = () => document.getElementById('main');

async function renderSearch(params) {
  const field = (name, label, attrs = {}) =>
    h('label', {}, label, h('input', { name, id: `search-${name}`, value: params.get(name) || '', autocomplete: 'off', ...attrs }));
  const status = h(
    'select',
    { name: 'status', id: 'search-status' },
    ['', 'pending', 'active', 'disabled', 'deleted'].map((s) => h('option', { value: s, selected: params.get('status') === s }, s || 'any status')),
  );
  const form = h(
    'form',
    {
      id: 'search-form',
      class: 'card search',
      onsubmit: (e) => {
        e.preventDefault();
        const p = new URLSearchParams();
        for (const [k, v] of new FormData(form)) if (v) p.set(k, String(v));
        location.hash = `#/search?${p}`;
      },
    },
    field('q', 'Name or email starts with', { placeholder: 'e.g. Ada', autofocus: true }),
    field('employeeId', 'Employee id'),
    field('email', 'Email (exact)'),
    field('key', 'External key', { placeholder: 'hr:E1001' }),
    h('label', {}, 'Status', status),
    field('role', 'Holds role'),
    h('button', { type: 'submit', id: 'search-submit' }, 'Search'),
  );
  const results = h('div', { id: 'search-results' });
  main().replaceChildren(h('h1', {}, 'Search identities'), form, results);
  const query = Object.fromEntries([...params].filter(([k]) => ['q', 'employeeId', 'email', 'key', 'status', 'role'].includes(k)));
  if (!Object.keys(query).length) {
    results.append(h('p', { class: 'muted' }, 'Search by any field; every field given must match.'));
    return;
  }
  const page = await api(`/identities${qs({ ...query, limit: 100 })}`);
  if (!page.items.length) {
    results.append(h('p', { class: 'empty', id: 'no-results' }, 'No identity matches.'));
    return;
  }
  results.append(
    h(
      'table',
      { class: 'grid' },
      h('thead', {}, h('tr', {}, ['Name', 'Employee id', 'Email', 'Department', 'Status', 'Roles'].map((t) => h('th', {}, t)))),
      h(
        'tbody',
        {},
        page.items.map((i) =>
          h(
            'tr',
            { class: 'result', dataset: { identityId: i.identityId } },
            h('td', {}, h('a', { href: `#/identity/${i.identityId}`, class: 'open-identity' }, displayName(i) || (i.status === 'deleted' ? '[erased]' : i.identityId))),
            h('td', {}, i.employeeId || '—'),
            h('td', {}, i.attributes.email || '—'),
            h('td', {}, i.attributes.department || '—'),
            h('td', {}, statusBadge(i.status)),
            h('td', {}, i.heldRoles.join(', ')),
          ),
        ),
      ),
    ),
  );
  if (page.next) results.append(h('p', { class: 'muted' }, 'Showing the first 100; narrow the search to see more.'));
}

function askToken(refused) {
  const dialog = document.getElementById('token-dialog');
  document.getElementById('token-error').hidden = !refused;
  const input = document.getElementById('token-input');
  input.value = '';
  if (!dialog.open) dialog.showModal();
  input.focus();
}

async function route() {
  const [path, query = ''] = location.hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(query);
  const parts = path.split('/').filter(Boolean);
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === (parts[0] || 'dashboard'));
  document.getElementById('signout').hidden = !token.get();
  try {
    if (parts[0] === 'identity' && parts[1]) await renderIdentity(main(), decodeURIComponent(parts[1]));
    else if (parts[0] === 'search') await renderSearch(params);
    else await renderDashboard(main());
  } catch (e) {
    if (e instanceof Unauthorized) {
      main().replaceChildren(h('p', { class: 'muted' }, 'An audit:read token is needed.'));
      askToken(!!token.get());
      return;
    }
    main().replaceChildren(h('p', { class: 'error', id: 'page-error' }, `Could not load: ${e.message}`));
  }
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('token-form').addEventListener('submit', () => {
    token.set(document.getElementById('token-input').value.trim());
    void route();
  });
  document.getElementById('signout').addEventListener('click', () => {
    token.clear();
    void route();
  });
  window.addEventListener('hashchange', () => void route());
  void route();
});
