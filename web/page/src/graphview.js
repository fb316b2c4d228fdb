// The node graph as ComfyUI users know it — titled node boxes with input sockets on the left,
// outputs on the right, widgets below, and type-coloured bezier links — drawn with DOM elements
// (real form controls: keyboard, screen readers and browser tests work on them) and one SVG layer
// for links. Pan by dragging the background, zoom with the wheel, move nodes by their title.

import { mapWidgetValues, CONTROL_MODES, inputList, modelFolder } from './nodedefs.js';
import { normLinks, fullInputs, subgraphDefs } from './convert.js';

const LINK_COLORS = {
  MODEL: '#b39ddb',
  CLIP: '#ffd500',
  VAE: '#ff6e6e',
  CONDITIONING: '#ffa931',
  LATENT: '#ff9cf9',
  IMAGE: '#64b5f6',
  MASK: '#81c784',
  INT: '#29b6f6',
  FLOAT: '#aed581',
  STRING: '#8bc34a',
  CLIP_VISION: '#a8dadc',
  CLIP_VISION_OUTPUT: '#ad7452',
  CONTROL_NET: '#00d78d',
  NOISE: '#b0b0b0',
  SAMPLER: '#ecb4b4',
  SIGMAS: '#cdffcd',
  GUIDER: '#66ffff',
};

export function linkColor(type) {
  return LINK_COLORS[String(type).toUpperCase()] || '#9a9a9a';
}

function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids) if (k) el.append(k);
  return el;
}

const SVGNS = 'http://www.w3.org/2000/svg';

function vec(v, i, dflt) {
  if (Array.isArray(v)) return Number(v[i]) || 0;
  if (v && typeof v === 'object') return Number(v[String(i)]) || 0;
  return dflt;
}

/** GraphView renders one UI workflow and keeps its widgets_values up to date as the user edits. */
export class GraphView extends EventTarget {
  constructor(viewport) {
    super();
    this.viewport = viewport;
    this.world = h('div', { class: 'world' });
    this.svg = document.createElementNS(SVGNS, 'svg');
    this.svg.setAttribute('class', 'links');
    this.world.append(this.svg);
    viewport.append(this.world);
    this.scale = 1;
    this.offset = [0, 0];
    this.models = new Map();
    this.workflow = null;
    this.defs = {};
    this.linkEls = new Map();
    this.installPanZoom();
    this.world.addEventListener('input', (e) => this.onWidgetEvent(e));
    this.world.addEventListener('change', (e) => this.onWidgetEvent(e));
  }

  /** load shows workflow (a UI workflow object, edited in place) using node definitions defs. */
  load(workflow, defs) {
    const t0 = performance.now();
    this.workflow = workflow;
    this.defs = defs;
    this.subs = subgraphDefs(workflow);
    this.inner = new Map(); // subgraph inner nodes shown through proxyWidgets, by "<def id>/<node id>"
    this.innerById = new Map();
    this.models.clear();
    this.linkEls.clear();
    this.world.replaceChildren(this.svg);
    this.svg.replaceChildren();
    for (const g of workflow.groups || []) {
      const b = g.bounding || [0, 0, 100, 100];
      const el = h('div', { class: 'group', text: g.title || '' });
      el.style.cssText = `left:${b[0]}px;top:${b[1]}px;width:${b[2]}px;height:${b[3]}px;--gc:${g.color || '#3f789e'}`;
      this.world.append(el);
    }
    const frag = document.createDocumentFragment();
    for (const n of workflow.nodes || []) {
      const m = this.buildNode(n);
      this.models.set(String(n.id), m);
      frag.append(m.el);
    }
    this.world.append(frag);
    this.measure();
    this.drawLinks();
    this.fit();
    this.loadMs = performance.now() - t0;
  }

