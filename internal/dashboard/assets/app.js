// Reprise dashboard: a hand-written ES module, no framework, no build step. Data comes from the
// dashboard's JSON API (/dashboard/api/); actions go through the Durable Functions management API
// (/runtime/webhooks/durabletask/), so they answer with its status codes and messages.

const API = new URL('api/', document.baseURI).pathname; // /dashboard/api/
const MGMT = '/runtime/webhooks/durabletask';
const KEY_STORE = 'reprise.dashboard.key';
const TZ_STORE = 'reprise.dashboard.tz'; // "utc" or "local" (the default), kept across visits
const REFRESH_MS = 2500;
// Counts cost the store a pass over every matching instance (millions, on a big hub), so live
// refresh reloads them less often than the page of rows; a change of filters reloads them at once.
const COUNTS_REFRESH_MS = 10_000;
const STATUSES = ['Pending', 'Running', 'Suspended', 'Completed', 'ContinuedAsNew', 'Failed', 'Terminated', 'Canceled'];
const ACTIVE = new Set(['Pending', 'Running', 'Suspended', 'ContinuedAsNew']);
// Bulk actions run this many management API requests at a time.
const BULK_PARALLEL = 4;

const $ = (sel, root = document) => root.querySelector(sel);

// h builds an element: h('a', {href: '#', class: 'x', dataset: {testid: 'y'}}, 'text', child...).
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// ---- state -------------------------------------------------------------------------------------

const state = {
  info: null,
  live: true,
  timer: 0,
  view: null, // {kind: 'list'|'instance', ...}
  pages: new Map(), // filter key → {stack: [token...], index}
  lastData: '', // JSON of the last rendered data, to skip identical refreshes
  counts: { query: null, at: 0, data: null }, // the last counts loaded, for their filters
  loading: 0, // loads in flight
  utc: localStorage.getItem(TZ_STORE) === 'utc', // times in UTC, else in the browser's zone
  rows: [], // the instances of the list page shown
  selected: new Set(), // IDs selected on the list page
};

// ---- HTTP --------------------------------------------------------------------------------------

class HTTPError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORE);
  return key ? { 'x-functions-key': key } : {};
}

// errorText turns an error answer into a sentence: the management API's Message and
// ExceptionMessage, or the status line when the body is empty (its 404 and 401 have none).
async function errorText(resp) {
  const text = await resp.text();
  let msg = '';
  try {
    const body = JSON.parse(text);
    msg = [body.Message, body.ExceptionMessage].filter(Boolean).join(' ');
  } catch {
    msg = text.trim();
  }
  const line = `${resp.status} ${resp.statusText}`.trim();
  return msg ? `${line}: ${msg}` : line;
}

