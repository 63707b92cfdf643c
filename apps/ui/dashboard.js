// Dashboard: counts by status, joiners/movers/leavers per week (inline SVG), inactivity disablements due, projection lag.
import { api } from './api.js';
import { h, s, fmt, statusBadge } from './dom.js';

const SERIES = [
  ['joiners', '#2f855a'],
  ['movers', '#2b6cb0'],
  ['leavers', '#c05621'],
];

export function weeklyChart(weeks) {
  const W = 720;
  const H = 220;
  const pad = { l: 36, r: 10, t: 10, b: 38 };
  const top = Math.max(1, ...weeks.flatMap((w) => SERIES.map(([k]) => w[k])));
  const gw = (W - pad.l - pad.r) / weeks.length;
  const bw = (gw - 8) / SERIES.length;
  const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / top);
  const ticks = [...new Set([0, Math.ceil(top / 2), top])];
  return s(
    'svg',
    { viewBox: `0 0 ${W} ${H + 22}`, class: 'chart', id: 'flow-chart', role: 'img', 'aria-label': 'Joiners, movers and leavers per week' },
    ticks.map((t) => [s('line', { x1: pad.l, x2: W - pad.r, y1: y(t), y2: y(t), class: 'grid' }), s('text', { x: pad.l - 6, y: y(t) + 4, 'text-anchor': 'end', class: 'axis' }, t)]),
    weeks.map((w, i) => {
      const x0 = pad.l + i * gw + 4;
      return s(
        'g',
        { 'data-week': w.weekStart },
        SERIES.map(([k, color], j) =>
          s('rect', { x: x0 + j * bw, y: y(w[k]), width: Math.max(1, bw - 1), height: H - pad.b - y(w[k]), fill: color, 'data-series': k, 'data-value': w[k] }, s('title', {}, `${k} week of ${w.weekStart}: ${w[k]}`)),
        ),
        s('text', { x: x0 + gw / 2 - 4, y: H - pad.b + 14, 'text-anchor': 'middle', class: 'axis' }, w.weekStart.slice(5)),
      );
    }),
    SERIES.map(([k, color], j) => [s('rect', { x: pad.l + j * 110, y: H + 4, width: 12, height: 12, fill: color }), s('text', { x: pad.l + j * 110 + 18, y: H + 14, class: 'axis' }, k)]),
  );
}

export async function renderDashboard(main) {
  const d = await api('/audit/dashboard');
  const lagOk = d.projections.lagEvents <= d.projections.maxLagEvents;
  main.replaceChildren(
    h('h1', {}, 'Dashboard'),
    h('p', { class: 'muted' }, `As of ${fmt(d.generatedAt)} · ${d.total} identities`),
    h(
      'div',
      { class: 'counts', id: 'status-counts' },
      Object.entries(d.countsByStatus).map(([k, n]) =>
        h('a', { class: 'count card', href: `#/search?status=${k}`, dataset: { status: k } }, h('span', { class: 'n' }, n), statusBadge(k)),
      ),
    ),
    h('section', { class: 'card' }, h('h2', {}, 'Joiners, movers and leavers per week'), weeklyChart(d.weekly)),
    h(
      'div',
      { class: 'cols' },
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Due for inactivity disablement'),
        d.dueForInactivityDisablement.length
          ? h(
              'table',
              { class: 'grid', id: 'due-inactive' },
              h('tr', {}, h('th', {}, 'Identity'), h('th', {}, 'Employee id'), h('th', {}, 'Next step'), h('th', {}, 'Disabled at')),
              d.dueForInactivityDisablement.map((r) =>
                h('tr', {}, h('td', {}, h('a', { href: `#/identity/${r.identityId}` }, r.displayName || r.identityId)), h('td', {}, r.employeeId || '—'), h('td', {}, `${r.nextAction} ${fmt(r.nextActionAt)}`), h('td', {}, fmt(r.disableAt))),
              ),
            )
          : h('p', { class: 'muted', id: 'due-inactive' }, 'None scheduled.'),
      ),
      h(
        'section',
        { class: 'card' },
        h('h2', {}, 'Projection lag'),
        h('p', { id: 'projection-lag', class: lagOk ? 'ok' : 'error' }, `${d.projections.lagEvents} events behind (bound ${d.projections.maxLagEvents})`),
        h('table', { class: 'grid' }, h('tr', {}, h('th', {}, 'Projection'), h('th', {}, 'Position')), d.projections.checkpoints.map((c) => h('tr', {}, h('td', {}, c.name), h('td', {}, c.position)))),
      ),
    ),
  );
}