  buildNode(n) {
    const def = this.defs[n.type];
    const sub = this.subs.get(n.type);
    const m = { raw: n, id: String(n.id), def, sub, slots: [], values: [], inputs: [], outputs: [], rows: new Map() };
    const title = n.title || def?.display_name || sub?.name || n.type;
    const el = h('div', { class: 'node', 'data-id': m.id, 'data-type': n.type });
    if (n.mode === 2) el.classList.add('muted');
    if (n.flags?.collapsed) el.classList.add('collapsed');
    if (n.mode === 4) el.classList.add('bypassed');
    if (n.color) el.style.setProperty('--nc', n.color);
    if (n.bgcolor) el.style.setProperty('--nbg', n.bgcolor);
    const missing = !def && !sub && !['Reroute', 'PrimitiveNode', 'Note', 'MarkdownNote'].includes(n.type);
    if (sub) el.classList.add('subgraph');
    if (missing) el.classList.add('missing');
    el.style.left = vec(n.pos, 0, 0) + 'px';
    el.style.top = vec(n.pos, 1, 0) + 'px';
    if (n.type === 'Reroute') {
      el.classList.add('reroute');
    } else {
      el.style.width = Math.max(200, vec(n.size, 0, 300)) + 'px';
    }
    const toggle = h('button', { type: 'button', class: 'collapse', title: 'collapse / expand', 'aria-label': `collapse or expand node ${m.id}`, 'aria-expanded': String(!n.flags?.collapsed) });
    toggle.addEventListener('click', () => this.setCollapsed(m, !m.raw.flags?.collapsed));
    const header = h(
      'header',
      { class: 'title', title: `${n.type} #${m.id}` },
      n.type === 'Reroute' ? null : toggle,
      h('span', { class: 'nid', text: '#' + m.id }),
      h('span', { class: 'tname', text: n.type === 'Reroute' ? '' : title }),
    );
    el.append(header);
    if (missing) el.append(h('div', { class: 'missing-note', text: `Node type “${n.type}” is not available on this server.` }));
    if (sub) el.append(h('div', { class: 'sub-note', text: `subgraph · ${(sub.nodes || []).length} nodes inside` }));

    // sockets
    const savedIn = new Map((n.inputs || []).map((e) => [e.name, e]));
    const ins = def
      ? fullInputs(n, def).filter((e) => !e.widget || e.link != null)
      : sub
        ? (sub.inputs || []).map((b) => ({ name: b.name, type: b.type, label: b.label, link: savedIn.get(b.name)?.link ?? null }))
        : (n.inputs || []).map((e) => ({ ...e }));
    const outs = sub
      ? (sub.outputs || []).map((b) => ({ name: b.name, type: b.type, label: b.label }))
      : def
      ? (def.output || []).map((t, i) => ({
          name: def.output_name?.[i] ?? (Array.isArray(t) ? 'COMBO' : t),
          type: Array.isArray(t) ? 'COMBO' : t,
        }))
      : (n.outputs || []).map((o) => ({ name: o.name, type: o.type }));
    const io = h('div', { class: 'io' });
    const rows = Math.max(ins.length, outs.length);
    for (let i = 0; i < rows; i++) {
      const a = ins[i];
      const b = outs[i];
      const left = h('div', { class: 'slot in' });
      if (a) {
        const dot = h('span', { class: 'dot' });
        dot.style.background = linkColor(a.type);
        left.append(dot, h('span', { class: 'sname', text: a.label || a.name || '' }));
        left.dataset.name = a.name;
        m.inputs.push({ ...a, dot });
      }
      const right = h('div', { class: 'slot out' });
      if (b) {
        const dot = h('span', { class: 'dot' });
        dot.style.background = linkColor(b.type);
        right.append(h('span', { class: 'sname', text: n.type === 'Reroute' ? '' : b.label || b.name || '' }), dot);
        m.outputs.push({ ...b, dot });
      }
      io.append(left, right);
    }
    el.append(io);

    // widgets
    const wbox = h('div', { class: 'widgets' });
    if (def) {
      const { slots, values } = mapWidgetValues(def, n.widgets_values, n.type);
      m.slots = slots;
      m.values = values;
      const linked = new Set(ins.filter((e) => e.widget && e.link != null).map((e) => e.name));
      slots.forEach((s, i) => {
        if (s.kind !== 'value') return;
        const ci = slots[i + 1]?.kind === 'control' && slots[i + 1].name === s.name ? i + 1 : -1;
        const row = this.widgetRow(m, s.input, i, ci, linked.has(s.name));
        m.rows.set(s.name, row);
        wbox.append(row, row.controlRow || '');
      });
      if (slots.some((s) => s.kind === 'upload')) {
        const imgSlot = slots.find((s) => s.kind === 'value' && s.input.type === 'COMBO' && s.input.opts.image_upload);
        if (imgSlot) {
          const fi = h('input', { type: 'file', accept: 'image/*', class: 'upload', 'aria-label': 'Upload image' });
          fi.dataset.uploadFor = imgSlot.name;
          wbox.append(h('label', { class: 'w upload-row' }, h('span', { class: 'wname', text: 'upload' }), fi));
        }
      }
    } else if (n.type === 'PrimitiveNode' || n.type === 'Note' || n.type === 'MarkdownNote') {
      m.values = Array.isArray(n.widgets_values) ? n.widgets_values.slice() : [];
      if (n.type === 'PrimitiveNode') {
        const t = n.outputs?.[0]?.type || typeof m.values[0];
        const inp = { name: n.outputs?.[0]?.widget?.name || 'value', type: String(t).toUpperCase(), opts: {}, options: null };
        if (typeof m.values[0] === 'number') inp.type = Number.isInteger(m.values[0]) ? 'INT' : 'FLOAT';
        if (typeof m.values[0] === 'string' && inp.type !== 'COMBO') inp.type = 'STRING';
        if (inp.type === 'COMBO') inp.options = this.primitiveOptions(n);
        m.slots = [{ name: inp.name, kind: 'value', input: inp }];
        const hasCtl = typeof m.values[1] === 'string' && [...CONTROL_MODES, 'increment-wrap'].includes(m.values[1]);
        if (hasCtl) m.slots.push({ name: inp.name, kind: 'control', input: inp });
        const row = this.widgetRow(m, inp, 0, hasCtl ? 1 : -1, false);
        wbox.append(row, row.controlRow || '');
      } else {
        m.slots = [{ name: 'text', kind: 'value', input: { name: 'text', type: 'STRING', opts: { multiline: true }, options: null } }];
        wbox.append(this.widgetRow(m, m.slots[0].input, 0, -1, false));
      }
    } else if (sub) {
      this.promotedWidgets(m, sub, savedIn, wbox);
      this.proxyWidgets(m, sub, wbox);
    } else if (n.widgets_values !== undefined) {
      const vals = Array.isArray(n.widgets_values) ? n.widgets_values : Object.entries(n.widgets_values || {});
      for (const v of vals) wbox.append(h('div', { class: 'w raw', text: JSON.stringify(v) }));
    }
    el.append(wbox);
    m.progress = h('div', { class: 'node-progress', role: 'progressbar', 'aria-label': 'node progress', 'aria-valuemin': '0', 'aria-valuemax': '100' }, h('div'));
    m.errorsEl = h('div', { class: 'node-errors' });
    m.media = h('div', { class: 'node-media' });
    el.append(m.progress, m.errorsEl, m.media);
    m.el = el;
    return m;
  }