// request sends a request with the key; on 401 it asks for the key and tries once more.
async function request(method, url, body, retried = false) {
  const headers = { ...authHeaders() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(url, { method, headers, body, cache: 'no-store' });
  if (resp.status === 401 && !retried) {
    await askForKey(sessionStorage.getItem(KEY_STORE) ? 'The key was refused.' : '', await resp.clone().json().catch(() => ({})));
    return request(method, url, body, true);
  }
  if (!resp.ok) throw new HTTPError(resp.status, await errorText(resp));
  return resp;
}

async function apiGet(path) {
  const resp = await request('GET', API + path);
  return resp.json();
}

// ---- key ---------------------------------------------------------------------------------------

let keyWaiters = null;

// askForKey shows the key dialog and resolves once a key the API accepts is stored. answer is
// the 401 body: its keyHelp says where the key comes from; masterKey false means the host has
// none, and then the dialog says so instead of asking (it never resolves).
function askForKey(error, answer = {}) {
  const dlg = $('#key-dialog');
  const none = answer.masterKey === false;
  $('#key-h').textContent = none ? 'No master key' : 'Master key required';
  $('#key-help').textContent = none ? answer.Message || '' : answer.keyHelp || '';
  $('#key-form').querySelectorAll('#key-intro, label, input, .buttons').forEach((el) => { el.hidden = none; });
  $('#key-error').textContent = none ? '' : error || '';
  if (!keyWaiters) {
    keyWaiters = [];
    $('#key-input').value = '';
    if (!dlg.open) dlg.showModal();
  }
  return new Promise((resolve) => keyWaiters.push(resolve));
}

async function submitKey(ev) {
  ev.preventDefault();
  const key = $('#key-input').value.trim();
  if (!key) {
    $('#key-error').textContent = 'Enter the master key.';
    return;
  }
  let resp;
  try {
    resp = await fetch(API + 'info', { headers: { 'x-functions-key': key }, cache: 'no-store' });
  } catch (err) {
    $('#key-error').textContent = `Could not reach the host: ${err.message}`;
    return;
  }
  if (resp.status === 401) {
    $('#key-error').textContent = 'This key was refused: the dashboard needs the master key.';
    $('#key-input').select();
    return;
  }
  sessionStorage.setItem(KEY_STORE, key);
  $('#key-dialog').close();
  updateSignOut();
  const waiters = keyWaiters || [];
  keyWaiters = null;
  waiters.forEach((w) => w());
}

function updateSignOut() {
  $('#sign-out').hidden = !sessionStorage.getItem(KEY_STORE);
}

function signOut() {
  sessionStorage.removeItem(KEY_STORE);
  updateSignOut();
  state.info = null;
  state.lastData = '';
  $('#main').replaceChildren(h('p', { class: 'loading' }, 'Signed out.'));
  notify('Signed out: the key was forgotten.');
  route();
}

// ---- notices -----------------------------------------------------------------------------------

let noticeTimer = 0;

// notify shows a result in the aria-live region; successes fade after a while, errors stay until
// the next notice.
function notify(text, kind = 'info') {
  const n = $('#notice');
  n.className = `notice ${kind}`;
  n.textContent = text;
  clearTimeout(noticeTimer);
  if (kind !== 'error') noticeTimer = setTimeout(() => { n.textContent = ''; }, 10_000);
}

// ---- formatting --------------------------------------------------------------------------------

const pad = (n, w = 2) => String(n).padStart(w, '0');

// fields returns a date's parts in the zone the page shows (UTC or the browser's).
function fields(d) {
  return state.utc
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
}

// formatTime shows a time in the page's zone; withZone adds the zone's name (tables name it in
// the column's header instead).
function formatTime(iso, withZone = false) {
  if (!iso) return '';
  const d = new Date(iso);
  const [y, mo, da, ho, mi, se] = fields(d);
  const text = `${y}-${pad(mo)}-${pad(da)} ${pad(ho)}:${pad(mi)}:${pad(se)}`;
  return withZone ? `${text} ${zoneName(d)}` : text;
}

// zoneName is "UTC" or the browser's zone as the browser abbreviates it at d (CET, GMT+1, ...).
function zoneName(d = new Date()) {
  if (state.utc) return 'UTC';
  const part = new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName');
  if (part) return part.value;
  const off = -d.getTimezoneOffset();
  return `UTC${off < 0 ? '-' : '+'}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
}

function timeEl(iso, withZone = false) {
  return h('time', { datetime: iso, title: iso }, formatTime(iso, withZone));
}

// updateZoneLabels writes the zone into the header's button and every zone label.
function updateZoneLabels() {
  for (const el of document.querySelectorAll('.tz-name')) el.textContent = el.classList.contains('th-tz') ? `(${zoneName()})` : zoneName();
}

function toggleZone() {
  state.utc = !state.utc;
  localStorage.setItem(TZ_STORE, state.utc ? 'utc' : 'local');
  updateZoneLabels();
  state.lastData = '';
  if (state.view?.kind === 'list' && $('#filters')) syncFilters(state.view.filters);
  if (state.view?.kind === 'entities' && $('#e-filters')) syncEntityFilters(state.view.filters);
  refresh();
}

function formatDuration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1) return '<1 ms';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  const m = Math.round(s / 60);
  if (m < 48 * 60) return `${Math.floor(m / 60)} h ${pad(m % 60)} min`;
  return `${Math.floor(m / 1440)} d ${Math.floor((m % 1440) / 60)} h`;
}

function pretty(raw) {
  if (raw === null || raw === undefined) return 'null';
  return JSON.stringify(raw, null, 2);
}

function badge(status) {
  return h('span', { class: `badge s-${status}`, dataset: { testid: 'status-badge' } }, status);
}

// toLocalInput turns an ISO time into a datetime-local value in the page's zone; fromLocalInput
// does the reverse.
function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const [y, mo, da, ho, mi, se] = fields(d);
  return `${y}-${pad(mo)}-${pad(da)}T${pad(ho)}:${pad(mi)}:${pad(se)}`;
}

function fromLocalInput(v) {
  if (!v) return '';
  const d = new Date(state.utc ? `${v}Z` : v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

// ---- routing -----------------------------------------------------------------------------------

// parseHash reads #/ (the list, filters as query), #/instances/{id}, #/entities (the entities,
// filters as query) and #/entities/{name}/{key}.
function parseHash() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query = ''] = hash.split('?');
  const m = path.match(/^\/instances\/(.+)$/);
  if (m) return { kind: 'instance', id: safeDecode(m[1]) };
  const e = path.match(/^\/entities\/([^/]+)\/(.*)$/);
  if (e) return { kind: 'entity', name: safeDecode(e[1]), key: safeDecode(e[2]) };
  const p = new URLSearchParams(query);
  if (path === '/entities' || path === '/entities/') {
    return {
      kind: 'entities',
      filters: {
        name: p.get('name') || '',
        key: p.get('key') || '',
        modifiedFrom: p.get('modifiedFrom') || '',
        modifiedTo: p.get('modifiedTo') || '',
        transient: p.get('transient') === 'true',
        top: validTop(p.get('top')),
      },
    };
  }
  return {
    kind: 'list',
    filters: {
      status: (p.get('status') || '').split(',').filter((s) => STATUSES.includes(s)),
      name: p.get('name') || '',
      version: p.get('version') || '',
      createdFrom: p.get('createdFrom') || '',
      createdTo: p.get('createdTo') || '',
      prefix: p.get('prefix') || '',
      top: validTop(p.get('top')),
      order: p.get('order') === 'oldest' ? 'oldest' : 'newest',
    },
  };
}

const DEFAULT_TOP = 50;

// safeDecode decodes a URL component; a malformed one (a hand-edited URL) is taken as written.
function safeDecode(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function validTop(v) {
  const n = Number.parseInt(v, 10);
  return Number.isInteger(n) && n >= 1 && n <= 500 ? n : DEFAULT_TOP;
}

function filterQuery(f, withStatus = true) {
  const p = new URLSearchParams();
  if (withStatus && f.status.length) p.set('status', f.status.join(','));
  if (f.name) p.set('name', f.name);
  if (f.version) p.set('version', f.version);
  if (f.createdFrom) p.set('createdFrom', f.createdFrom);
  if (f.createdTo) p.set('createdTo', f.createdTo);
  if (f.prefix) p.set('prefix', f.prefix);
  return p.toString();
}

// listHash is the URL of a list view: the filters and, unless they are the defaults, the page
// size and the order.
function listHash(f) {
  const p = new URLSearchParams(filterQuery(f));
  if (f.top && f.top !== DEFAULT_TOP) p.set('top', String(f.top));
  if (f.order === 'oldest') p.set('order', 'oldest');
  const q = p.toString();
  return q ? `#/?${q}` : '#/';
}

const instanceHash = (id) => `#/instances/${encodeURIComponent(id)}`;
const entityHash = (name, key) => `#/entities/${encodeURIComponent(name)}/${encodeURIComponent(key)}`;

function entityFilterQuery(f) {
  const p = new URLSearchParams();
  if (f.name) p.set('name', f.name);
  if (f.key) p.set('key', f.key);
  if (f.modifiedFrom) p.set('modifiedFrom', f.modifiedFrom);
  if (f.modifiedTo) p.set('modifiedTo', f.modifiedTo);
  if (f.transient) p.set('transient', 'true');
  return p.toString();
}

// entitiesHash is the URL of an entities view: the filters and, unless it is the default, the
// page size.
function entitiesHash(f) {
  const p = new URLSearchParams(entityFilterQuery(f));
  if (f.top && f.top !== DEFAULT_TOP) p.set('top', String(f.top));
  const q = p.toString();
  return q ? `#/entities?${q}` : '#/entities';
}

async function route(fromNavigation = false) {
  const view = parseHash();
  const reuse = state.view && state.view.kind === view.kind &&
    (view.kind === 'list' && $('#filters') || view.kind === 'entities' && $('#e-filters'));
  state.view = view;
  state.lastData = '';
  try {
    if (!state.info) {
      state.info = await apiGet('info');
      $('#hub').textContent = `task hub ${state.info.hub}`;
      updateSignOut();
    }
  } catch (err) {
    showError(err);
    return;
  }
  const entityViews = view.kind === 'entities' || view.kind === 'entity';
  $('#nav-instances').setAttribute('aria-current', entityViews ? 'false' : 'page');
  $('#nav-entities').setAttribute('aria-current', entityViews ? 'page' : 'false');
  if (view.kind === 'instance') mountInstance(view);
  else if (view.kind === 'entity') mountEntity(view);
  else if (reuse && view.kind === 'entities') syncEntityFilters(view.filters);
  else if (reuse) syncFilters(view.filters); // keeps the focus on the control just changed
  else if (view.kind === 'entities') mountEntities(view);
  else mountList(view);
  // A new view takes the focus, so that keyboard and screen-reader users start at its top.
  if (!reuse && fromNavigation) $('#main').focus({ preventScroll: false });
  await refresh();
}

function showError(err) {
  $('#main').replaceChildren(
    h('div', { class: 'error-box', role: 'alert', dataset: { testid: 'load-error' } },
      h('p', {}, `Could not load the dashboard: ${err.message}`),
      h('button', { type: 'button', onclick: () => route() }, 'Try again')));
}

// refresh reloads the data of the current view. Live mode calls it every REFRESH_MS with
// tick set, and a tick is skipped while another load is in flight; navigation and actions always
// load (the loaders drop answers for a view that is no longer shown).
async function refresh(tick = false) {
  if (tick && state.loading > 0) return;
  state.loading++;
  try {
    if (state.view.kind === 'instance') await loadInstance();
    else if (state.view.kind === 'entities') await loadEntities();
    else if (state.view.kind === 'entity') await loadEntity();
    else await loadList(tick);
    if (state.refreshFailed) {
      state.refreshFailed = false;
      notify('Reconnected.');
    }
  } catch (err) {
    state.refreshFailed = true;
    notify(`Could not refresh: ${err.message}`, 'error');
  } finally {
    state.loading--;
  }
}

function schedule() {
  clearInterval(state.timer);
  state.timer = 0;
  if (state.live && document.visibilityState === 'visible') {
    state.timer = setInterval(() => {
      if (!$('#key-dialog').open && !$('#action-dialog').open) refresh(true);
    }, REFRESH_MS);
  }
}

function toggleLive() {
  state.live = !state.live;
  const b = $('#live');
  b.setAttribute('aria-pressed', String(state.live));
  b.textContent = state.live ? 'Live' : 'Paused';
  schedule();
  if (state.live) refresh();
}

// ---- list view ---------------------------------------------------------------------------------

function pagerFor(f) {
  const key = `${filterQuery(f)}&top=${f.top}&order=${f.order}`;
  if (!state.pages.has(key)) state.pages.set(key, { stack: [''], index: 0, next: '' });
  return state.pages.get(key);
}

function mountList(view) {
  const main = $('#main');
  main.replaceChildren($('#list-view').content.cloneNode(true));
  const f = view.filters;
  const boxes = $('#status-boxes');
  for (const s of STATUSES) {
    const id = `f-st-${s}`;
    boxes.append(h('span', { class: 'check' },
      h('input', { type: 'checkbox', id, name: 'status', value: s, checked: f.status.includes(s), dataset: { testid: `filter-status-${s}` } }),
      h('label', { for: id }, s)));
  }
  const sel = $('#f-name');
  const names = [...state.info.orchestrators];
  if (f.name && !names.includes(f.name)) names.push(f.name);
  for (const n of names) sel.append(h('option', { value: n }, n));
  syncFilters(f);

  const form = $('#filters');
  updateZoneLabels();
  const apply = (ev) => {
    ev?.preventDefault();
    const next = {
      status: [...form.querySelectorAll('input[name=status]:checked')].map((c) => c.value),
      name: sel.value,
      version: $('#f-version').value.trim(),
      createdFrom: fromLocalInput($('#f-from').value),
      createdTo: fromLocalInput($('#f-to').value),
      prefix: $('#f-prefix').value.trim(),
      top: validTop($('#f-top').value),
      order: $('#f-order').value === 'oldest' ? 'oldest' : 'newest',
    };
    const hash = listHash(next);
    if (hash !== location.hash && !(hash === '#/' && location.hash === '')) location.hash = hash;
  };
  form.addEventListener('submit', apply);
  // Every control applies on change; the version and the prefix on Enter (submit) or when they
  // lose the focus.
  form.addEventListener('change', () => apply());
  // The page size and order sit beside the counts, outside the form.
  $('#f-top').addEventListener('change', () => apply());
  $('#f-order').addEventListener('change', () => apply());
  // The status menu closes on a click elsewhere and on Escape.
  const menu = $('#f-status');
  menu.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && menu.open) {
      ev.stopPropagation();
      menu.open = false;
      menu.querySelector('summary').focus();
    }
  });
  $('#select-all').addEventListener('change', (ev) => {
    for (const r of state.rows) {
      if (ev.target.checked) state.selected.add(r.id);
      else state.selected.delete(r.id);
    }
    syncSelection();
  });
  $('#rows').addEventListener('change', (ev) => {
    const id = ev.target.closest('tr')?.dataset.id;
    if (!id || ev.target.type !== 'checkbox') return;
    if (ev.target.checked) state.selected.add(id);
    else state.selected.delete(id);
    syncSelection();
  });
  $('#bulk-terminate').addEventListener('click', () => bulkAction('terminate'));
  $('#bulk-purge').addEventListener('click', () => bulkAction('purge'));
  $('#bulk-clear').addEventListener('click', () => {
    state.selected.clear();
    syncSelection();
  });
  $('#f-clear').addEventListener('click', () => { location.hash = listHash({ status: [], top: state.view.filters.top, order: state.view.filters.order }); });
  $('#prev').addEventListener('click', () => page(-1));
  $('#next').addEventListener('click', () => page(+1));
}

