// comfygo's page: drop a ComfyUI workflow, edit its widgets, queue it, watch it run.

import { Api } from './api.js';
import { GraphView } from './graphview.js';
import { readWorkflowBytes } from './metadata.js';
import { graphToPrompt, promptToWorkflow } from './convert.js';
import { modelFolder } from './nodedefs.js';

const $ = (s) => document.querySelector(s);
const api = new Api();
const graph = new GraphView($('#canvas'));
const state = {
  defs: {},
  folders: {},
  workflow: null,
  name: '',
  prompts: new Map(), // prompt_id → {total, workflow, prompt}
  run: null, // {id, total, done:Set, node, value, max, started}
  problems: { load: [], validation: [], execution: [] },
  results: [],
};
window.comfygo = {
  api, graph, state, loadObject, queue, cancel,
  graphToPrompt: (wf) => graphToPrompt(wf || state.workflow, state.defs),
};

function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids) if (k !== null && k !== undefined) el.append(k);
  return el;
}

function toast(msg, kind = '') {
  const t = h('div', { class: `toast ${kind}`, text: msg });
  $('#toasts').append(t);
  while ($('#toasts').children.length > 3) $('#toasts').firstElementChild.remove();
  setTimeout(() => t.remove(), kind === 'error' ? 8000 : 3500);
}

// ---------- node definitions ----------

async function loadDefs() {
  for (let i = 0; ; i++) {
    try {
      state.defs = await api.objectInfo();
      return;
    } catch (e) {
      if (i === 0) toast(`Cannot load node definitions: ${e.message}`, 'error');
      await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** i)));
    }
  }
}

// ---------- loading workflows ----------

/** loadObject shows a UI workflow or an API prompt ({kind, data}). */
async function loadObject(res, name = '') {
  if (res.error) {
    toast(res.error, 'error');
    return false;
  }
  try {
    state.defs = await api.objectInfo(); // combos (model files) are recomputed per request
  } catch {
    /* keep the old ones */
  }
  const wf = res.kind === 'prompt' ? promptToWorkflow(res.data, state.defs) : structuredClone(res.data);
  state.workflow = wf;
  state.name = name;
  $('#wfname').textContent = name ? `${name}${res.kind === 'prompt' ? ' (API prompt)' : ''}` : '';
  $('#empty').hidden = true;
  graph.load(wf, state.defs);
  state.problems.validation = [];
  state.problems.execution = [];
  computeLoadProblems();
  renderProblems();
  persist();
  return true;
}

async function loadBytes(bytes, name) {
  return loadObject(await readWorkflowBytes(bytes, name), name);
}

async function loadFile(file) {
  return loadBytes(new Uint8Array(await file.arrayBuffer()), file.name);
}

function computeLoadProblems() {
  const { missingTypes, missingValues } = graph.problems();
  const list = [];
  for (const [type, ids] of missingTypes) {
    list.push({
      node: ids[0],
      text: `Missing node type “${type}” (node ${ids.map((i) => '#' + i).join(', ')}). This server has no such node; install the node pack that provides it, or remove or replace the node.`,
    });
  }
  const hints = modelHints(state.workflow);
  for (const p of missingValues) {
    if (p.folder) {
      const dir = (state.folders[p.folder] || [])[0];
      const where = dir ? `${dir}/` : `models/${p.folder}/ (under --models-dir)`;
      const hint = hints.get(p.value);
      list.push({
        node: p.nodeId,
        text:
          `Missing model file “${p.value}” (node #${p.nodeId} ${p.type}, input ${p.input}).\n` +
          `Put the file in ${where} and reload the page.` +
          (hint?.url ? `\nThe workflow says it comes from: ${hint.url}` : ''),
      });
    } else {
      list.push({ node: p.nodeId, warn: true, text: `Node #${p.nodeId} ${p.type}: “${p.value}” is not one of the choices of ${p.input}.` });
    }
  }
  state.problems.load = list;
}

function modelHints(wf) {
  const m = new Map();
  for (const x of wf?.models || []) if (x?.name) m.set(x.name, x);
  const nodes = [...(wf?.nodes || []), ...(wf?.definitions?.subgraphs || []).flatMap((d) => d.nodes || [])];
  for (const n of nodes) for (const x of n.properties?.models || []) if (x?.name) m.set(x.name, x);
  return m;
}

