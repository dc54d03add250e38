// leadrouter's dashboard: live updates over server-sent events, the controls (sent to the JSON API with the
// session's CSRF token), ticking waits, the simulator, and notifications of new contacts. No framework, no
// inline script: the Content-Security-Policy allows only this file.

const csrf = document.querySelector('meta[name="csrf-token"]')?.content;
const content = () => document.getElementById('content');
const problem = document.getElementById('problem');

// The server renders times in the browser's zone once it knows it.
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
if (zone) {
  const cookie = `leadrouter_tz=${encodeURIComponent(zone)}`;
  if (!document.cookie.split('; ').includes(cookie)) {
    document.cookie = `${cookie}; path=/; SameSite=Strict; max-age=31536000`;
  }
}

// ---- ticking waits: elapsed times follow the server's clock, not the browser's ----
let clockOffset = 0;
function readServerClock() {
  const now = Date.parse(document.body.dataset.now || '');
  if (!Number.isNaN(now)) clockOffset = now - Date.now();
}
function duration(seconds) {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h ${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
function tick() {
  const now = Date.now() + clockOffset;
  for (const el of document.querySelectorAll('[data-since]')) {
    const since = Date.parse(el.dataset.since);
    if (!Number.isNaN(since)) el.textContent = duration(Math.max(0, Math.floor((now - since) / 1000)));
  }
}

// ---- talking to the API ----
function showProblem(text) {
  if (!problem) return;
  problem.textContent = text;
  problem.hidden = !text;
}
async function send(method, path, body) {
  const headers = {};
  if (csrf) headers['x-csrf-token'] = csrf;
  const init = { method, headers, credentials: 'same-origin' };
  if (body !== null && body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    showProblem(String(error));
    return null;
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    showProblem((data && data.detail) ? (typeof data.detail === 'string' ? data.detail : JSON.stringify(data.detail)) : `${response.status}`);
    return null;
  }
  showProblem('');
  return data ?? {};
}

// A form's fields as the API's JSON body; `data-type` says how to read each one. `null`: no body.
function bodyOf(form) {
  const body = {};
  let any = false;
  for (const el of form.elements) {
    if (!el.name || el.disabled || el.tagName === 'BUTTON' || el.tagName === 'FIELDSET') continue;
    const type = el.dataset.type;
    if (type === 'list') {
      body[el.name] = body[el.name] || [];
      if (el.checked) body[el.name].push(el.value);
      any = true;
      continue;
    }
    if (el.type === 'radio' && !el.checked) continue;
    let value = el.value;
    switch (type) {
      case 'int': value = value === '' ? null : Number.parseInt(value, 10); break;
      case 'float': value = value === '' ? null : Number.parseFloat(value); break;
      case 'bool': value = value === 'true'; break;
      case 'json': value = value.trim() === '' ? null : JSON.parse(value); break;
      case 'optional': value = value.trim() === '' ? null : value; break;
      case 'datetime': value = value ? new Date(value).toISOString() : null; break;
      default: break;
    }
    body[el.name] = value;
    any = true;
  }
  return any ? body : null;
}

async function submitApiForm(form) {
  let body;
  try {
    body = bodyOf(form);
  } catch (error) {
    showProblem(String(error));
    return;
  }
  const method = form.dataset.method;
  if (method === 'DELETE' && !window.confirm(form.getAttribute('aria-label') + '?')) return;
  const fieldset = form.querySelector('fieldset');
  if (fieldset) fieldset.disabled = true;
  const done = await send(method, form.dataset.path, body);
  if (fieldset) fieldset.disabled = false;
  if (done !== null) {
    if (form.closest('[data-reset-after]') || method === 'POST') form.reset?.();
    refresh();
  }
}

// ---- the simulator ----
const SVG = 'http://www.w3.org/2000/svg';
function element(tag, text, attrs = {}, ns = null) {
  const el = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  if (text !== null && text !== undefined) el.textContent = text;
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}
const pct = (share) => `${(share * 100).toFixed(1)} %`;
async function simulate(form) {
  const weights = [...document.querySelectorAll('[data-weight-of]')]
    .map((input) => ({ operator_id: Number(input.dataset.weightOf), weight: Number.parseFloat(input.value) }))
    .filter((w) => !Number.isNaN(w.weight));
  const body = {
    contacts: Number.parseInt(form.elements.contacts.value, 10),
    strategy: form.elements.strategy.value,
    capacity: form.querySelector('[name="capacity"]:checked')?.value ?? 'ignore',
  };
  if (weights.length) body.weights = weights;
  const result = await send('POST', form.dataset.path, body);
  const out = document.getElementById('simulation');
  if (!result || !out) return;
  const texts = out.dataset;
  const table = element('table', null, { class: 'simulated' });
  const head = table.createTHead().insertRow();
  for (const label of [texts.textOperator, texts.textTarget, texts.textSimulated]) head.append(element('th', label, { scope: 'col' }));
  const rows = table.createTBody();
  const bars = element('svg', null, { viewBox: `0 0 300 ${result.operators.length * 26 + 4}`, role: 'img', 'aria-hidden': 'true' }, SVG);
  result.operators.forEach((o, i) => {
    const row = rows.insertRow();
    row.dataset.operatorId = o.operator_id;
    row.append(element('th', o.operator_name ?? `#${o.operator_id}`, { scope: 'row' }));
    row.append(element('td', pct(o.target_share)));
    row.append(element('td', `${pct(o.simulated_share)} (${o.simulated_count})`, { class: 'simulated-share' }));
    bars.append(element('rect', null, { class: 'bar target', x: 0, y: i * 26 + 2, height: 10, width: Math.max(1, o.target_share * 300).toFixed(1) }, SVG));
    bars.append(element('rect', null, { class: 'bar today', x: 0, y: i * 26 + 13, height: 10, width: Math.max(1, o.simulated_share * 300).toFixed(1) }, SVG));
  });
  const summary = element('p', `${texts.textUnassigned}: ${result.unassigned}`, { class: 'muted' });
  out.replaceChildren(table, bars, summary);
}

// ---- live: reload the page's data on connect and on every change, bursts coalesced ----
let refreshing = false;
let again = false;
let postponed = false;
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
function editing() {
  const active = document.activeElement;
  return active && content()?.contains(active) && active.matches('input, select, textarea');
}
// What the page did, for anyone measuring it (the browser tests, a person in the console).
window.leadrouterLive = { events: 0, reloads: 0, swaps: 0, reloadMs: [] };
const stats = window.leadrouterLive;

// The page's markup without the ticking waits' figures.
const stable = (html) => html.replace(/(<time[^>]*data-since[^>]*>)[^<]*/g, '$1');
let shownShape = null;
async function reloadOnce() {
  if (editing()) { postponed = true; return; }
  const began = performance.now();
  stats.reloads += 1;
  let response;
  try {
    response = await fetch(location.href, { credentials: 'same-origin', headers: { accept: 'text/html' } });
  } catch { return; }
  if (response.redirected && new URL(response.url).pathname === '/ui/sign-in') { location.href = response.url; return; }
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), 'text/html');
  const next = fresh.getElementById('content');
  if (!next || editing()) { postponed = postponed || Boolean(next); return; }
  // Unchanged but for the waits the page ticks itself: nothing to swap, and nothing under the visitor's
  // pointer is replaced.
  const shape = stable(next.innerHTML);
  if (shape === shownShape) return;
  shownShape = shape;
  stats.swaps += 1;
  const kept = {};
  for (const el of content().querySelectorAll('[data-keep][id]')) kept[el.id] = [...el.childNodes];
  content().replaceChildren(...next.childNodes);
  for (const [id, nodes] of Object.entries(kept)) document.getElementById(id)?.replaceChildren(...nodes);
  if (fresh.body.dataset.now) document.body.dataset.now = fresh.body.dataset.now;
  readServerClock();
  tick();
  announceNewContacts();
  if (stats.reloadMs.length < 10000) stats.reloadMs.push(Math.round(performance.now() - began));
}
async function refresh() {
  if (refreshing) { again = true; return; }
  refreshing = true;
  try {
    do {
      again = false;
      await reloadOnce();
      if (again) await sleep(250);
    } while (again);
  } finally {
    refreshing = false;
  }
}

