// The sparkwing dashboard page. Plain DOM, no framework, no network access beyond this origin.
//
// Safety rule for this file: data from the API only ever reaches the page through textContent,
// setAttribute on non-executable attributes, or CSSOM colours. innerHTML is never used, and
// links built from data are limited to http(s) URLs.
'use strict';

const POLL_MS = 800;
const SLOW_POLL_MS = 5000;
const SVG_NS = 'http://www.w3.org/2000/svg';

const app = document.getElementById('app');
const liveDot = document.getElementById('live');
let timer = null;
let generation = 0; // bumps on every route change so stale polls stop

// ---------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = String(v);
    else if (k === 'onclick' || k === 'oninput' || k === 'onchange' || k === 'onsubmit') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, String(v));
  }
}

// Like Node.replaceChildren, but skips null/false children instead of printing "null".
function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

function append(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

// Only web links: a `javascript:` URL in a record must never become clickable.
function safeUrl(u) {
  if (typeof u !== 'string' || u === '') return null;
  try {
    const url = new URL(u, location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch (_) {
    return null;
  }
}

function link(href, text, attrs) {
  const safe = safeUrl(href);
  if (!safe) return document.createTextNode(text);
  return el('a', Object.assign({ href: safe, target: '_blank', rel: 'noopener noreferrer', text }, attrs || {}));
}

async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: 'application/json' }, cache: 'no-store' });
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  if (!r.ok) throw new Error((body && body.error) || `HTTP ${r.status}`);
  return body;
}

function setLive(state) {
  liveDot.className = 'live' + (state ? ' ' + state : '');
}

function ms(ts) {
  const t = Date.parse(ts);
  return Number.isNaN(t) ? null : t;
}

function duration(startedAt, finishedAt) {
  const s = ms(startedAt);
  if (s === null) return '';
  const f = finishedAt ? ms(finishedAt) : Date.now();
  if (f === null) return '';
  let secs = Math.max(0, Math.round((f - s) / 1000));
  const h = Math.floor(secs / 3600); secs -= h * 3600;
  const m = Math.floor(secs / 60); secs -= m * 60;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${secs}s`;
  return `${secs}s`;
}

function when(ts) {
  const t = ms(ts);
  if (t === null) return '';
  const d = new Date(t);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// The colour class of a node: its outcome once done, else its status.
function nodeState(n) {
  if (n.status === 'done') return n.outcome || 'success';
  return n.status || 'pending';
}

function badge(state) {
  return el('span', { class: 'badge ' + state, text: state });
}

// A run in flight rewrites its state every 30 s (`last_heartbeat_at`); a `running` run whose
// heartbeat is over 2 minutes old has most likely lost its machine.
const STALE_AFTER_MS = 120000;
function staleBadge(run) {
  if (run.status !== 'running') return null;
  if (run.orphaned) {
    return el('span', {
      class: 'badge stale',
      text: 'stale',
      title: 'no process on this machine runs it any more: it was killed before it could record its end',
    });
  }
  if (!run.last_heartbeat_at) return null;
  const at = Date.parse(run.last_heartbeat_at.replace(/\.(\d{3})\d*/, '.$1'));
  if (Number.isNaN(at) || Date.now() - at <= STALE_AFTER_MS) return null;
  const mins = Math.floor((Date.now() - at) / 60000);
  return el('span', {
    class: 'badge stale',
    text: 'stale',
    title: `no heartbeat for ${mins} min: the run's machine is most likely gone`,
  });
}

function schedule(fn, delay) {
  clearTimeout(timer);
  const gen = generation;
  timer = setTimeout(() => { if (gen === generation) fn(); }, delay);
}

// ---------------------------------------------------------------- routing