function renderProblems() {
  const all = [...state.problems.load, ...state.problems.validation, ...state.problems.execution];
  const box = $('#problem-list');
  box.replaceChildren(
    ...all.map((p) => {
      const d = h('div', { class: p.warn ? 'warn' : '' }, p.text);
      if (p.node != null && graph.models.has(String(p.node))) {
        d.append(h('br'), h('button', { type: 'button', class: 'small', text: `Show node #${p.node}`, onclick: () => graph.center(p.node) }));
      }
      return d;
    }),
  );
  $('#problems').hidden = all.length === 0;
}

/** revealProblems scrolls the side panel so that the Problems list is visible. */
function revealProblems() {
  const side = $('#side');
  const p = $('#problems');
  if (!p.hidden && (p.offsetTop < side.scrollTop || p.offsetTop > side.scrollTop + side.clientHeight - 40)) side.scrollTop = Math.max(0, p.offsetTop - 8);
}

let persistTimer = 0;
function persist() {
  clearTimeout(persistTimer);
  persistTimer = setTimeout(() => {
    try {
      if (state.workflow) localStorage.setItem('comfygo.workflow', JSON.stringify({ name: state.name, workflow: state.workflow }));
    } catch {
      /* quota */
    }
  }, 400);
}

// ---------- queueing ----------

async function queue(front = false) {
  if (!state.workflow) {
    toast('Drop a workflow first.', 'error');
    return;
  }
  let p;
  try {
    p = graphToPrompt(state.workflow, state.defs);
  } catch (e) {
    state.problems.validation = [{ text: `Cannot build the prompt: ${e.message}` }];
    renderProblems();
    return;
  }
  graph.clearErrors();
  state.problems.validation = [];
  state.problems.execution = [];
  let res;
  try {
    res = await api.queuePrompt(p.output, p.workflow, front);
  } catch (e) {
    if (e.body && typeof e.body === 'object' && e.body.error) showValidation(e.body);
    else {
      state.problems.validation = [{ text: `Queue failed: ${e.message}` }];
      renderProblems();
    }
    return;
  }
  state.prompts.set(res.prompt_id, { total: Object.keys(p.output).length, workflow: p.workflow, prompt: p.output });
  if (res.node_errors && Object.keys(res.node_errors).length) showValidation({ node_errors: res.node_errors, error: null });
  else renderProblems();
  // control_after_generate runs after a successful queue, as in ComfyUI
  graph.applyControlAfterGenerate();
  persist();
  toast(api.connected ? `Queued prompt #${res.number}` : `Queued prompt #${res.number} (websocket not connected: progress will not show)`);
  refreshQueue();
}

function nodeTitle(id) {
  const m = graph.models.get(String(id));
  return m ? m.raw.title || m.def?.display_name || m.raw.type : '';
}

/** showValidation displays a POST /prompt error body on the offending nodes and inputs. */
function showValidation(body) {
  const list = [];
  const marks = {};
  const err = body.error;
  if (err && typeof err === 'object') {
    const m = /#([^']+)'/.exec(err.details || '');
    if (m && !Object.keys(body.node_errors || {}).length) {
      marks[m[1]] = [{ message: err.message }];
      list.push({ node: m[1], text: `${err.message}\n(node #${m[1]})` });
    } else if (err.type === 'prompt_no_outputs') {
      list.push({ text: `${err.message}: add an output node such as Save Image or Preview Image (or un-mute one).` });
    } else if (err.type !== 'prompt_outputs_failed_validation') {
      list.push({ text: `${err.message}${err.details ? '\n' + err.details : ''}` });
    }
  } else if (typeof err === 'string') list.push({ text: err });
  for (const [id, ne] of Object.entries(body.node_errors || {})) {
    marks[id] = [];
    for (const e of ne.errors || []) {
      const input = e.extra_info?.input_name;
      marks[id].push({ message: e.message, details: e.details, input });
      let text = `#${id} ${nodeTitle(id) || ne.class_type}: ${e.message}${e.details ? ': ' + e.details : ''}`;
      if (e.type === 'value_not_in_list' && input) {
        const folder = modelFolder(input, e.extra_info?.received_value, ne.class_type);
        if (folder) {
          const dir = (state.folders[folder] || [])[0];
          text += `\nMissing model file: put “${e.extra_info?.received_value}” in ${dir ? dir + '/' : `models/${folder}/ (under --models-dir)`}.`;
        }
      }
      list.push({ node: id, text });
    }
  }
  const unknown = graph.setErrors(marks);
  for (const id of unknown) list.push({ text: `(node #${id} is not in the graph shown)` });
  state.problems.validation = list;
  renderProblems();
  revealProblems();
  const first = Object.keys(marks)[0];
  if (first) graph.center(first);
}