function syncFilters(f) {
  document.title = 'Instances · Reprise dashboard';
  for (const c of document.querySelectorAll('#filters input[name=status]')) c.checked = f.status.includes(c.value);
  $('#f-status-text').title = f.status.join(', ');
  $('#f-status-text').textContent = f.status.length === 0 ? 'any' : f.status.length === 1 ? f.status[0] : `${f.status.length} statuses`;
  const sel = $('#f-name');
  if (f.name && ![...sel.options].some((o) => o.value === f.name)) sel.append(h('option', { value: f.name }, f.name));
  sel.value = f.name;
  $('#f-from').value = toLocalInput(f.createdFrom);
  $('#f-to').value = toLocalInput(f.createdTo);
  syncText($('#f-version'), f.version);
  syncText($('#f-prefix'), f.prefix);
  const top = $('#f-top');
  if (![...top.options].some((o) => o.value === String(f.top))) top.append(h('option', { value: String(f.top) }, String(f.top)));
  top.value = String(f.top);
  $('#f-order').value = f.order;
}

function page(delta) {
  const p = pagerFor(state.view.filters);
  if (delta > 0 && p.next) {
    p.stack.length = p.index + 1;
    p.stack.push(p.next);
    p.index++;
  } else if (delta < 0 && p.index > 0) {
    p.index--;
  } else {
    return;
  }
  state.lastData = '';
  refresh().then(() => $('#rows')?.closest('.table-wrap')?.scrollIntoView({ block: 'nearest' }));
}

async function loadList(tick = false) {
  const f = state.view.filters;
  const p = pagerFor(f);
  const q = new URLSearchParams(filterQuery(f));
  q.set('top', String(f.top));
  q.set('order', f.order);
  if (p.stack[p.index]) q.set('token', p.stack[p.index]);
  const cq = filterQuery(f, false);
  const c = state.counts;
  const fresh = tick && c.query === cq && Date.now() - c.at < COUNTS_REFRESH_MS;
  const [list, counts, live] = await Promise.all([
    apiGet(`instances?${q}`),
    fresh ? c.data : apiGet(`counts?${cq}`),
    apiGet('live'),
  ]);
  if (!fresh) state.counts = { query: cq, at: Date.now(), data: counts };
  if (state.view.filters !== f) return; // navigated away meanwhile
  renderLive(live);
  const data = JSON.stringify([list, counts]);
  if (data === state.lastData) {
    updateDurations();
    return;
  }
  state.lastData = data;
  p.next = list.next;
  renderCounts(f, counts);
  renderRows(list.instances);
  $('#prev').disabled = p.index === 0;
  $('#next').disabled = !list.next;
  $('#page-no').textContent = `Page ${p.index + 1}`;
}

function renderCounts(f, counts) {
  const ul = $('#counts');
  const items = [h('li', {},
    h('a', { href: listHash({ ...f, status: [] }), class: 'count', 'aria-current': f.status.length === 0 ? 'true' : false, dataset: { testid: 'count-all' } },
      h('span', { class: 'count-label' }, 'All'), ' ', h('span', { class: 'count-n' }, counts.total)))];
  for (const s of STATUSES) {
    const n = counts.counts[s] || 0;
    if (n === 0 && !f.status.includes(s) && (s === 'ContinuedAsNew' || s === 'Canceled')) continue;
    const only = f.status.length === 1 && f.status[0] === s;
    items.push(h('li', {},
      h('a', {
        href: listHash({ ...f, status: only ? [] : [s] }),
        class: `count s-${s}`,
        'aria-current': only ? 'true' : false,
        title: only ? 'Show every status' : `Show only ${s}`,
        dataset: { testid: `count-${s}`, count: String(n) },
      }, h('span', { class: 'count-label' }, s), ' ', h('span', { class: 'count-n' }, n))));
  }
  ul.replaceChildren(...items);
  // Work no host takes: it waits for a host that registers its orchestrator or activity.
  const un = counts.unclaimed || [];
  const p = $('#unclaimed');
  p.hidden = un.length === 0;
  p.textContent = un.length === 0 ? '' : 'Waiting for a host that registers it: ' +
    un.map((u) => `${u.kind === 'activity' ? 'activity' : 'orchestrator'} ${u.name} (${u.count})`).join(', ');
}

// renderLive draws the host's last minutes (api/live) as three sparklines: orchestrations
// finished per second, work waiting, failures per second. Each has its own scale, from 0 to its
// maximum, and shows its latest value.
function renderLive(live) {
  const section = $('#live-chart');
  if (!section) return;
  section.hidden = live.off;
  if (live.off) return;
  const samples = live.samples;
  const per = (n) => n / (live.interval || 1);
  const series = [
    { key: 'throughput', label: 'Finished', unit: '/s', values: samples.map((x) => per(x.completed)) },
    { key: 'backlog', label: 'Backlog', unit: '', values: samples.map((x) => Math.max(x.backlog, 0)) },
    { key: 'failures', label: 'Failures', unit: '/s', values: samples.map((x) => per(x.failed)) },
  ];
  const minutes = Math.round((samples.length * (live.interval || 0)) / 60);
  section.title = `The last ${minutes || 1} minute(s), a point every ${live.interval} s`;
  $('#live-sparks').replaceChildren(...series.map((s) => spark(s, samples.length)));
}