// ---- the operator's page: a notification and a title badge for each new contact ----
const baseTitle = document.title;
let knownContacts = null;
let unseen = 0;
function announceNewContacts() {
  if (document.body.dataset.page !== 'me') return;
  const ids = new Set([...document.querySelectorAll('li.contact[data-status="active"]')].map((li) => li.dataset.contactId));
  if (knownContacts !== null) {
    const fresh = [...ids].filter((id) => !knownContacts.has(id));
    if (fresh.length) {
      unseen += fresh.length;
      document.title = `(${unseen}) ${baseTitle}`;
      if ('Notification' in window && Notification.permission === 'granted') {
        for (const id of fresh) new Notification(document.body.dataset.textNewContact || 'New contact', { body: `#${id}`, tag: `contact-${id}` });
      }
    }
  }
  knownContacts = ids;
  updateNotifyButton();
}
function seen() {
  if (document.visibilityState === 'visible' && unseen) { unseen = 0; document.title = baseTitle; }
}
function updateNotifyButton() {
  const button = document.querySelector('[data-enable-notifications]');
  if (button) button.hidden = !('Notification' in window) || Notification.permission !== 'default';
}

// ---- wiring ----
document.addEventListener('submit', (event) => {
  const form = event.target;
  if (form.matches('form.api')) { event.preventDefault(); submitApiForm(form); }
  else if (form.matches('form.simulator')) { event.preventDefault(); simulate(form); }
});
document.addEventListener('change', (event) => {
  if (event.target.matches('[data-autosubmit]')) event.target.form?.requestSubmit();
});
document.addEventListener('click', (event) => {
  if (event.target.closest('[data-enable-notifications]') && 'Notification' in window) {
    Notification.requestPermission().then(updateNotifyButton);
  }
});
document.addEventListener('focusout', () => {
  setTimeout(() => { if (postponed && !editing()) { postponed = false; refresh(); } }, 0);
});
document.addEventListener('visibilitychange', seen);
window.addEventListener('focus', seen);

shownShape = stable(content()?.innerHTML ?? '');
readServerClock();
tick();
setInterval(tick, 1000);
announceNewContacts();

const live = document.getElementById('live');
if (live) {
  const events = new EventSource('/ui/events');
  events.addEventListener('open', () => {
    live.textContent = live.dataset.on;
    live.classList.add('on');
    document.body.dataset.live = 'on';
    refresh();
  });
  events.addEventListener('change', () => { stats.events += 1; refresh(); });
  events.addEventListener('error', () => {
    live.textContent = live.dataset.off;
    live.classList.remove('on');
    document.body.dataset.live = 'off';
  });
  // What no event announces (a shift that begins, say) shows within a minute.
  setInterval(refresh, 60000);
}