  primitiveOptions(n) {
    const lid = n.outputs?.[0]?.links?.[0];
    if (lid == null) return [];
    const l = normLinks(this.workflow.links).get(Number(lid));
    const t = l && (this.workflow.nodes || []).find((x) => String(x.id) === String(l.target));
    const e = t && (t.inputs || []).find((i) => Number(i.link) === Number(lid));
    const def = t && this.defs[t.type];
    const inp = def && inputList(def).find((i) => i.name === (e?.widget?.name ?? e?.name));
    return inp?.options || [];
  }

  /**
   * promotedWidgets shows the widgets a subgraph instance promotes: boundary inputs wired to an
   * inner widget, whose values are the instance's widgets_values in boundary order (8.3).
   */
  promotedWidgets(m, sub, savedIn, wbox) {
    const links = normLinks(sub.links);
    const inner = new Map((sub.nodes || []).map((x) => [String(x.id), x]));
    const saved = Array.isArray(m.raw.widgets_values) ? m.raw.widgets_values : [];
    (sub.inputs || []).forEach((bi, slot) => {
      let target = null;
      for (const l of links.values()) {
        if (Number(l.origin) !== -10 || l.originSlot !== slot) continue;
        const t = inner.get(String(l.target));
        const e = (t?.inputs || []).find((i) => Number(i.link) === l.id);
        if (e?.widget) {
          target = { t, name: e.widget.name };
          break;
        }
      }
      if (!target) return;
      const idef = this.defs[target.t.type];
      const spec = idef && inputList(idef).find((i) => i.name === target.name);
      const k = m.values.length;
      let v = saved[k];
      if (v === undefined && idef) {
        const r = mapWidgetValues(idef, target.t.widgets_values, target.t.type);
        v = r.values[r.slots.findIndex((x) => x.kind === 'value' && x.name === target.name)];
      }
      const inp = { ...(spec || { type: typeof v === 'number' ? 'FLOAT' : 'STRING', opts: {}, options: null }), name: bi.name };
      inp.opts = { ...(inp.opts || {}), display_name: bi.label || bi.name };
      m.slots.push({ name: bi.name, kind: 'value', input: inp });
      m.values.push(v);
      const row = this.widgetRow(m, inp, k, -1, savedIn.get(bi.name)?.link != null);
      m.rows.set(bi.name, row);
      wbox.append(row, row.controlRow || '');
    });
  }