function spark(s, n) {
  const W = 100, H = 30;
  const max = Math.max(...s.values, 0);
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  const last = s.values.length ? s.values[s.values.length - 1] : 0;
  const show = (v) => (s.unit === '/s' ? (v < 10 ? v.toFixed(1) : Math.round(v)) : Math.round(v)) + s.unit;
  svg.setAttribute('aria-label', `${s.label}: now ${show(last)}, at most ${show(max)}`);
  const base = document.createElementNS(svg.namespaceURI, 'line');
  for (const [k, v] of Object.entries({ x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 })) base.setAttribute(k, v);
  svg.append(base);
  const line = document.createElementNS(svg.namespaceURI, 'polyline');
  const step = n > 1 ? W / (n - 1) : 0;
  const y = (v) => (max > 0 ? H - 1 - (v / max) * (H - 2) : H - 1);
  const points = s.values.map((v, i) => `${(i * step).toFixed(2)},${y(v).toFixed(2)}`);
  if (points.length === 1) points.push(`${W},${y(s.values[0]).toFixed(2)}`); // one sample: a flat line
  line.setAttribute('points', points.join(' '));
  svg.append(line);
  return h('figure', { class: `spark spark-${s.key}`, dataset: { testid: `spark-${s.key}`, points: String(s.values.length), now: String(last) } },
    h('figcaption', { class: 'spark-head' }, h('span', {}, s.label), h('span', { class: 'spark-now' }, show(last))),
    svg);
}

function renderRows(instances) {
  state.rows = instances;
  // The selection keeps to the rows shown: an action never reaches an instance not on screen.
  const shown = new Set(instances.map((i) => i.id));
  for (const id of state.selected) if (!shown.has(id)) state.selected.delete(id);
  const rows = instances.map((i) => h('tr', { dataset: { testid: 'instance-row', id: i.id, status: i.status } },
    h('td', { class: 'sel' }, h('input', { type: 'checkbox', checked: state.selected.has(i.id), 'aria-label': `Select ${i.id}`, dataset: { testid: 'select-row' } })),
    h('td', { 'data-label': 'Instance ID', class: 'id' }, h('a', { href: instanceHash(i.id), dataset: { testid: 'instance-link' } }, i.id)),
    h('td', { 'data-label': 'Orchestrator' }, i.name),
    h('td', { 'data-label': 'Version', class: 'version', dataset: { testid: 'version-cell' } }, i.version ? h('code', {}, i.version) : null),
    h('td', { 'data-label': 'Status' }, badge(i.status)),
    h('td', { 'data-label': 'Custom status', class: 'custom' },
      i.customStatusPreview ? h('code', { title: i.customStatusPreview, dataset: { testid: 'custom-status-cell' } }, i.customStatusPreview) : null),
    h('td', { 'data-label': `Created (${zoneName()})` }, timeEl(i.createdAt)),
    h('td', { 'data-label': `Updated (${zoneName()})` }, timeEl(i.updatedAt)),
    h('td', { 'data-label': 'Duration', class: 'num dur', dataset: { testid: 'duration-cell' } }, rowDuration(i))));
  $('#rows').replaceChildren(...rows);
  // The version column shows only when a row has a version: apps that do not version their
  // orchestrations keep the table they know.
  $('table[data-testid=instances]').classList.toggle('no-version', !instances.some((i) => i.version));
  $('#empty').hidden = instances.length > 0;
  syncSelection();
}

// rowDuration is how long an instance ran: created to its last update once finished, so far
// while active.
function rowDuration(i) {
  const active = ACTIVE.has(i.status);
  const end = active ? Date.now() : Date.parse(i.updatedAt);
  return formatDuration(end - Date.parse(i.createdAt)) + (active ? ' so far' : '');
}

function updateDurations() {
  for (const tr of document.querySelectorAll('#rows tr')) {
    const i = state.rows.find((r) => r.id === tr.dataset.id);
    if (i && ACTIVE.has(i.status)) tr.querySelector('.dur').textContent = rowDuration(i);
  }
}

// syncSelection shows the selection in the checkboxes and the bulk bar.
function syncSelection() {
  const sel = state.rows.filter((r) => state.selected.has(r.id));
  const active = sel.filter((r) => ACTIVE.has(r.status)).length;
  $('#bulk-count').textContent = sel.length ? `${sel.length} selected` : 'None selected';
  $('#bulk-terminate').disabled = active === 0;
  $('#bulk-purge').disabled = sel.length - active === 0;
  $('#bulk-clear').disabled = sel.length === 0;
  const all = $('#select-all');
  all.checked = sel.length > 0 && sel.length === state.rows.length;
  all.indeterminate = sel.length > 0 && sel.length < state.rows.length;
  for (const box of document.querySelectorAll('#rows input[type=checkbox]')) box.checked = state.selected.has(box.closest('tr').dataset.id);
}

// ---- instance view -----------------------------------------------------------------------------

function mountInstance(view) {
  const main = $('#main');
  main.replaceChildren($('#instance-view').content.cloneNode(true));
  $('#crumb-id').textContent = view.id;
  $('#i-id').textContent = view.id;
  document.title = `${view.id} · Reprise dashboard`;
}

async function loadInstance() {
  const view = state.view;
  let d;
  try {
    d = await apiGet(`instances/${encodeURIComponent(view.id)}`);
  } catch (err) {
    if (state.view !== view) return;
    if (err.status === 404) {
      $('#main').replaceChildren(
        h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/' }, 'Instances')),
        h('div', { class: 'error-box', role: 'alert', dataset: { testid: 'not-found' } },
          h('p', {}, `No instance ${view.id} in this task hub (it may have been purged).`)));
      state.lastData = '';
      return;
    }
    throw err;
  }
  if (state.view !== view) return;
  const data = JSON.stringify(d);
  if (data === state.lastData) {
    if (!d.timeline.end) { // still running: the duration and the open bars grow
      renderDuration(d);
      renderTimeline(d);
    }
    return;
  }
  state.lastData = data;
  state.detail = d;
  $('#i-name').textContent = d.name;
  const st = $('#i-status');
  st.className = `badge s-${d.status}`;
  st.textContent = d.status;
  $('#i-created').replaceChildren(timeEl(d.createdAt, true));
  $('#i-updated').replaceChildren(timeEl(d.updatedAt, true));
  renderDuration(d);
  $('#i-exec').textContent = d.executionId || '';
  $('#i-version-row').hidden = !d.version;
  $('#i-version').textContent = d.version || '';
  const parent = $('#i-parent');
  $('#i-parent-row').hidden = !d.parentId;
  if (d.parentId) {
    parent.href = instanceHash(d.parentId);
    parent.textContent = d.parentId;
  }
  $('#i-input').textContent = pretty(d.input);
  $('#i-output').textContent = pretty(d.output);
  $('#i-custom').textContent = pretty(d.customStatus);
  $('#raw-json').textContent = JSON.stringify(d.history, null, 2);
  updateZoneLabels();
  renderHistory(d);
  renderFailure(d.failure);
  renderActions(d);
  renderTimeline(d);
}

function renderDuration(d) {
  const end = d.timeline.end ? Date.parse(d.timeline.end) : Date.now();
  $('#i-duration').textContent = formatDuration(end - Date.parse(d.timeline.start)) + (d.timeline.end ? '' : ' so far');
}