async function cancel() {
  try {
    const running = state.run && !state.run.finished;
    await api.interrupt(running ? state.run.id : undefined);
    toast(running ? 'Cancelling…' : 'Interrupt sent (nothing of yours is running).');
  } catch (e) {
    toast(`Interrupt failed: ${e.message}`, 'error');
  }
}

// ---------- progress ----------

function setBar(sel, pct, text, textSel) {
  const el = $(sel);
  if (sel === '#total-progress') el.classList.toggle('failed', text === 'failed' || text === 'interrupted');
  el.firstElementChild.style.width = pct + '%';
  el.setAttribute('aria-valuenow', String(pct));
  if (textSel) $(textSel).textContent = text;
}

function renderTotal() {
  const r = state.run;
  if (!r) return;
  let frac = 0;
  if (r.node && !r.done.has(r.node) && r.max > 0) frac = r.value / r.max;
  const total = Math.max(r.total, r.done.size + (r.node ? 1 : 0), 1);
  const pct = r.finished.startsWith('done') ? 100 : Math.min(99, Math.floor((100 * (r.done.size + frac)) / total));
  setBar('#total-progress', pct, r.finished ? r.finished : `${pct}% · ${r.done.size}/${total} nodes`, '#total-text');
}

api.addEventListener('execution_start', (e) => {
  const id = e.detail.prompt_id;
  const known = state.prompts.get(id);
  state.run = { id, total: known?.total || 0, done: new Set(), node: null, value: 0, max: 0, started: performance.now(), finished: '' };
  graph.clearProgress();
  $('#preview').hidden = true; // the last run's preview; this run's arrive as it samples
  setBar('#node-progress', 0, '', '#node-text');
  renderTotal();
  refreshQueue();
});
api.addEventListener('execution_cached', (e) => {
  if (!state.run || state.run.id !== e.detail.prompt_id) return;
  for (const n of e.detail.nodes || []) state.run.done.add(String(n));
  renderTotal();
});
api.addEventListener('executing', (e) => {
  const d = e.detail || {};
  const node = d.display_node ?? d.node;
  const r = state.run;
  if (r && r.node && r.node !== node) r.done.add(r.node);
  if (node == null) {
    graph.setRunning(null);
    $('#node-label').textContent = 'Node';
    setBar('#node-progress', 0, '', '#node-text');
    if (r) r.node = null;
    renderTotal();
    refreshQueue();
    refreshHistory();
    return;
  }
  if (r) {
    r.node = String(node);
    r.value = 0;
    r.max = 0;
  }
  graph.setRunning(node);
  $('#node-label').textContent = `#${node} ${nodeTitle(node)}`;
  setBar('#node-progress', 0, '', '#node-text');
  renderTotal();
});
api.addEventListener('progress', (e) => {
  const { value, max, node } = e.detail;
  const pct = max > 0 ? Math.round((100 * value) / max) : 0;
  const num = (x) => (Number.isInteger(x) ? String(x) : Number(x).toFixed(1));
  setBar('#node-progress', pct, `${num(value)}/${num(max)}`, '#node-text');
  if (node != null) graph.setNodeProgress(node, value, max);
  const r = state.run;
  if (r && (!e.detail.prompt_id || e.detail.prompt_id === r.id)) {
    if (node != null) r.node = String(node);
    r.value = value;
    r.max = max;
    renderTotal();
  }
});
api.addEventListener('progress_state', (e) => {
  const r = state.run;
  if (!r || e.detail.prompt_id !== r.id) return;
  for (const [id, s] of Object.entries(e.detail.nodes || {})) {
    if (s.state === 'finished') r.done.add(String(s.display_node_id ?? id));
  }
  renderTotal();
});
api.addEventListener('executed', (e) => {
  const d = e.detail;
  const node = d.display_node ?? d.node;
  const images = d.output?.images || [];
  if (!images.length) return;
  const urls = images.map((i) => api.viewURL(i));
  graph.setImages(node, urls);
  for (const img of images) addResult(img, d.prompt_id, node);
});
api.addEventListener('execution_success', (e) => {
  const r = state.run;
  if (r && r.id === e.detail.prompt_id) {
    const ms = performance.now() - r.started;
    r.finished = `done in ${ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`}`;
    renderTotal();
  }
  graph.clearProgress();
});
api.addEventListener('execution_error', (e) => {
  const d = e.detail;
  if (d.exception_type === 'ExecutionBlocked') return;
  const node = d.node_id;
  graph.setErrors({ [node]: [{ message: `${d.exception_type}: ${d.exception_message}` }] });
  state.problems.execution = [{ node, text: `#${node} ${d.node_type} failed: ${d.exception_message}` }];
  renderProblems();
  revealProblems();
  if (state.run && state.run.id === d.prompt_id) {
    state.run.finished = 'failed';
    setBar('#total-progress', Number($('#total-progress').getAttribute('aria-valuenow')), 'failed', '#total-text');
  }
  graph.setRunning(null);
});
api.addEventListener('execution_interrupted', (e) => {
  toast('Interrupted.');
  if (state.run && state.run.id === e.detail.prompt_id) {
    state.run.finished = 'interrupted';
    setBar('#total-progress', Number($('#total-progress').getAttribute('aria-valuenow')), 'interrupted', '#total-text');
  }
  graph.setRunning(null);
  graph.clearProgress();
});
let lastPreview = '';
api.addEventListener('preview', (e) => {
  const { blob, meta } = e.detail;
  const url = URL.createObjectURL(blob);
  const img = $('#preview');
  img.onload = () => img.classList.toggle('pixel', img.naturalWidth < 128);
  img.src = url;
  img.hidden = false;
  const node = meta?.display_node_id ?? meta?.node_id ?? state.run?.node;
  if (node != null) graph.setPreview(node, url);
  if (lastPreview) setTimeout((u) => URL.revokeObjectURL(u), 2000, lastPreview);
  lastPreview = url;
});
api.addEventListener('status', (e) => {
  const n = e.detail?.status?.exec_info?.queue_remaining ?? 0;
  $('#queue-size').textContent = `queue: ${n}`;
  refreshQueue();
});
api.addEventListener('connected', () => {
  const c = $('#conn');
  c.textContent = 'connected';
  c.className = 'conn on';
  refreshQueue();
  refreshHistory();
});
api.addEventListener('disconnected', () => {
  const c = $('#conn');
  c.textContent = 'reconnecting…';
  c.className = 'conn off';
});