  /**
   * proxyWidgets shows the inner widgets a subgraph instance lists in properties.proxyWidgets
   * ([innerNodeId, widgetName] pairs). They are views: editing changes the inner node's own
   * widgets_values, which is what runs (workflow-format.md 8.3).
   */
  proxyWidgets(m, sub, wbox) {
    let list = m.raw.properties?.proxyWidgets;
    if (typeof list === 'string') {
      try {
        list = JSON.parse(list);
      } catch {
        list = null;
      }
    }
    if (!Array.isArray(list)) return;
    for (const e of list) {
      if (!Array.isArray(e) || e.length < 2) continue;
      const [innerId, wname] = e;
      if (wname === 'control_after_generate' || wname === 'control_filter_list') continue;
      const t = (sub.nodes || []).find((x) => String(x.id) === String(innerId));
      const idef = t && this.defs[t.type];
      if (!idef) continue;
      const key = `${sub.id}/${t.id}`;
      let pm = this.inner.get(key);
      if (!pm) {
        const r = mapWidgetValues(idef, t.widgets_values, t.type);
        pm = { raw: t, id: `${m.id}:${t.id}`, def: idef, slots: r.slots, values: r.values, inputs: [], outputs: [], rows: new Map(), el: m.el, inner: true };
        this.inner.set(key, pm);
        this.innerById.set(pm.id, pm);
      }
      const vi = pm.slots.findIndex((x) => x.kind === 'value' && x.name === wname);
      if (vi < 0) continue;
      const ci = pm.slots[vi + 1]?.kind === 'control' && pm.slots[vi + 1].name === wname ? vi + 1 : -1;
      const linked = (t.inputs || []).some((i) => i.name === wname && i.link != null);
      const row = this.widgetRow(pm, pm.slots[vi].input, vi, ci, linked);
      pm.rows.set(wname, row);
      m.rows.set(`${t.id}:${wname}`, row);
      wbox.append(row, row.controlRow || '');
    }
  }

  widgetRow(m, inp, vi, ci, linked) {
    const v = m.values[vi];
    const id = `w-${m.id}-${inp.name}`;
    const row = h('div', { class: 'w', 'data-name': inp.name });
    const label = h('label', { class: 'wname', for: id, text: inp.opts?.display_name || inp.name });
    row.append(label);
    let ctl;
    const common = { id, 'data-node': m.id, 'data-slot': String(vi), 'data-kind': inp.type };
    if (linked) {
      ctl = h('input', { ...common, type: 'text', disabled: true, value: '← linked' });
    } else if (inp.type === 'COMBO') {
      ctl = h('select', common);
      const opts = (inp.options || []).map((o) => String(o));
      const cur = v == null ? '' : String(v);
      if (!opts.includes(cur)) {
        ctl.append(h('option', { value: cur, text: `${cur} (missing)` }));
        row.classList.add('invalid');
      }
      for (const o of opts) ctl.append(h('option', { value: o, text: o }));
      ctl.value = cur;
    } else if (inp.type === 'BOOLEAN') {
      ctl = h('input', { ...common, type: 'checkbox' });
      ctl.checked = !!v;
      const on = inp.opts.label_on;
      if (on) row.title = `${on} / ${inp.opts.label_off || 'off'}`;
    } else if (inp.type === 'INT' || inp.type === 'FLOAT') {
      ctl = h('input', { ...common, type: 'number', inputmode: inp.type === 'INT' ? 'numeric' : 'decimal' });
      if (inp.opts.min !== undefined) ctl.min = String(inp.opts.min);
      if (inp.opts.max !== undefined) ctl.max = String(inp.opts.max);
      ctl.step = inp.type === 'INT' ? String(inp.opts.step ?? 1) : 'any';
      ctl.value = v == null ? '' : String(v);
    } else if (inp.type === 'STRING' && (inp.opts.multiline || m.raw.type === 'Note' || m.raw.type === 'MarkdownNote')) {
      ctl = h('textarea', { ...common, rows: '3', placeholder: inp.opts.placeholder || '' });
      ctl.value = v == null ? '' : String(v);
    } else {
      ctl = h('input', { ...common, type: 'text', placeholder: inp.opts?.placeholder || '' });
      ctl.value = v == null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    }
    if (inp.opts?.tooltip) ctl.title = inp.opts.tooltip;
    row.append(ctl);
    if (ci >= 0) {
      const sel = h('select', {
        class: 'control',
        'data-node': m.id,
        'data-slot': String(ci),
        'data-kind': 'CONTROL',
        'aria-label': `${inp.name} control after generate`,
        title: 'control after generate',
      });
      const modes = inp.type === 'COMBO' ? [...CONTROL_MODES, 'increment-wrap'] : CONTROL_MODES;
      for (const o of modes) sel.append(h('option', { value: o, text: o }));
      sel.value = m.values[ci] || 'randomize';
      // its own row, as in ComfyUI ("control after generate" under the seed)
      sel.id = `${id}-control`;
      row.controlRow = h('div', { class: 'w ctl', 'data-name': `${inp.name}:control` }, h('label', { class: 'wname', for: sel.id, text: 'control after generate' }), sel);
    }
    row.append(h('div', { class: 'werr' }));
    return row;
  }