function renderFailure(f) {
  const sec = $('#failure');
  sec.hidden = !f;
  if (!f) return;
  const parts = [];
  for (let cur = f, depth = 0; cur; cur = cur.inner, depth++) {
    parts.push(h('div', { class: 'failure-item' },
      depth ? h('h3', {}, 'Caused by') : null,
      h('p', {}, cur.type ? h('strong', { dataset: { testid: 'failure-type' } }, cur.type) : null, cur.type ? ': ' : '',
        h('span', { dataset: { testid: 'failure-message' } }, cur.message)),
      cur.details ? h('pre', { tabindex: '0' }, pretty(cur.details)) : null,
      cur.stackTrace ? h('details', { open: depth === 0 },
        h('summary', {}, 'Stack trace'), h('pre', { class: 'stack', tabindex: '0', dataset: { testid: 'failure-stack' } }, cur.stackTrace)) : null));
  }
  $('#failure-body').replaceChildren(...parts);
}

// ---- history table -----------------------------------------------------------------------------

const SCHEDULING = new Set(['TaskScheduled', 'TimerCreated', 'SubOrchestrationInstanceCreated', 'EventSent']);

// renderHistory fills the history table: one row per event, with what it says in words and its
// payload (inline when short, behind a disclosure when long).
function renderHistory(d) {
  const body = $('#history-rows');
  if (!body) return;
  const start = Date.parse(d.timeline.start);
  const scheduledAt = new Map(); // sequence number → time of its latest scheduling event
  const rows = d.events.map((e, i) => {
    if (SCHEDULING.has(e.type)) scheduledAt.set(e.id, Date.parse(e.time));
    const t = Date.parse(e.time);
    const details = [];
    const text = (s) => details.push(h('span', {}, s));
    const link = (id) => h('a', { href: instanceHash(id) }, id);
    switch (e.type) {
      case 'ExecutionStarted':
        if (e.instanceId) details.push(h('span', {}, 'sub-orchestration of ', link(e.instanceId)));
        break;
      case 'TaskScheduled':
        if (e.attempt > 1) text(`attempt ${e.attempt}`);
        break;
      case 'SubOrchestrationInstanceCreated':
        details.push(h('span', {}, 'instance ', link(e.instanceId)));
        break;
      case 'TimerCreated':
        text(`fires at ${formatTime(e.fireAt, true)}`);
        if (e.timeoutOf) text(`the timeout of the wait for event ${e.timeoutOf}`);
        else if (e.retry) text('the wait before a retry');
        break;
      case 'EventSent':
        details.push(h('span', {}, 'to ', link(e.instanceId)));
        break;
      case 'ExecutionTerminated': case 'ExecutionSuspended': case 'ExecutionResumed': case 'ExecutionRewound':
        if (e.reason) text(`reason: ${e.reason}`);
        break;
    }
    if (e.taskId !== undefined) {
      const at = scheduledAt.get(e.taskId);
      const what = e.type === 'TimerFired' ? 'timer' : e.type.startsWith('Sub') ? 'sub-orchestration' : 'task';
      text(`${what} #${e.taskId}${at !== undefined ? `, after ${formatDuration(t - at)}` : ''}`);
    }
    if (e.error) details.push(h('span', { class: 'span-error' }, [e.error.type, e.error.message].filter(Boolean).join(': ')));
    if (e.data) details.push(payload(e));
    return h('tr', { id: `ev-${i}`, dataset: { testid: 'history-row', type: e.type } },
      h('td', { class: 'num' }, e.id >= 0 ? String(e.id) : ''),
      h('td', { class: 'ev-type' }, e.type),
      h('td', { class: 'ev-time' }, timeEl(e.time), h('span', { class: 'muted' }, ` +${formatDuration(t - start)}`.replace('+<1 ms', '+0'))),
      h('td', { class: 'ev-name' }, e.name || ''),
      h('td', { class: 'ev-details' }, details));
  });
  if (rows.length === 0) rows.push(h('tr', {}, h('td', { colspan: '5', class: 'muted' }, 'No history yet.')));
  body.replaceChildren(...rows);
}

// payload shows an event's data: short values inline, long ones (pretty-printed) on demand.
function payload(e) {
  const label = e.type === 'TaskCompleted' || e.type === 'SubOrchestrationInstanceCompleted' || e.type.startsWith('Execution') && e.type !== 'ExecutionStarted'
    ? 'result' : e.type === 'EventRaised' || e.type === 'EventSent' ? 'payload' : 'input';
  let pretty = e.data;
  if (!e.dataCut) {
    try { pretty = JSON.stringify(JSON.parse(e.data), null, 2); } catch { /* shown as stored */ }
  }
  if (e.data.length <= 80 && !e.dataCut) return h('span', {}, `${label}: `, h('code', { class: 'ev-data' }, e.data));
  return h('details', { class: 'ev-payload' },
    h('summary', {}, `${label}: `, h('code', {}, `${e.data.slice(0, 60)}…`)),
    h('pre', { tabindex: '0' }, pretty + (e.dataCut ? '\n… (cut: the raw history below has all of it)' : '')));
}

// showEvent scrolls to a span's scheduling event in the history table and opens its payload.
function showEvent(d, s) {
  const i = d.events.findIndex((e) => SCHEDULING.has(e.type) && e.id === s.taskId && e.time === s.start);
  const row = i >= 0 && document.getElementById(`ev-${i}`);
  if (!row) return;
  for (const r of document.querySelectorAll('#history-rows tr.hl')) r.classList.remove('hl');
  row.classList.add('hl');
  const more = row.querySelector('details');
  if (more) more.open = true;
  row.scrollIntoView({ block: 'center' });
  (row.querySelector('summary') || row.querySelector('a') || row).focus?.();
}

// ---- entities ----------------------------------------------------------------------------------

function mountEntities(view) {
  $('#main').replaceChildren($('#entities-view').content.cloneNode(true));
  const names = $('#e-names');
  for (const n of state.info.entities || []) names.append(h('option', { value: n }));
  syncEntityFilters(view.filters);
  updateZoneLabels();
  const form = $('#e-filters');
  const apply = (ev) => {
    ev?.preventDefault();
    const next = {
      name: $('#e-name').value.trim(),
      key: $('#e-key').value,
      modifiedFrom: fromLocalInput($('#e-from').value),
      modifiedTo: fromLocalInput($('#e-to').value),
      transient: $('#e-transient').checked,
      top: validTop($('#e-top').value),
    };
    const hash = entitiesHash(next);
    if (hash !== location.hash) location.hash = hash;
  };
  form.addEventListener('submit', apply);
  // Every control applies on change; the text fields on Enter (submit) or when they lose the focus.
  form.addEventListener('change', () => apply());
  $('#e-top').addEventListener('change', () => apply());
  $('#e-clear').addEventListener('click', () => { location.hash = entitiesHash({ top: state.view.filters.top }); });
  $('#e-prev').addEventListener('click', () => entityPage(-1));
  $('#e-next').addEventListener('click', () => entityPage(+1));
}

// syncText shows a filter's value in its text field, unless the field has the focus: leaving
// one field applies the filters, and the navigation that follows must not wipe what is being
// typed into the next one.
function syncText(el, value) {
  if (document.activeElement !== el) el.value = value;
}

function syncEntityFilters(f) {
  document.title = 'Entities · Reprise dashboard';
  syncText($('#e-name'), f.name);
  syncText($('#e-key'), f.key);
  $('#e-from').value = toLocalInput(f.modifiedFrom);
  $('#e-to').value = toLocalInput(f.modifiedTo);
  $('#e-transient').checked = f.transient;
  const top = $('#e-top');
  if (![...top.options].some((o) => o.value === String(f.top))) top.append(h('option', { value: String(f.top) }, String(f.top)));
  top.value = String(f.top);
}

function entityPagerFor(f) {
  const key = `entities?${entityFilterQuery(f)}&top=${f.top}`;
  if (!state.pages.has(key)) state.pages.set(key, { stack: [''], index: 0, next: '' });
  return state.pages.get(key);
}