function parseHash() {
  const h = location.hash.replace(/^#/, '') || '/';
  const [path, query] = h.split('?');
  const params = new URLSearchParams(query || '');
  const m = path.match(/^\/runs\/([^/]+)$/);
  if (m) return { page: 'run', id: decodeURIComponent(m[1]), params };
  return { page: 'runs', params };
}

function route() {
  generation++;
  clearTimeout(timer);
  const r = parseHash();
  if (r.page === 'run') RunPage.open(r.id, r.params.get('node'));
  else RunsPage.open(r.params);
}

window.addEventListener('hashchange', route);

// ---------------------------------------------------------------- runs list

const RunsPage = {
  open(params) {
    this.pipeline = params.get('pipeline') || '';
    this.status = params.get('status') || '';
    this.pipelines = this.pipelines || new Set();
    this.last = null;
    const pipelineInput = el('input', { id: 'filter-pipeline', type: 'search', placeholder: 'all pipelines', list: 'pipelines', value: this.pipeline });
    const statusSelect = el('select', { id: 'filter-status' },
      ['', 'running', 'success', 'failed', 'cancelled'].map((s) => el('option', { value: s, text: s || 'any status' })));
    statusSelect.value = this.status;
    const apply = () => {
      const q = new URLSearchParams();
      if (pipelineInput.value.trim()) q.set('pipeline', pipelineInput.value.trim());
      if (statusSelect.value) q.set('status', statusSelect.value);
      const target = '#/' + (q.toString() ? '?' + q.toString() : '');
      if (location.hash !== target) location.hash = target;
    };
    pipelineInput.addEventListener('change', apply);
    statusSelect.addEventListener('change', apply);
    this.datalist = el('datalist', { id: 'pipelines' });
    this.body = el('tbody');
    this.notice = el('div');
    replace(app,
      el('h1', { text: 'Runs' }),
      el('div', { class: 'filters' },
        el('label', {}, 'Pipeline', pipelineInput), this.datalist,
        el('label', {}, 'Status', statusSelect)),
      this.notice,
      el('div', { class: 'panel' },
        el('table', { id: 'runs-table' },
          el('thead', {}, el('tr', {}, ['Status', 'Run', 'Pipeline', 'Branch / commit', 'CI', 'Started', 'Duration'].map((h) => el('th', { text: h })))),
          this.body)));
    this.poll();
  },

  async poll() {
    const q = new URLSearchParams({ limit: '50' });
    if (this.pipeline) q.set('pipeline', this.pipeline);
    if (this.status) q.set('status', this.status);
    try {
      const data = await getJSON('/api/v1/runs?' + q.toString());
      this.render(data.runs || []);
      replace(this.notice);
      setLive('on');
    } catch (e) {
      replace(this.notice, el('div', { class: 'notice', text: 'Could not load runs: ' + e.message }));
      setLive('err');
    }
    schedule(() => this.poll(), POLL_MS);
  },

  render(runs) {
    const key = JSON.stringify(runs);
    // Durations of running runs tick, so re-render those even when nothing changed.
    if (key === this.last && !runs.some((r) => r.status === 'running')) return;
    this.last = key;
    for (const r of runs) if (r.pipeline) this.pipelines.add(r.pipeline);
    replace(this.datalist, [...this.pipelines].sort().map((p) => el('option', { value: p })));
    if (!runs.length) {
      replace(this.body, el('tr', {}, el('td', { colspan: 7, class: 'empty-state', text: 'No runs match.' })));
      return;
    }
    replace(this.body, runs.map((r) => {
      // A run whose state dump was too large to read: its id, start and why, nothing more.
      if (r.unreadable) {
        return el('tr', { class: 'run-row', 'data-run-id': r.id },
          el('td', {}, badge('failed')),
          el('td', { class: 'mono', text: r.id }),
          el('td', { colspan: 3, class: 'error-text', text: r.error || 'unreadable' }),
          el('td', { text: when(r.started_at) }),
          el('td', { text: '—' }));
      }
      const inv = r.invocation || {};
      const sha = (r.git_sha || '').slice(0, 8);
      const git = [r.git_branch, sha].filter(Boolean).join(' @ ');
      return el('tr', { class: 'run-row', 'data-run-id': r.id },
        el('td', {}, badge(r.status), staleBadge(r)),
        el('td', {}, el('a', { class: 'mono run-link', href: '#/runs/' + encodeURIComponent(r.id), text: r.id })),
        el('td', { text: r.pipeline }),
        el('td', { class: 'mono', text: git || '—' }),
        el('td', {}, inv.ci_job_url ? link(inv.ci_job_url, inv.ci_vendor || 'job') : el('span', { class: 'muted', text: inv.ci_vendor || '—' })),
        el('td', { text: when(r.started_at) }),
        el('td', { text: duration(r.started_at, r.finished_at) }));
    }));
  },
};

// ---------------------------------------------------------------- DAG layout

// Layered layout: a node's layer is one more than its deepest dependency; within a layer, nodes
// sit near the average position of their dependencies (one barycenter pass keeps crossings low).
function layout(nodes) {
  const byId = new Map(nodes.map((n, i) => [n.id, i]));
  const deps = nodes.map((n) => (n.deps || []).filter((d) => byId.has(d)).map((d) => byId.get(d)));
  const children = nodes.map(() => []);
  const indeg = nodes.map((_, i) => deps[i].length);
  deps.forEach((ds, i) => ds.forEach((d) => children[d].push(i)));
  const depth = nodes.map(() => 0);
  const queue = [];
  indeg.forEach((d, i) => { if (d === 0) queue.push(i); });
  const seen = new Set();
  for (let qi = 0; qi < queue.length; qi++) {
    const i = queue[qi];
    seen.add(i);
    for (const c of children[i]) {
      depth[c] = Math.max(depth[c], depth[i] + 1);
      if (--indeg[c] === 0) queue.push(c);
    }
  }
  // Nodes on a cycle (a broken record) keep the depth they reached; they are still drawn.
  const layers = [];
  nodes.forEach((_, i) => { (layers[depth[i]] = layers[depth[i]] || []).push(i); });
  const pos = new Map();
  const order = [];
  layers.forEach((layer, li) => {
    if (!layer) { order.push([]); return; }
    if (li > 0) {
      const bary = (i) => {
        const ps = deps[i].filter((d) => pos.has(d)).map((d) => pos.get(d));
        return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : Number.MAX_SAFE_INTEGER;
      };
      layer = layer.map((i) => [bary(i), i]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((p) => p[1]);
    }
    layer.forEach((i, k) => pos.set(i, k));
    order.push(layer);
  });
  return { deps, depth, order, pos };
}

const NODE_W = 170, NODE_H = 34, GAP_X = 60, GAP_Y = 14, PAD = 16;

function drawDag(nodes, selected, onSelect) {
  const { deps, order } = layout(nodes);
  const xy = new Map();
  let maxRows = 0;
  order.forEach((layer, li) => {
    maxRows = Math.max(maxRows, layer.length);
    layer.forEach((i, k) => xy.set(i, [PAD + li * (NODE_W + GAP_X), PAD + k * (NODE_H + GAP_Y)]));
  });
  const width = PAD * 2 + Math.max(1, order.length) * (NODE_W + GAP_X) - GAP_X;
  const height = PAD * 2 + Math.max(1, maxRows) * (NODE_H + GAP_Y) - GAP_Y;
  const root = svg('svg', { class: 'dag', id: 'dag', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Job graph' });
  const edges = svg('g', { class: 'edges' });
  deps.forEach((ds, i) => {
    const [x2, y2] = xy.get(i);
    for (const d of ds) {
      const [x1, y1] = xy.get(d);
      const sx = x1 + NODE_W, sy = y1 + NODE_H / 2, ex = x2, ey = y2 + NODE_H / 2;
      const mx = (sx + ex) / 2;
      edges.appendChild(svg('path', { class: 'edge', d: `M${sx},${sy} C${mx},${sy} ${mx},${ey} ${ex},${ey}`,
        'data-from': nodes[d].id, 'data-to': nodes[i].id }));
    }
  });
  root.appendChild(edges);
  const g = svg('g', { class: 'nodes' });
  nodes.forEach((n, i) => {
    const [x, y] = xy.get(i);
    const state = nodeState(n);
    const sharded = Number.isInteger(n.shard);
    const max = sharded ? 17 : 21;
    const label = n.id.length > max ? n.id.slice(0, max - 1) + '…' : n.id;
    const where = sharded ? ` (shard ${n.shard})` : '';
    const node = svg('g', { class: 'node ' + state + (n.id === selected ? ' selected' : ''), 'data-node-id': n.id,
      transform: `translate(${x},${y})`, tabindex: 0 },
      svg('title', { text: `${n.id}${where} — ${state}${n.error ? '\n' + n.error : ''}${n.status_detail ? '\n' + n.status_detail : ''}` }),
      svg('rect', { width: NODE_W, height: NODE_H, rx: 6, ry: 6 }),
      svg('text', { x: 10, y: NODE_H / 2 + 4, text: label }),
      // Which CI job (shard) ran it, in a run split across several.
      sharded ? svg('g', { class: 'shard-badge', 'data-shard': String(n.shard), transform: `translate(${NODE_W - 34},${(NODE_H - 18) / 2})` },
        svg('rect', { width: 28, height: 18, rx: 9, ry: 9 }),
        svg('text', { x: 14, y: 13, 'text-anchor': 'middle', text: 'S' + n.shard })) : null);
    node.addEventListener('click', () => onSelect(n.id));
    node.addEventListener('keydown', (e) => { if (e.key === 'Enter') onSelect(n.id); });
    g.appendChild(node);
  });
  root.appendChild(g);
  return root;
}

// ---------------------------------------------------------------- ANSI

const FG_256 = (n) => {
  const base = ['#000000', '#cd3131', '#0dbc79', '#e5e510', '#2472c8', '#bc3fbc', '#11a8cd', '#e5e5e5',
    '#666666', '#f14c4c', '#23d18b', '#f5f543', '#3b8eea', '#d670d6', '#29b8db', '#ffffff'];
  if (n < 16) return base[n];
  if (n < 232) {
    n -= 16;
    const c = (v) => (v === 0 ? 0 : 55 + v * 40);
    return `rgb(${c(Math.floor(n / 36))},${c(Math.floor(n / 6) % 6)},${c(n % 6)})`;
  }
  const g = 8 + (n - 232) * 10;
  return `rgb(${g},${g},${g})`;
};

// Splits one line with SGR escape codes into styled spans (text via textContent only).
function ansiLine(text) {
  const frag = document.createDocumentFragment();
  const re = /\x1b\[([0-9;]*)m/g;
  let style = { classes: new Set(), color: null, bg: null };
  let last = 0, m;
  const emit = (s) => {
    if (!s) return;
    // Other escape sequences (cursor moves, OSC links) are dropped, never interpreted.
    s = s.replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)?/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1b/g, '');
    if (!s) return;
    if (!style.classes.size && !style.color && !style.bg) { frag.appendChild(document.createTextNode(s)); return; }
    const span = document.createElement('span');
    span.className = [...style.classes].join(' ');
    if (style.color) span.style.color = style.color;
    if (style.bg) span.style.backgroundColor = style.bg;
    span.textContent = s;
    frag.appendChild(span);
  };
  while ((m = re.exec(text)) !== null) {
    emit(text.slice(last, m.index));
    last = re.lastIndex;
    const codes = m[1] === '' ? [0] : m[1].split(';').map((c) => parseInt(c, 10) || 0);
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      const cls = style.classes;
      if (c === 0) { style = { classes: new Set(), color: null, bg: null }; }
      else if (c === 1) cls.add('sgr-bold');
      else if (c === 2) cls.add('sgr-dim');
      else if (c === 3) cls.add('sgr-italic');
      else if (c === 4) cls.add('sgr-underline');
      else if (c === 22) { cls.delete('sgr-bold'); cls.delete('sgr-dim'); }
      else if (c === 23) cls.delete('sgr-italic');
      else if (c === 24) cls.delete('sgr-underline');
      else if ((c >= 30 && c <= 37) || (c >= 90 && c <= 97)) { for (const k of [...cls]) if (k.startsWith('fg-')) cls.delete(k); cls.add('fg-' + c); style.color = null; }
      else if (c === 39) { for (const k of [...cls]) if (k.startsWith('fg-')) cls.delete(k); style.color = null; }
      else if ((c >= 40 && c <= 47)) { for (const k of [...cls]) if (k.startsWith('bg-')) cls.delete(k); cls.add('bg-' + c); style.bg = null; }
      else if (c === 49) { for (const k of [...cls]) if (k.startsWith('bg-')) cls.delete(k); style.bg = null; }
      else if (c === 38 || c === 48) {
        let colour = null;
        if (codes[i + 1] === 5 && codes[i + 2] !== undefined) { colour = FG_256(Math.min(255, codes[i + 2])); i += 2; }
        else if (codes[i + 1] === 2 && codes[i + 4] !== undefined) {
          const [r, g, b] = codes.slice(i + 2, i + 5).map((v) => Math.min(255, v));
          colour = `rgb(${r},${g},${b})`; i += 4;
        }
        if (c === 38) { for (const k of [...cls]) if (k.startsWith('fg-')) cls.delete(k); style.color = colour; }
        else { for (const k of [...cls]) if (k.startsWith('bg-')) cls.delete(k); style.bg = colour; }
      }
    }
  }
  emit(text.slice(last));
  return frag;
}

const stripAnsi = (s) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)?/g, '');