  onWidgetEvent(e) {
    const t = e.target;
    if (t.classList?.contains('upload') && e.type === 'change') {
      this.dispatchEvent(new CustomEvent('upload', { detail: { nodeId: t.closest('.node').dataset.id, input: t.dataset.uploadFor, file: t.files?.[0] } }));
      return;
    }
    const nodeId = t.dataset?.node;
    if (nodeId === undefined) return;
    const m = this.models.get(nodeId) || this.innerById.get(nodeId);
    const i = Number(t.dataset.slot);
    if (!m || !(i >= 0)) return;
    let v;
    switch (t.dataset.kind) {
      case 'INT':
      case 'FLOAT':
        if (t.value === '' || !Number.isFinite(Number(t.value))) return;
        v = Number(t.value);
        break;
      case 'BOOLEAN':
        v = t.checked;
        break;
      default:
        v = t.value;
    }
    this.setValue(m, i, v, false);
    const row = t.closest('.w');
    if (row && t.tagName === 'SELECT' && t.dataset.kind !== 'CONTROL') {
      const opt = t.selectedOptions[0];
      row.classList.toggle('invalid', !!opt && opt.textContent.endsWith('(missing)'));
    }
    this.dispatchEvent(new CustomEvent('change', { detail: { nodeId, slot: i, value: v } }));
  }

  /** setValue changes one widgets_values slot of node model m (and the control showing it). */
  setValue(m, i, v, updateControl = true) {
    m.values[i] = v;
    const raw = m.raw;
    if (raw.widgets_values && !Array.isArray(raw.widgets_values) && typeof raw.widgets_values === 'object') {
      const s = m.slots[i];
      if (s?.kind === 'value') raw.widgets_values[s.name] = v;
    } else {
      raw.widgets_values = m.values.slice();
    }
    if (updateControl) {
      const ctl = m.el.querySelector(`[data-node="${CSS.escape(m.id)}"][data-slot="${i}"]`);
      if (ctl) {
        if (ctl.type === 'checkbox') ctl.checked = !!v;
        else ctl.value = String(v);
      }
    }
  }

  /** widgetValue returns the current value of input name on node id. */
  widgetValue(id, name) {
    const m = this.models.get(String(id));
    if (!m) return undefined;
    const i = m.slots.findIndex((s) => s.kind === 'value' && s.name === name);
    return i < 0 ? undefined : m.values[i];
  }

  /**
   * applyControlAfterGenerate changes every widget that has a control_after_generate mode
   * (fixed, increment, decrement, randomize) the way ComfyUI does after a prompt is queued.
   */
  applyControlAfterGenerate(random = Math.random) {
    for (const m of [...this.models.values(), ...this.inner.values()]) {
      if (m.raw.mode === 2 || m.raw.mode === 4) continue;
      m.slots.forEach((s, ci) => {
        if (s.kind !== 'control') return;
        const mode = m.values[ci];
        const vi = ci - 1;
        const inp = s.input;
        const cur = m.values[vi];
        if (!mode || mode === 'fixed') return;
        if (inp.type === 'COMBO') {
          let opts = (inp.options || []).map(String);
          const filter = m.slots[ci + 1]?.kind === 'filter' ? m.values[ci + 1] : '';
          if (filter) {
            let re = null;
            const mm = /^\/(.*)\/(\w*)$/.exec(filter);
            try {
              if (mm) re = new RegExp(mm[1], mm[2]);
            } catch {
              re = null;
            }
            const f = opts.filter((o) => (re ? re.test(o) : o.toLowerCase().includes(filter.toLowerCase())));
            if (f.length) opts = f;
          }
          if (!opts.length) return;
          let idx = opts.indexOf(String(cur));
          if (mode === 'increment') idx = Math.min(opts.length - 1, idx + 1);
          else if (mode === 'increment-wrap') idx = (idx + 1) % opts.length;
          else if (mode === 'decrement') idx = Math.max(0, idx - 1);
          else if (mode === 'randomize') idx = Math.floor(random() * opts.length);
          this.setValue(m, vi, opts[Math.max(0, idx)]);
          return;
        }
        if (typeof cur !== 'number') return;
        const step = Number(inp.opts?.step) || 1;
        let min = inp.opts?.min ?? -Infinity;
        let max = inp.opts?.max ?? Infinity;
        let v = cur;
        if (mode === 'increment') v = cur + step;
        else if (mode === 'decrement') v = cur - step;
        else if (mode === 'randomize') {
          const lo = Math.max(Number(min), -(2 ** 50));
          const hi = Math.min(Number(max), 2 ** 50);
          const range = Math.floor((hi - lo) / step);
          v = Math.floor(random() * (range + 1)) * step + lo;
          if (inp.type === 'FLOAT') v = Math.round(v * 1e6) / 1e6;
        }
        v = Math.min(Number(max), Math.max(Number(min), v));
        this.setValue(m, vi, v);
      });
    }
  }

  // ---- geometry and links ----