function entityPage(delta) {
  const p = entityPagerFor(state.view.filters);
  if (delta > 0 && p.next) {
    p.stack.length = p.index + 1;
    p.stack.push(p.next);
    p.index++;
  } else if (delta < 0 && p.index > 0) {
    p.index--;
  } else {
    return;
  }
  state.lastData = '';
  refresh();
}

async function loadEntities() {
  const view = state.view;
  const f = view.filters;
  const hint = $('#e-hint');
  // Keys are matched within one name (the instance ID is @name@key): the API refuses a key
  // prefix alone, and the page says so rather than showing an error.
  const needsName = Boolean(f.key && !f.name);
  hint.hidden = !needsName;
  hint.textContent = needsName ? 'A key prefix needs an entity name: keys are matched within one entity name.' : '';
  if (needsName) {
    state.lastData = '';
    renderEntityRows([]);
    $('#e-prev').disabled = true;
    $('#e-next').disabled = true;
    $('#e-page-no').textContent = '';
    return;
  }
  const p = entityPagerFor(f);
  const q = new URLSearchParams(entityFilterQuery(f));
  q.set('top', String(f.top));
  if (p.stack[p.index]) q.set('token', p.stack[p.index]);
  const page = await apiGet(`entities?${q}`);
  if (state.view !== view) return; // navigated away meanwhile
  const data = JSON.stringify(page);
  if (data === state.lastData) return;
  state.lastData = data;
  p.next = page.next;
  renderEntityRows(page.entities);
  $('#e-prev').disabled = p.index === 0;
  $('#e-next').disabled = !page.next;
  $('#e-page-no').textContent = `Page ${p.index + 1}`;
}

// keyText shows a key; the empty key is a key too.
const keyText = (key) => (key === '' ? '(empty key)' : key);

function existsBadge(e) {
  return e.exists
    ? h('span', { class: 'badge e-exists', dataset: { testid: 'entity-state-badge' }, title: 'The entity has state' }, 'exists')
    : h('span', { class: 'badge e-transient', dataset: { testid: 'entity-state-badge' }, title: 'No state: deleted, or only locked or queued' }, 'transient');
}

function lockHolder(e) {
  return e.lockedBy
    ? h('a', { href: instanceHash(e.lockedBy), dataset: { testid: 'lock-link' }, title: 'The orchestration holding the lock' }, e.lockedBy)
    : h('span', { class: 'muted' }, 'free');
}

function renderEntityRows(entities) {
  const rows = entities.map((e) => h('tr', { dataset: { testid: 'entity-row', id: e.id, exists: String(e.exists) } },
    h('td', { 'data-label': 'Entity' }, e.name),
    h('td', { 'data-label': 'Key', class: 'key' }, h('a', { href: entityHash(e.name, e.key), dataset: { testid: 'entity-link' } }, keyText(e.key))),
    h('td', { 'data-label': `Last modified (${zoneName()})` }, timeEl(e.lastModified)),
    h('td', { 'data-label': 'Lock holder', class: 'holder' }, lockHolder(e)),
    h('td', { 'data-label': 'Backlog', class: 'num', dataset: { testid: 'backlog-cell' } }, String(e.backlog)),
    h('td', { 'data-label': 'State' }, existsBadge(e))));
  $('#e-rows').replaceChildren(...rows);
  $('#e-empty').hidden = entities.length > 0;
}

function mountEntity(view) {
  $('#main').replaceChildren($('#entity-view').content.cloneNode(true));
  $('#ent-crumb').textContent = `${view.name} / ${keyText(view.key)}`;
  $('#ent-name').textContent = view.name;
  $('#ent-key').textContent = keyText(view.key);
  document.title = `${view.name} ${keyText(view.key)} · Reprise dashboard`;
  updateZoneLabels();
}

async function loadEntity() {
  const view = state.view;
  let d;
  try {
    d = await apiGet(`entity?${new URLSearchParams({ name: view.name, key: view.key })}`);
  } catch (err) {
    if (state.view !== view) return;
    if (err.status === 404 || err.status === 400) {
      $('#main').replaceChildren(
        h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/entities' }, 'Entities')),
        h('div', { class: 'error-box', role: 'alert', dataset: { testid: 'not-found' } },
          h('p', {}, err.status === 404
            ? `No entity ${view.name} with key ${keyText(view.key)} in this task hub: it was never signalled, or it was removed.`
            : `This is not an entity's address: ${err.message}`)));
      state.lastData = '';
      return;
    }
    throw err;
  }
  if (state.view !== view) return;
  const data = JSON.stringify(d);
  if (data === state.lastData) return;
  state.lastData = data;
  if (!$('#ent-id')) mountEntity(view); // it was not found before, and is now
  $('#ent-name').textContent = d.name;
  $('#ent-key').textContent = keyText(d.key);
  const ex = existsBadge(d);
  const badge = $('#ent-exists');
  badge.className = ex.className;
  badge.title = ex.title;
  badge.textContent = ex.textContent;
  $('#ent-id').textContent = d.id;
  $('#ent-modified').replaceChildren(timeEl(d.lastModified, true));
  $('#ent-lock').replaceChildren(lockHolder(d));
  $('#ent-backlog').textContent = d.backlog === 0 ? '0'
    : `${d.backlog} ${d.backlog === 1 ? 'message waits' : 'messages wait'} behind the lock`;
  $('#ent-backlog').dataset.count = String(d.backlog);
  const st = $('#ent-state');
  const cutNote = $('#ent-state-cut');
  cutNote.hidden = !d.stateCut;
  if (!d.exists) {
    st.textContent = 'No state: the entity was deleted, or is only locked or has messages queued (transient).';
    st.classList.add('muted');
  } else {
    st.classList.remove('muted');
    let text = d.state;
    if (!d.stateCut) {
      try { text = JSON.stringify(JSON.parse(d.state), null, 2); } catch { /* shown as stored */ }
    }
    st.textContent = text;
    cutNote.textContent = d.stateCut
      ? `Cut: the first ${d.state.length.toLocaleString()} characters of ${d.stateBytes.toLocaleString()} bytes are shown. The management API and \`reprise entities show\` have all of it.`
      : '';
  }
  const rows = d.ops.map((op) => h('tr', { dataset: { testid: 'op-row', failed: String(op.failed) } },
    h('td', { class: 'ev-time' }, timeEl(op.time)),
    h('td', { class: 'ev-name' }, op.operation),
    h('td', { class: 'req' }, h('code', {}, op.requestId)),
    h('td', { class: 'holder' }, op.caller
      ? h('a', { href: instanceHash(op.caller), dataset: { testid: 'caller-link' } }, op.caller)
      : h('span', { class: 'muted', title: 'Signals have no caller to answer' }, 'signal')),
    h('td', {}, op.failed ? h('span', { class: 'op-failed' }, 'failed') : 'ok')));
  if (rows.length === 0) rows.push(h('tr', {}, h('td', { colspan: '5', class: 'muted' }, 'No operations yet.')));
  $('#ent-ops').replaceChildren(...rows);
}

// ---- bulk actions ------------------------------------------------------------------------------