// ---------------------------------------------------------------- run page

const RunPage = {
  open(id, node) {
    this.id = id;
    this.selected = node || null;
    this.lastKey = null;
    this.stamp = null;
    this.logText = null;
    this.logNode = null;
    this.search = '';
    replace(app, el('p', { class: 'muted', text: 'Loading ' + id + '…' }));
    this.built = false;
    this.poll();
  },

  build() {
    this.header = el('div');
    this.notice = el('div');
    this.invocation = el('div', { class: 'panel', id: 'invocation' });
    this.dagWrap = el('div', { class: 'dag-wrap', id: 'dag-wrap' });
    this.detail = el('div', { class: 'panel', id: 'node-detail' });
    this.logTitle = el('h2', { text: 'Log' });
    this.logCount = el('span', { class: 'muted', id: 'log-count' });
    const searchInput = el('input', { id: 'log-search', type: 'search', placeholder: 'Search the log' });
    searchInput.addEventListener('input', () => { this.search = searchInput.value; this.applySearch(); });
    this.logBox = el('div', { class: 'log', id: 'log' });
    const legend = el('div', { class: 'legend' }, ['success', 'failed', 'running', 'pending', 'cancelled', 'skipped', 'cached'].map(badge));
    replace(app,
      this.header, this.notice,
      el('div', { class: 'cols' },
        el('div', {},
          el('div', { class: 'panel' }, el('h2', { text: 'Jobs' }), this.dagWrap, legend),
          el('div', { class: 'panel' },
            el('div', { class: 'log-head' }, this.logTitle, this.logCount, el('span', { class: 'search' }, searchInput)),
            this.logBox)),
        el('div', {}, this.detail, this.invocation)));
    this.built = true;
  },

  async poll() {
    const id = this.id;
    let data;
    try {
      data = await getJSON('/api/v1/runs/' + encodeURIComponent(id) + '?include=nodes');
    } catch (e) {
      if (!this.built) replace(app, el('div', { class: 'notice', text: `Could not load run ${id}: ${e.message}` }), el('a', { href: '#/', text: '← All runs' }));
      else replace(this.notice, el('div', { class: 'notice', text: 'Update failed: ' + e.message }));
      setLive('err');
      schedule(() => this.poll(), SLOW_POLL_MS);
      return;
    }
    if (!this.built) this.build();
    replace(this.notice);
    setLive('on');
    const run = data.run, nodes = data.nodes || [];
    if (!this.selected && nodes.length) {
      // Show the first failed job, else the first running one, else the first.
      const pick = nodes.find((n) => nodeState(n) === 'failed') || nodes.find((n) => n.status === 'running') || nodes[0];
      this.selected = pick.id;
    }
    const key = JSON.stringify(data);
    if (key !== this.lastKey || run.status === 'running') this.render(run, nodes, key !== this.lastKey);
    this.lastKey = key;
    await this.loadLog(run, nodes);
    const live = run.status === 'running' || run.status === 'pending';
    if (live && Caps.features.includes('events')) this.awaitChange();
    else schedule(() => this.poll(), live ? POLL_MS : SLOW_POLL_MS);
  },

  // A live local run: wait for the server to see a file event for this run (its records or its
  // log parts), then poll at once. Any failure falls back to polling.
  async awaitChange() {
    const gen = generation;
    clearTimeout(timer);
    const q = this.stamp ? '?after=' + encodeURIComponent(this.stamp) : '';
    try {
      const r = await fetch('/api/v1/runs/' + encodeURIComponent(this.id) + '/changes' + q, { cache: 'no-store' });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      this.stamp = (await r.json()).stamp;
    } catch (_) {
      if (gen === generation) schedule(() => this.poll(), POLL_MS);
      return;
    }
    if (gen === generation) this.poll();
  },

  render(run, nodes, changed) {
    const inv = run.invocation || {};
    replace(this.header,
      el('p', {}, el('a', { href: '#/', text: '← All runs' })),
      el('h1', { id: 'run-title' }, el('span', { text: run.pipeline }), badge(run.status), staleBadge(run), el('span', { class: 'mono muted', text: run.id })),
      el('p', { class: 'muted' }, `started ${when(run.started_at)} · ${duration(run.started_at, run.finished_at)}`,
        run.status === 'running' && Caps.writes.includes('cancel') ? [' · ', el('button', { class: 'danger', id: 'cancel', text: 'Cancel run', onclick: () => this.cancel() })] : null),
      run.error ? el('p', { class: 'error-text', id: 'run-error', text: run.error }) : null);
    if (!changed) return;
    const ci = inv.ci_job_url ? link(inv.ci_job_url, inv.ci_job_url) : (inv.ci_vendor || '—');
    const rows = [
      ['Mode', inv.mode || '—'], ['Workers', inv.workers ? String(inv.workers) : '—'], ['Profile', inv.profile || '—'],
      ...(inv.shards ? [['Shards', `${inv.shards} (${inv.shards_reporting ?? inv.shards} reporting)`]] : []),
      ['CI', inv.ci_vendor || '—'], ['CI job', ci], ['Binary', inv.binary_source || '—'],
      ['Branch', run.git_branch || '—'], ['Commit', run.git_sha || '—'], ['Repository', run.repo_url || '—'],
    ];
    for (const [k, v] of Object.entries(run.args || {})) rows.push(['arg ' + k, v]);
    for (const [k, v] of Object.entries(inv.backends || {})) rows.push([k + ' store', v]);
    replace(this.invocation, el('h2', { text: 'Invocation' }),
      el('dl', { class: 'grid' }, rows.map(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)])));
    const started = performance.now();
    replace(this.dagWrap, nodes.length ? drawDag(nodes, this.selected, (n) => this.select(n)) : el('p', { class: 'empty-state', text: 'No jobs recorded yet.' }));
    window.__lastDagMs = performance.now() - started;
    this.nodes = nodes;
    this.renderDetail();
  },

  select(nodeId) {
    this.selected = nodeId;
    const target = '#/runs/' + encodeURIComponent(this.id) + '?node=' + encodeURIComponent(nodeId);
    // Keep the URL shareable without re-running the whole route.
    history.replaceState(null, '', target);
    for (const g of this.dagWrap.querySelectorAll('g.node')) g.classList.toggle('selected', g.getAttribute('data-node-id') === nodeId);
    this.renderDetail();
    this.logText = null;
    this.loadLog(null, this.nodes || []);
  },

  renderDetail() {
    const n = (this.nodes || []).find((x) => x.id === this.selected);
    if (!n) { replace(this.detail, el('h2', { text: 'Job' }), el('p', { class: 'muted', text: 'Select a job in the graph.' })); return; }
    const rows = [
      ['Status', badge(nodeState(n))], ['Needs', (n.deps || []).join(', ') || '—'],
      ...(Number.isInteger(n.shard) ? [['Shard', String(n.shard)]] : []),
      ['Duration', n.started_at ? duration(n.started_at, n.finished_at) : '—'],
    ];
    if (n.exit_code !== undefined && n.exit_code !== null) rows.push(['Exit code', String(n.exit_code)]);
    if (n.failure_reason) rows.push(['Reason', n.failure_reason]);
    if (n.status_detail) rows.push(['Detail', n.status_detail]);
    if (n.attempts > 1) rows.push(['Attempts', String(n.attempts)]);
    for (const [k, v] of Object.entries(n.outputs || {})) rows.push(['output ' + k, JSON.stringify(v)]);
    const arts = (n.artifacts || []).map((key) => el('li', {},
      el('a', { class: 'artifact', href: '/api/v1/artifacts/' + key.split('/').map(encodeURIComponent).join('/') + '?run=' + encodeURIComponent(this.id), download: key.split('/').pop(), text: key })));
    replace(this.detail,
      el('h2', { class: 'mono', id: 'node-title', text: n.id }),
      el('dl', { class: 'grid' }, rows.map(([k, v]) => [el('dt', { text: k }), el('dd', {}, v)])),
      n.error ? el('p', { class: 'error-text', text: n.error }) : null,
      el('h2', { text: 'Artifacts' }),
      arts.length ? el('ul', { class: 'artifacts', id: 'artifacts' }, arts) : el('p', { class: 'muted', text: 'None.' }));
  },

  async loadLog(run, nodes) {
    const nodeId = this.selected;
    if (!nodeId) return;
    const node = nodes.find((n) => n.id === nodeId);
    const settled = this.logNode === nodeId && this.logText !== null && node && node.status === 'done' && run && run.status !== 'running';
    if (settled && this.logDone) return;
    let text;
    try {
      const path = '/api/v1/runs/' + encodeURIComponent(this.id) + '/logs/' + nodeId.split('/').map(encodeURIComponent).join('/') + '?format=ansi';
      const r = await fetch(path, { cache: 'no-store' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      text = await r.text();
    } catch (e) {
      replace(this.logBox, el('div', { class: 'empty', text: 'Could not load the log: ' + e.message }));
      return;
    }
    if (nodeId !== this.selected) return;
    this.logTitle.textContent = 'Log · ' + nodeId;
    this.logDone = settled;
    if (this.logNode === nodeId && this.logText !== null && text === this.logText) return;
    const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
    const follow = this.logBox.scrollTop + this.logBox.clientHeight >= this.logBox.scrollHeight - 8;
    if (this.logNode === nodeId && this.logText !== null && text.startsWith(this.logText) && this.logLines) {
      // Append only what is new, so a long live log does not re-render on every poll.
      for (let i = this.logLines; i < lines.length; i++) this.logBox.appendChild(this.logLine(i, lines[i]));
    } else {
      replace(this.logBox, lines.map((l, i) => this.logLine(i, l)));
    }
    if (!lines.length) replace(this.logBox, el('div', { class: 'empty', text: 'No log lines.' }));
    this.logNode = nodeId;
    this.logText = text;
    this.logLines = lines.length;
    this.applySearch();
    if (follow) this.logBox.scrollTop = this.logBox.scrollHeight;
  },

  logLine(i, text) {
    const row = el('div', { class: 'line', 'data-line': i + 1 }, el('span', { class: 'ln', text: String(i + 1) }));
    const body = el('span', { class: 'txt' });
    body.appendChild(ansiLine(text));
    row.appendChild(body);
    row.dataset.plain = stripAnsi(text).toLowerCase();
    return row;
  },

  applySearch() {
    const q = this.search.trim().toLowerCase();
    let hits = 0, total = 0;
    for (const row of this.logBox.querySelectorAll('.line')) {
      total++;
      const hit = q !== '' && row.dataset.plain.includes(q);
      if (hit) hits++;
      row.hidden = q !== '' && !hit;
      row.classList.toggle('hit', hit);
    }
    this.logCount.textContent = q ? `${hits} of ${total} lines match` : `${total} line${total === 1 ? '' : 's'}`;
  },

  async cancel() {
    const btn = document.getElementById('cancel');
    if (btn) btn.disabled = true;
    try {
      const r = await fetch('/api/v1/runs/' + encodeURIComponent(this.id) + '/cancel', { method: 'POST' });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
    } catch (e) {
      replace(this.notice, el('div', { class: 'notice', text: 'Cancel failed: ' + e.message }));
    }
  },
};

// ---------------------------------------------------------------- start

const Caps = { writes: [], features: [] };

async function start() {
  try {
    const caps = await getJSON('/api/v1/capabilities');
    Caps.writes = caps.writes || [];
    Caps.features = caps.features || [];
    const src = document.getElementById('source');
    src.textContent = `${caps.mode}${caps.read_only ? ' · read-only' : ''} · runs: ${caps.stores.runs}`;
  } catch (_) { /* the pages report their own errors */ }
  route();
}

start();