  measure() {
    for (const m of this.models.values()) {
      m.w = m.el.offsetWidth;
      m.h = m.el.offsetHeight;
      for (const s of [...m.inputs, ...m.outputs]) {
        if (!s.dot.offsetParent) {
          // collapsed: links meet the title bar's edges, as in litegraph
          s.x = m.outputs.includes(s) ? m.w : 0;
          s.y = 14;
          continue;
        }
        let x = s.dot.offsetWidth / 2;
        let y = s.dot.offsetHeight / 2;
        let el = s.dot;
        while (el && el !== m.el) {
          x += el.offsetLeft;
          y += el.offsetTop;
          el = el.offsetParent;
        }
        s.x = x;
        s.y = y;
      }
    }
  }

  /** setCollapsed folds a node to its title bar (flags.collapsed, saved with the workflow). */
  setCollapsed(m, on) {
    m.raw.flags = { ...(m.raw.flags || {}), collapsed: on };
    if (!on) delete m.raw.flags.collapsed;
    m.el.classList.toggle('collapsed', on);
    m.el.querySelector('button.collapse')?.setAttribute('aria-expanded', String(!on));
    this.remeasure(m);
    this.dispatchEvent(new CustomEvent('change', { detail: { nodeId: m.id } }));
  }

  nodePos(m) {
    return [vec(m.raw.pos, 0, 0), vec(m.raw.pos, 1, 0)];
  }

  drawLinks() {
    this.svg.replaceChildren();
    this.linkEls.clear();
    const links = normLinks(this.workflow.links);
    for (const l of links.values()) {
      const path = document.createElementNS(SVGNS, 'path');
      path.setAttribute('stroke', linkColor(l.type));
      path.dataset.link = String(l.id);
      this.svg.append(path);
      this.linkEls.set(l.id, { l, path });
      this.updateLink(l.id);
    }
    this.sizeSvg();
  }

  sizeSvg() {
    let minX = 0;
    let minY = 0;
    let maxX = 1;
    let maxY = 1;
    for (const m of this.models.values()) {
      const [x, y] = this.nodePos(m);
      minX = Math.min(minX, x - 200);
      minY = Math.min(minY, y - 200);
      maxX = Math.max(maxX, x + (m.w || 300) + 200);
      maxY = Math.max(maxY, y + (m.h || 100) + 200);
    }
    this.svg.setAttribute('viewBox', `${minX} ${minY} ${maxX - minX} ${maxY - minY}`);
    Object.assign(this.svg.style, { left: minX + 'px', top: minY + 'px', width: maxX - minX + 'px', height: maxY - minY + 'px' });
  }

  updateLink(id) {
    const rec = this.linkEls.get(id);
    if (!rec) return;
    const { l, path } = rec;
    const o = this.models.get(String(l.origin));
    const t = this.models.get(String(l.target));
    if (!o || !t) {
      path.setAttribute('d', '');
      return;
    }
    const out = o.outputs[l.originSlot];
    const inp = t.inputs.find((i) => Number(i.link) === l.id) || t.inputs[l.targetSlot];
    if (!out || !inp) {
      path.setAttribute('d', '');
      return;
    }
    const [ox, oy] = this.nodePos(o);
    const [tx, ty] = this.nodePos(t);
    const x1 = ox + out.x;
    const y1 = oy + out.y;
    const x2 = tx + inp.x;
    const y2 = ty + inp.y;
    const dx = Math.max(40, Math.abs(x2 - x1) * 0.5);
    path.setAttribute('d', `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`);
  }

  moveNode(m, x, y) {
    if (Array.isArray(m.raw.pos)) {
      m.raw.pos[0] = x;
      m.raw.pos[1] = y;
    } else m.raw.pos = [x, y];
    m.el.style.left = x + 'px';
    m.el.style.top = y + 'px';
    for (const rec of this.linkEls.values()) {
      if (String(rec.l.origin) === m.id || String(rec.l.target) === m.id) this.updateLink(rec.l.id);
    }
  }

  applyTransform() {
    this.world.style.transform = `translate(${this.offset[0]}px, ${this.offset[1]}px) scale(${this.scale})`;
    // Like ComfyUI's low-quality mode: far out, draw boxes and links without widget text.
    // (only for big graphs: small ones stay readable, and cheap to paint, at any zoom)
    this.world.classList.toggle('lowq', this.scale < 0.2 || (this.scale < 0.45 && this.models.size > 80));
  }