// ---------- results, queue, history ----------

async function workflowForPrompt(promptId) {
  const known = state.prompts.get(promptId);
  if (known) return { kind: 'workflow', data: known.workflow };
  try {
    const hist = await api.fetchJSON(`/history/${encodeURIComponent(promptId)}`);
    const entry = hist?.[promptId];
    if (entry) return entryWorkflow(entry);
  } catch {
    /* fall through */
  }
  return null;
}

function entryWorkflow(entry) {
  const wf = entry.prompt?.[3]?.extra_pnginfo?.workflow;
  if (wf && Array.isArray(wf.nodes)) return { kind: 'workflow', data: wf };
  if (entry.prompt?.[2]) return { kind: 'prompt', data: entry.prompt[2] };
  return { error: 'This history entry has no workflow.' };
}

async function loadFromImage(item, promptId) {
  // Prefer the metadata in the file itself (it is what ComfyUI users share); fall back to history.
  try {
    const r = await fetch(api.viewURL(item));
    if (r.ok) {
      const res = await readWorkflowBytes(new Uint8Array(await r.arrayBuffer()), item.filename);
      if (!res.error) return loadObject(res, item.filename);
    }
  } catch {
    /* fall through */
  }
  const res = promptId ? await workflowForPrompt(promptId) : null;
  return loadObject(res || { error: 'No workflow found for this image.' }, item.filename);
}