// bulkAction terminates the selected active instances, or purges the selected finished ones,
// through the management API, after a confirmation; it reports each instance that failed.
function bulkAction(op) {
  const sel = state.rows.filter((r) => state.selected.has(r.id));
  const targets = sel.filter((r) => (op === 'terminate') === ACTIVE.has(r.status));
  const skipped = sel.length - targets.length;
  if (targets.length === 0) return;
  const n = targets.length === 1 ? '1 instance' : `${targets.length} instances`;
  const skip = skipped ? ` ${skipped} selected ${skipped === 1 ? 'instance is' : 'instances are'} ${op === 'terminate' ? 'not active' : 'still active'} and left alone.` : '';
  const reason = h('input', { id: 'a-reason', type: 'text', autocomplete: 'off', dataset: { testid: 'action-reason' } });
  const list = h('ul', { class: 'bulk-list' }, targets.slice(0, 8).map((r) => h('li', {}, h('code', {}, r.id))), targets.length > 8 ? h('li', {}, `and ${targets.length - 8} more`) : null);
  let report = null;
  return act(openDialog({
    title: op === 'terminate' ? `Terminate ${n}?` : `Purge ${n}?`,
    text: (op === 'terminate'
      ? 'They stop at once and their status becomes Terminated.'
      : 'They and their histories are deleted from the store. This cannot be undone.') + skip,
    confirm: op === 'terminate' ? 'Terminate' : 'Purge', danger: true,
    fields: op === 'terminate' ? [list, field('a-reason', 'Reason (optional)', reason)] : [list],
    run: async () => {
      const q = reason.value.trim() ? `?reason=${encodeURIComponent(reason.value.trim())}` : '';
      const failed = [];
      const queue = [...targets];
      const worker = async () => {
        for (let r = queue.shift(); r; r = queue.shift()) {
          try {
            if (op === 'terminate') await request('POST', `${mgmtInstance(r.id)}/terminate${q}`);
            else await request('DELETE', mgmtInstance(r.id));
            state.selected.delete(r.id);
          } catch (err) {
            failed.push(`${r.id}: ${err.message}`);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(BULK_PARALLEL, targets.length) }, worker));
      const done = targets.length - failed.length;
      const verb = op === 'terminate' ? 'Terminate requests accepted for' : 'Purged';
      report = failed.length
        ? [`${verb} ${done} of ${targets.length}; ${failed.length} failed (still selected):\n${failed.join('\n')}`, 'error']
        : [`${verb} ${n}.`, 'ok'];
    },
  }), () => notify(...report));
}

// ---- timeline ----------------------------------------------------------------------------------

const KIND_LABEL = { activity: 'Activity', timer: 'Timer', suborchestration: 'Sub-orchestration' };
const TICK_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 216e5, 432e5, 864e5];

function renderTimeline(d) {
  const tl = d.timeline;
  const box = $('#timeline');
  if (!box) return;
  const start = Date.parse(tl.start);
  const now = Date.now();
  const finish = tl.end ? Date.parse(tl.end) : now;
  let last = finish;
  for (const s of tl.spans) last = Math.max(last, s.end ? Date.parse(s.end) : now);
  for (const m of tl.marks) last = Math.max(last, Date.parse(m.time));
  const total = Math.max(last - start, 1);
  const pct = (t) => `${(Math.min(Math.max(t - start, 0), total) / total) * 100}%`;

  // About one labelled tick per 90 px of track, and none so close to the end that its label
  // would be cut off.
  const trackWidth = Math.max(box.clientWidth - (window.innerWidth <= 640 ? 0 : 420), 120);
  const maxTicks = Math.max(2, Math.floor(trackWidth / 90));
  const step = TICK_STEPS.find((s) => total / s <= maxTicks) || TICK_STEPS[TICK_STEPS.length - 1];
  const ticks = [];
  for (let t = 0; t <= total * 0.88; t += step) {
    const tick = h('span', { class: 'tick' }, `+${formatDuration(t)}`.replace('+<1 ms', '0'));
    tick.style.left = `${(t / total) * 100}%`;
    ticks.push(tick);
  }
  const rows = [h('div', { class: 'tl-row tl-axis', 'aria-hidden': 'true' },
    h('div', { class: 'tl-label' }, formatTime(tl.start, true)), h('div', { class: 'tl-track' }, ticks))];

  if (tl.spans.length === 0 && tl.marks.length === 0) {
    rows.push(h('p', { class: 'muted' }, 'No activities, timers, sub-orchestrations or events yet.'));
  }
  for (const s of tl.spans) {
    const s0 = Date.parse(s.start);
    const s1 = s.end ? Date.parse(s.end) : now;
    const dur = formatDuration(s1 - s0) + (s.end ? '' : ' so far');
    const stateText = spanState(s);
    const label = `${KIND_LABEL[s.kind]} ${s.name}${s.summary ? ` (${s.summary})` : ''}: ${stateText || s.state}, ${dur}`;
    const barAttrs = {
      class: `bar k-${s.kind} st-${s.state}`,
      title: [label, s.input ? `input: ${s.input}` : '', s.fireAt ? `due ${formatTime(s.fireAt, true)}` : '', s.error ? `error: ${s.error}` : ''].filter(Boolean).join('\n'),
      dataset: { testid: `span-${s.kind}`, state: s.state },
    };
    const bar = s.kind === 'suborchestration' && s.instanceId
      ? h('a', { ...barAttrs, href: instanceHash(s.instanceId), 'aria-label': `${label}; open instance ${s.instanceId}` })
      : h('span', { ...barAttrs, role: 'img', 'aria-label': label });
    bar.style.left = pct(s0);
    bar.style.width = `max(3px, calc(${pct(s1)} - ${pct(s0)}))`;
    const name = s.kind === 'suborchestration' && s.instanceId
      ? h('a', { href: instanceHash(s.instanceId), dataset: { testid: 'child-link' } }, s.name)
      : h('span', {}, s.name);
    rows.push(h('div', { class: 'tl-row', dataset: { testid: 'timeline-row', kind: s.kind } },
      h('div', { class: 'tl-label' },
        h('span', { class: `kind k-${s.kind}` }, KIND_LABEL[s.kind]), ' ', name,
        // The input's summary tells apart the bars of one activity (say_hello "Tokyo", "Seattle";
        // customer: "acme", ...); its tooltip has more of it, a click the whole in the history.
        s.summary ? [' ', h('button', {
          type: 'button', class: 'span-input linklike', title: `input: ${s.input}\n(click: the whole input in the history)`,
          'aria-label': `input ${s.summary}: show it in the history`, dataset: { testid: 'span-input' },
          onclick: () => showEvent(d, s),
        }, s.summary)] : null,
        h('span', { class: 'dur' }, ` ${dur}`),
        stateText ? h('span', { class: `state st-${s.state}` }, ` ${stateText}`) : null,
        s.error ? h('span', { class: 'span-error' }, s.error) : null),
      h('div', { class: 'tl-track' }, bar)));
  }
  if (tl.marks.length) {
    const marks = tl.marks.map((m) => {
      const text = markText(m);
      const el = h('span', { class: `mark m-${m.kind}`, role: 'img', 'aria-label': `${text} at ${m.time}`, title: `${text}\n${formatTime(m.time, true)}`, dataset: { testid: 'mark', kind: m.kind } });
      el.style.left = pct(Date.parse(m.time));
      return el;
    });
    rows.push(h('div', { class: 'tl-row tl-marks', dataset: { testid: 'timeline-marks' } },
      h('div', { class: 'tl-label' }, h('span', { class: 'kind' }, 'Events'), ' ',
        h('span', { class: 'mark-list' }, tl.marks.map((m) => markText(m)).join(' · '))),
      h('div', { class: 'tl-track' }, marks)));
  }
  box.replaceChildren(...rows);
}

// spanState words the states worth a word: failures, bars left open, and what became of a
// timeout timer.
function spanState(s) {
  if (s.timeoutOf && s.state === 'completed') return 'timed out';
  if (s.timeoutOf && s.state === 'canceled') return `canceled: ${s.timeoutOf} came first`;
  return s.state === 'failed' || s.state === 'abandoned' || s.state === 'canceled' ? s.state : '';
}

function markText(m) {
  switch (m.kind) {
    case 'EventRaised': return `event ${m.name} raised`;
    case 'EventSent': return `event ${m.name} sent to ${m.instanceId}`;
    case 'ExecutionSuspended': return 'suspended';
    case 'ExecutionResumed': return 'resumed';
    case 'ExecutionTerminated': return 'terminated';
    case 'ExecutionRewound': return 'rewound';
    case 'ContinueAsNew': return 'continued as new';
    case 'ExecutionCompleted': return (m.name || 'completed').toLowerCase();
    default: return m.name ? `${m.kind} ${m.name}` : m.kind;
  }
}