  /** fit scales and pans so the whole graph is visible. */
  fit() {
    if (!this.models.size) {
      this.scale = 1;
      this.offset = [0, 0];
      this.applyTransform();
      return;
    }
    let minX = Infinity;
    let minY = Infinity;
    let maxX = -Infinity;
    let maxY = -Infinity;
    for (const m of this.models.values()) {
      const [x, y] = this.nodePos(m);
      minX = Math.min(minX, x);
      minY = Math.min(minY, y);
      maxX = Math.max(maxX, x + (m.w || 200));
      maxY = Math.max(maxY, y + (m.h || 100));
    }
    const vw = this.viewport.clientWidth || 800;
    const vh = this.viewport.clientHeight || 600;
    const pad = 40;
    this.scale = Math.max(0.1, Math.min(1.25, (vw - 2 * pad) / (maxX - minX || 1), (vh - 2 * pad) / (maxY - minY || 1)));
    this.offset = [pad - minX * this.scale + (vw - 2 * pad - (maxX - minX) * this.scale) / 2, pad - minY * this.scale];
    this.applyTransform();
  }

  /** center pans to node id at a readable zoom and flashes it. */
  center(id) {
    const m = this.models.get(String(id));
    if (!m) return;
    const [x, y] = this.nodePos(m);
    this.scale = Math.max(this.scale, 0.9);
    const vw = this.viewport.clientWidth;
    const vh = this.viewport.clientHeight;
    this.offset = [vw / 2 - (x + (m.w || 200) / 2) * this.scale, vh / 2 - (y + (m.h || 100) / 2) * this.scale];
    this.applyTransform();
    m.el.classList.remove('flash');
    void m.el.offsetWidth;
    m.el.classList.add('flash');
  }

  installPanZoom() {
    const vp = this.viewport;
    let drag = null;
    vp.addEventListener('pointerdown', (e) => {
      if (e.button !== 0 && e.button !== 1) return;
      if (e.target.closest?.('button')) return;
      const title = e.target.closest?.('.node header.title');
      if (title) {
        const m = this.models.get(title.parentElement.dataset.id);
        const [x, y] = this.nodePos(m);
        drag = { kind: 'node', m, sx: e.clientX, sy: e.clientY, x, y };
      } else if (e.target === vp || e.target === this.world || e.target === this.svg || e.target.closest?.('.group') || e.target.tagName === 'path') {
        drag = { kind: 'pan', sx: e.clientX, sy: e.clientY, ox: this.offset[0], oy: this.offset[1] };
      } else return;
      vp.setPointerCapture(e.pointerId);
      e.preventDefault();
    });
    vp.addEventListener('pointermove', (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.sx;
      const dy = e.clientY - drag.sy;
      if (drag.kind === 'pan') {
        this.offset = [drag.ox + dx, drag.oy + dy];
        this.applyTransform();
      } else {
        this.moveNode(drag.m, Math.round(drag.x + dx / this.scale), Math.round(drag.y + dy / this.scale));
      }
    });
    const end = () => {
      if (drag?.kind === 'node') this.sizeSvg();
      drag = null;
    };
    vp.addEventListener('pointerup', end);
    vp.addEventListener('pointercancel', end);
    vp.addEventListener(
      'wheel',
      (e) => {
        if (e.target.closest?.('textarea, select') && !e.ctrlKey) return;
        e.preventDefault();
        const r = vp.getBoundingClientRect();
        const px = e.clientX - r.left;
        const py = e.clientY - r.top;
        const k = Math.exp(-e.deltaY * 0.0015);
        const s = Math.max(0.1, Math.min(3, this.scale * k));
        this.offset = [px - ((px - this.offset[0]) * s) / this.scale, py - ((py - this.offset[1]) * s) / this.scale];
        this.scale = s;
        this.applyTransform();
      },
      { passive: false },
    );
  }

  // ---- execution state ----

  /** shown maps an execution id ("12:5" inside subgraph instance 12) to the node drawn for it. */
  shown(id) {
    if (id == null) return null;
    const s = String(id);
    if (this.models.has(s)) return this.models.get(s);
    const i = s.indexOf(':');
    return i > 0 ? this.models.get(s.slice(0, i)) || null : null;
  }

  setRunning(id) {
    for (const m of this.models.values()) m.el.classList.remove('running');
    const m = this.shown(id);
    if (m) m.el.classList.add('running');
  }

  setNodeProgress(id, value, max) {
    const m = this.shown(id);
    if (!m) return;
    const pct = max > 0 ? Math.round((100 * value) / max) : 0;
    m.progress.firstChild.style.width = pct + '%';
    m.progress.setAttribute('aria-valuenow', String(pct));
    m.progress.classList.toggle('active', pct > 0 && pct < 100);
  }

  clearProgress() {
    for (const m of this.models.values()) {
      m.progress.firstChild.style.width = '0%';
      m.progress.classList.remove('active');
      m.progress.removeAttribute('aria-valuenow');
    }
  }