function imageFigure(item, promptId) {
  const url = api.viewURL(item);
  return h(
    'figure',
    {},
    h('a', { href: url, target: '_blank', rel: 'noopener' }, h('img', { src: url, alt: item.filename, loading: 'lazy' })),
    h(
      'figcaption',
      {},
      h('a', { href: url, download: item.filename, text: 'Download', title: item.filename }),
      h('button', { type: 'button', class: 'small', text: 'Load workflow', onclick: () => loadFromImage(item, promptId) }),
    ),
  );
}

function addResult(item, promptId) {
  state.results.unshift({ item, promptId });
  $('#gallery').prepend(imageFigure(item, promptId));
  while ($('#gallery').children.length > 40) $('#gallery').lastElementChild.remove();
}

let queueTimer = 0;
function refreshQueue() {
  clearTimeout(queueTimer);
  queueTimer = setTimeout(async () => {
    let q;
    try {
      q = await api.getQueue();
    } catch {
      return;
    }
    const items = [];
    for (const t of q.queue_running || []) {
      items.push(
        h(
          'li',
          { class: 'running' },
          h('span', { text: `▶ #${t[0]}` }),
          h('span', { class: 'grow', text: String(t[1]).slice(0, 8) }),
          h('button', { type: 'button', class: 'small', text: 'Cancel', onclick: () => api.interrupt(t[1]) }),
        ),
      );
    }
    const pending = (q.queue_pending || []).slice().sort((a, b) => a[0] - b[0]);
    for (const t of pending) {
      items.push(
        h(
          'li',
          {},
          h('span', { text: `#${t[0]}` }),
          h('span', { class: 'grow', text: String(t[1]).slice(0, 8) }),
          h('button', {
            type: 'button',
            class: 'small',
            text: '×',
            title: 'Remove from queue',
            'aria-label': 'Remove from queue',
            onclick: async () => {
              await api.deleteQueued([t[1]]);
              refreshQueue();
            },
          }),
        ),
      );
    }
    if (!items.length) items.push(h('li', { class: 'muted', text: 'empty' }));
    $('#queue-list').replaceChildren(...items);
    const n = (q.queue_running || []).length + pending.length;
    $('#queue-size').textContent = `queue: ${n}`;
  }, 60);
}

let histTimer = 0;
function refreshHistory() {
  clearTimeout(histTimer);
  histTimer = setTimeout(async () => {
    let hist;
    try {
      hist = await api.getHistory(50);
    } catch {
      return;
    }
    const entries = Object.entries(hist || {}).reverse();
    const items = entries.map(([id, e]) => {
      const st = e.status?.status_str || '';
      const imgs = Object.values(e.outputs || {}).flatMap((o) => o.images || []);
      const li = h('li', { class: st === 'success' ? 'success' : st === 'error' ? 'error' : '' });
      li.append(h('span', { text: `#${e.prompt?.[0] ?? ''}` }), h('span', { class: 'grow', text: `${id.slice(0, 8)} ${st}` }));
      for (const img of imgs.slice(0, 3)) {
        li.append(
          h('img', {
            src: api.viewURL(img),
            alt: img.filename,
            title: `${img.filename} — click to load its workflow`,
            loading: 'lazy',
            onclick: () => loadFromImage(img, id),
            onerror: (ev) => ev.target.remove(),
          }),
        );
      }
      li.append(
        h('button', { type: 'button', class: 'small', text: 'Load', title: 'Load this workflow', onclick: () => loadObject(entryWorkflow(e), `history ${id.slice(0, 8)}`) }),
        h('button', {
          type: 'button',
          class: 'small',
          text: '×',
          title: 'Delete from history',
          'aria-label': 'Delete from history',
          onclick: async () => {
            await api.deleteHistory([id]);
            refreshHistory();
          },
        }),
      );
      return li;
    });
    if (!items.length) items.push(h('li', { class: 'muted', text: 'empty' }));
    $('#history-list').replaceChildren(...items);
  }, 100);
}

// ---------- wiring ----------