// ---- actions -----------------------------------------------------------------------------------

function renderActions(d) {
  const st = d.status;
  const active = ACTIVE.has(st);
  const buttons = [];
  const add = (label, testid, fn, danger = false) =>
    buttons.push(h('button', { type: 'button', class: danger ? 'danger' : '', dataset: { testid }, onclick: fn }, label));
  if (active) {
    add('Raise event…', 'action-raise', () => raiseEvent(d));
    if (st === 'Suspended') add('Resume…', 'action-resume', () => simpleAction(d, 'resume'));
    else add('Suspend…', 'action-suspend', () => simpleAction(d, 'suspend'));
    add('Terminate…', 'action-terminate', () => simpleAction(d, 'terminate'), true);
  }
  if (st === 'Failed') add('Rewind…', 'action-rewind', () => simpleAction(d, 'rewind'));
  add('Restart…', 'action-restart', () => restart(d));
  if (!active) add('Purge…', 'action-purge', () => purge(d), true);
  $('#actions').replaceChildren(...buttons);
}

const mgmtInstance = (id) => `${MGMT}/instances/${encodeURIComponent(id)}`;

// openDialog fills the action dialog and resolves with true when the action ran (submit) or
// false when cancelled. run(values) performs the action and throws to keep the dialog open with
// the error shown inline.
function openDialog({ title, text, confirm, danger, fields = [], run }) {
  const dlg = $('#action-dialog');
  $('#action-h').textContent = title;
  $('#action-text').textContent = text;
  $('#action-fields').replaceChildren(...fields);
  $('#action-error').textContent = '';
  const ok = $('#action-ok');
  ok.textContent = confirm;
  ok.className = danger ? 'danger' : 'primary';
  ok.disabled = false;
  return new Promise((resolve) => {
    const form = $('#action-form');
    const done = (result) => {
      form.removeEventListener('submit', onSubmit);
      $('#action-cancel').removeEventListener('click', onCancel);
      dlg.removeEventListener('cancel', onCancel);
      if (dlg.open) dlg.close();
      resolve(result);
    };
    const onCancel = (ev) => { ev.preventDefault(); done(false); };
    const onSubmit = async (ev) => {
      ev.preventDefault();
      $('#action-error').textContent = '';
      ok.disabled = true;
      try {
        await run();
        done(true);
      } catch (err) {
        $('#action-error').textContent = err.message;
      } finally {
        ok.disabled = false;
      }
    };
    form.addEventListener('submit', onSubmit);
    $('#action-cancel').addEventListener('click', onCancel);
    dlg.addEventListener('cancel', onCancel);
    dlg.showModal();
    (fields.length ? dlg.querySelector('input, textarea, select') : $('#action-cancel'))?.focus();
  });
}

function field(id, label, input, hint) {
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null);
}

const VERBS = {
  terminate: { title: 'Terminate', text: 'The instance stops at once and its status becomes Terminated. Running activities finish, but their results are ignored.', done: 'Terminate request accepted' },
  suspend: { title: 'Suspend', text: 'The instance stops making progress until it is resumed; events raised meanwhile are kept.', done: 'Suspend request accepted' },
  resume: { title: 'Resume', text: 'The suspended instance continues where it stopped.', done: 'Resume request accepted' },
  rewind: { title: 'Rewind', text: 'The failed instance is rerun from history: the failed activities and sub-orchestrations run again.', done: 'Rewind request accepted' },
};

function simpleAction(d, op) {
  const v = VERBS[op];
  const reason = h('input', { id: 'a-reason', type: 'text', autocomplete: 'off', dataset: { testid: 'action-reason' } });
  return act(openDialog({
    title: `${v.title} ${d.id}?`, text: v.text, confirm: v.title, danger: op === 'terminate',
    fields: [field('a-reason', 'Reason (optional)', reason)],
    run: async () => {
      const q = reason.value.trim() ? `?reason=${encodeURIComponent(reason.value.trim())}` : '';
      await request('POST', `${mgmtInstance(d.id)}/${op}${q}`);
      notify(`${v.done} for ${d.id}.`, 'ok');
    },
  }));
}

function raiseEvent(d) {
  const name = h('input', { id: 'a-event', type: 'text', required: true, autocomplete: 'off', dataset: { testid: 'event-name' } });
  const payload = h('textarea', { id: 'a-payload', rows: '6', spellcheck: 'false', 'aria-describedby': 'a-payload-hint', dataset: { testid: 'event-payload' } });
  payload.value = 'null';
  return act(openDialog({
    title: `Raise an event to ${d.id}`, text: 'The orchestration receives the event if it waits for one with this name (now or later).',
    confirm: 'Raise event',
    fields: [field('a-event', 'Event name', name), field('a-payload', 'Payload (JSON)', payload, 'Any JSON value: null, a number, "a string", {"an": "object"}.')],
    run: async () => {
      const n = name.value.trim();
      if (!n) {
        name.focus();
        throw new Error('Enter the event name.');
      }
      const body = payload.value.trim() || 'null';
      try {
        JSON.parse(body);
      } catch (err) {
        payload.focus();
        payload.setAttribute('aria-invalid', 'true');
        throw new Error(`The payload is not valid JSON: ${err.message}`);
      }
      payload.removeAttribute('aria-invalid');
      await request('POST', `${mgmtInstance(d.id)}/raiseEvent/${encodeURIComponent(n)}`, body);
      notify(`Event ${n} raised to ${d.id}.`, 'ok');
    },
  }));
}

function restart(d) {
  const same = h('input', { id: 'a-same', type: 'checkbox', dataset: { testid: 'restart-same-id' } });
  let started = '';
  return act(openDialog({
    title: `Restart ${d.id}?`,
    text: 'A new instance of the orchestrator starts with the same input. By default it gets a new instance ID; with the same ID, this instance must have finished and is replaced.',
    confirm: 'Restart',
    fields: [h('div', { class: 'field check' }, same, h('label', { for: 'a-same' }, 'Keep the same instance ID'))],
    run: async () => {
      const resp = await request('POST', `${mgmtInstance(d.id)}/restart?restartWithNewInstanceId=${!same.checked}`);
      const body = await resp.json().catch(() => ({}));
      started = body.id || d.id;
      notify(`Restarted as ${started}.`, 'ok');
    },
  }), () => {
    if (started && started !== d.id) location.hash = instanceHash(started);
  });
}

function purge(d) {
  let purged = false;
  return act(openDialog({
    title: `Purge ${d.id}?`, text: 'The instance and its history are deleted from the store. This cannot be undone.',
    confirm: 'Purge', danger: true,
    run: async () => {
      await request('DELETE', mgmtInstance(d.id));
      purged = true;
      notify(`Purged ${d.id}.`, 'ok');
    },
  }), () => {
    if (purged) location.hash = '#/';
  });
}

// act waits for a dialog's action, then refreshes (or navigates) so the page shows the result.
async function act(dialogDone, after) {
  const ran = await dialogDone;
  if (!ran) return;
  state.lastData = '';
  if (after) after();
  await refresh();
}

// ---- start -------------------------------------------------------------------------------------

function start() {
  $('#key-form').addEventListener('submit', submitKey);
  $('#key-dialog').addEventListener('cancel', (ev) => ev.preventDefault()); // nothing to show without a key
  $('#sign-out').addEventListener('click', signOut);
  $('#live').addEventListener('click', toggleLive);
  $('#tz').addEventListener('click', toggleZone);
  // The status menu of the list closes on a click elsewhere.
  document.addEventListener('click', (ev) => {
    const menu = $('#f-status');
    if (menu?.open && !menu.contains(ev.target)) menu.open = false;
  });
  updateZoneLabels();
  window.addEventListener('hashchange', () => route(true));
  document.addEventListener('visibilitychange', () => {
    schedule();
    if (document.visibilityState === 'visible' && state.live) refresh();
  });
  updateSignOut();
  schedule();
  route();
}

start();