  setPreview(id, url) {
    const m = this.shown(id);
    if (!m) return;
    let img = m.media.querySelector('img.preview');
    if (!img) {
      m.media.replaceChildren();
      img = h('img', { class: 'preview', alt: 'latent preview' });
      img.onload = () => {
        img.classList.toggle('pixel', img.naturalWidth < 128);
        this.remeasure(m);
      };
      m.media.append(img);
    }
    img.src = url;
  }

  setImages(id, urls) {
    const m = this.shown(id);
    if (!m) return;
    m.media.replaceChildren(...urls.map((u) => h('img', { class: 'output', src: u, alt: 'output image' })));
    requestAnimationFrame(() => this.remeasure(m));
  }

  remeasure(m) {
    const before = m.h;
    this.measure();
    if (m.h !== before) this.sizeSvg();
    for (const rec of this.linkEls.values()) if (String(rec.l.origin) === m.id || String(rec.l.target) === m.id) this.updateLink(rec.l.id);
  }

  /**
   * setErrors marks nodes and their inputs: errors is {nodeId: [{message, details, input}]}.
   * Returns the ids that are not in the graph.
   */
  setErrors(errors) {
    this.clearErrors();
    const unknown = [];
    for (const [id, list0] of Object.entries(errors)) {
      const m = this.shown(id);
      if (!m) {
        unknown.push(id);
        continue;
      }
      const inner = m.id !== String(id);
      const list = inner ? list0.map((e) => ({ message: `inner node #${id}: ${e.message}`, details: e.details })) : list0;
      m.el.classList.add('has-error');
      for (const e of list) {
        const row = e.input && (m.rows.get(e.input) || m.el.querySelector(`.slot.in[data-name="${CSS.escape(e.input)}"]`));
        const text = e.details ? `${e.message}: ${e.details}` : e.message;
        if (row) {
          row.classList.add('error');
          const slot = row.querySelector('.werr');
          if (slot) slot.textContent = text;
          else row.title = text;
        }
        if (!row || !row.querySelector('.werr')) m.errorsEl.append(h('div', { class: 'nerr', text }));
      }
    }
    requestAnimationFrame(() => {
      this.measure();
      for (const id of this.linkEls.keys()) this.updateLink(id);
    });
    return unknown;
  }

  clearErrors() {
    for (const m of this.models.values()) {
      m.el.classList.remove('has-error');
      m.errorsEl.replaceChildren();
      for (const r of m.el.querySelectorAll('.error')) {
        r.classList.remove('error');
        const s = r.querySelector('.werr');
        if (s) s.textContent = '';
      }
    }
  }

  /** problems lists missing node types and combo values (model files) not on the server. */
  problems() {
    const missingTypes = new Map();
    const missingValues = [];
    const seenSubs = new Set();
    for (const m of this.models.values()) {
      const n = m.raw;
      if (m.sub) {
        if (seenSubs.has(m.sub.id)) continue;
        seenSubs.add(m.sub.id);
        for (const inner of m.sub.nodes || []) {
          const idef = this.defs[inner.type];
          if (idef && inner.mode !== 2 && inner.mode !== 4) {
            const r = mapWidgetValues(idef, inner.widgets_values, inner.type);
            r.slots.forEach((s, i) => {
              if (s.kind !== 'value' || s.input.type !== 'COMBO') return;
              if ((s.input.options || []).map(String).includes(String(r.values[i]))) return;
              if ((inner.inputs || []).some((x) => x.name === s.name && x.link != null)) return;
              missingValues.push({ nodeId: `${m.id}:${inner.id}`, type: inner.type, input: s.name, value: r.values[i], folder: modelFolder(s.name, r.values[i], inner.type) });
            });
          }
          if (idef || this.subs.has(inner.type) || ['Reroute', 'PrimitiveNode', 'Note', 'MarkdownNote'].includes(inner.type)) continue;
          if (!missingTypes.has(inner.type)) missingTypes.set(inner.type, []);
          missingTypes.get(inner.type).push(`${m.id}:${inner.id}`);
        }
        continue;
      }
      if (!m.def && !['Reroute', 'PrimitiveNode', 'Note', 'MarkdownNote'].includes(n.type)) {
        if (!missingTypes.has(n.type)) missingTypes.set(n.type, []);
        missingTypes.get(n.type).push(m.id);
        continue;
      }
      if (n.mode === 2 || n.mode === 4 || !m.def) continue;
      m.slots.forEach((s, i) => {
        if (s.kind !== 'value' || s.input.type !== 'COMBO') return;
        const v = m.values[i];
        if ((s.input.options || []).map(String).includes(String(v))) return;
        const linked = m.inputs.some((x) => x.name === s.name && x.link != null);
        if (linked) return;
        missingValues.push({ nodeId: m.id, type: n.type, input: s.name, value: v, folder: modelFolder(s.name, v, n.type) });
      });
    }
    return { missingTypes, missingValues };
  }
}