graph.addEventListener('change', () => persist());
graph.addEventListener('upload', async (e) => {
  const { nodeId, input, file } = e.detail;
  if (!file) return;
  try {
    const r = await api.uploadImage(file);
    const name = (r.subfolder ? r.subfolder + '/' : '') + r.name + (r.type && r.type !== 'input' ? ` [${r.type}]` : '');
    state.defs = await api.objectInfo();
    const wf = state.workflow;
    const m = graph.models.get(nodeId);
    const i = m.slots.findIndex((s) => s.kind === 'value' && s.name === input);
    m.values[i] = name;
    m.raw.widgets_values = m.values.slice();
    graph.load(wf, state.defs);
    computeLoadProblems();
    renderProblems();
    persist();
  } catch (err) {
    toast(err.message, 'error');
  }
});

$('#open').addEventListener('change', (e) => {
  const f = e.target.files?.[0];
  if (f) loadFile(f);
  e.target.value = '';
});
$('#save').addEventListener('click', () => {
  if (!state.workflow) return;
  const blob = new Blob([JSON.stringify(state.workflow, null, 2)], { type: 'application/json' });
  const a = h('a', { href: URL.createObjectURL(blob), download: (state.name || 'workflow').replace(/\.\w+$/, '') + '.json' });
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
});
$('#fit').addEventListener('click', () => graph.fit());
$('#queue').addEventListener('click', (e) => queue(e.shiftKey));
$('#cancel').addEventListener('click', () => cancel());
$('#clear-queue').addEventListener('click', async () => {
  await api.clearQueue();
  refreshQueue();
});
$('#clear-history').addEventListener('click', async () => {
  await api.clearHistory();
  refreshHistory();
});

window.addEventListener('keydown', (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') {
    e.preventDefault();
    if (e.altKey) cancel();
    else queue(e.shiftKey);
  } else if (e.key === 'Escape') {
    if (document.activeElement?.tagName === 'SELECT') return; // closing a dropdown
    e.preventDefault();
    cancel();
  } else if (e.key === '.' && !e.target.closest?.('input, textarea, select')) {
    graph.fit();
  }
});

// drag and drop: files, or images dragged from a page (URL)
let dragDepth = 0;
window.addEventListener('dragenter', (e) => {
  e.preventDefault();
  dragDepth++;
  $('#drop').hidden = false;
});
window.addEventListener('dragleave', () => {
  if (--dragDepth <= 0) {
    dragDepth = 0;
    $('#drop').hidden = true;
  }
});
window.addEventListener('dragover', (e) => e.preventDefault());
window.addEventListener('drop', async (e) => {
  e.preventDefault();
  dragDepth = 0;
  $('#drop').hidden = true;
  const dt = e.dataTransfer;
  const file = dt?.files?.[0];
  if (file) {
    await loadFile(file);
    return;
  }
  const uri = dt?.getData('text/uri-list') || '';
  const text = dt?.getData('text/plain') || '';
  const url = uri.split('\n').find((l) => l && !l.startsWith('#'));
  if (url) {
    try {
      const r = await fetch(url);
      await loadBytes(new Uint8Array(await r.arrayBuffer()), url.split('/').pop() || 'dropped');
    } catch (err) {
      toast(`Cannot load ${url}: ${err.message}`, 'error');
    }
  } else if (text.trim().startsWith('{')) {
    await loadBytes(new TextEncoder().encode(text), 'dropped.json');
  }
});
document.addEventListener('paste', async (e) => {
  if (e.target.closest?.('input, textarea')) return;
  const f = e.clipboardData?.files?.[0];
  if (f) return loadFile(f);
  const text = e.clipboardData?.getData('text/plain') || '';
  if (text.trim().startsWith('{')) loadBytes(new TextEncoder().encode(text), 'pasted.json');
});

async function init() {
  api.connect();
  await loadDefs();
  state.folders = await api.folderPaths();
  const saved = localStorage.getItem('comfygo.workflow');
  if (saved && !state.workflow) {
    try {
      const { name, workflow } = JSON.parse(saved);
      await loadObject({ kind: 'workflow', data: workflow }, name);
    } catch {
      /* ignore a broken saved copy */
    }
  }
  document.body.dataset.ready = '1';
}
init();
