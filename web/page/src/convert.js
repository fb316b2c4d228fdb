// UI workflow ⇄ API prompt, like ComfyUI's frontend (workflow-format.md sections 5–7):
// graphToPrompt turns the edited UI workflow into the prompt POSTed to /prompt;
// promptToWorkflow builds an editable UI workflow (with a layout) from an API prompt.

import { inputList, mapWidgetValues, widgetSlots, VIRTUAL_TYPES, defaultValue } from './nodedefs.js';

/** normLinks returns Map linkId → {id, origin, originSlot, target, targetSlot, type}. */
export function normLinks(links) {
  const m = new Map();
  for (const l of links || []) {
    if (Array.isArray(l)) {
      m.set(Number(l[0]), {
        id: Number(l[0]),
        origin: l[1],
        originSlot: Number(l[2]),
        target: l[3],
        targetSlot: Number(l[4]),
        type: l[5],
      });
    } else if (l && typeof l === 'object') {
      m.set(Number(l.id), {
        id: Number(l.id),
        origin: l.origin_id,
        originSlot: Number(l.origin_slot),
        target: l.target_id,
        targetSlot: Number(l.target_slot),
        type: l.type,
      });
    }
  }
  return m;
}

/** typesCompatible is litegraph's type test: wildcards, case-insensitive, comma unions overlap. */
export function typesCompatible(a, b) {
  if (!a || !b || a === '*' || b === '*') return true;
  a = String(a).toLowerCase();
  b = String(b).toLowerCase();
  if (a === b) return true;
  if (!a.includes(',') && !b.includes(',')) return false;
  const bs = b.split(',');
  return a.split(',').some((x) => bs.includes(x));
}

/** fullInputs is a node's input list as the editor has it: definition order, saved links by name. */
export function fullInputs(node, def) {
  const saved = Array.isArray(node.inputs) ? node.inputs : [];
  if (!def) return saved.map((e) => ({ name: e.name, type: e.type, link: e.link ?? null, widget: e.widget }));
  const byName = new Map(saved.map((e) => [e.name, e]));
  const out = [];
  for (const inp of inputList(def)) {
    const e = byName.get(inp.name);
    out.push({ name: inp.name, type: inp.type, link: e?.link ?? null, widget: inp.widget ? { name: inp.name } : undefined });
    byName.delete(inp.name);
  }
  for (const e of byName.values()) out.push({ name: e.name, type: e.type, link: e.link ?? null, widget: e.widget });
  return out;
}

function outputType(node, def, slot) {
  if (def && Array.isArray(def.output)) {
    const t = def.output[slot];
    return Array.isArray(t) ? 'COMBO' : t;
  }
  return node.outputs?.[slot]?.type;
}

/** subgraphDefs returns every subgraph definition of a workflow (nested ones too) by id. */
export function subgraphDefs(wf) {
  const out = new Map();
  const walk = (defs) => {
    for (const d of defs?.subgraphs || []) {
      if (d && d.id && !out.has(d.id)) {
        out.set(d.id, d);
        walk(d.definitions);
      }
    }
  };
  walk(wf?.definitions);
  return out;
}

/** groupNodes lists legacy group-node instances (workflow>Name), which the page cannot convert. */
export function groupNodes(wf) {
  return (wf.nodes || []).filter((n) => /^workflow[>/]/.test(String(n.type)));
}

const SUB_IN = -10;
const SUB_OUT = -20;

/**
 * graphToPrompt converts a UI workflow into an API prompt. defs is /object_info. opts.random is
 * the RNG for dynamic prompts (default Math.random). Returns {output, workflow} where workflow is
 * a copy with dynamic-prompt results written back (for extra_pnginfo). Subgraphs are flattened
 * with "instance:inner" ids (section 8); legacy group nodes are refused with a clear error.
 */
export function graphToPrompt(wf, defs, opts = {}) {
  const random = opts.random || Math.random;
  const workflow = structuredClone(wf);
  const legacy = groupNodes(workflow);
  if (legacy.length) {
    throw new Error(`Node #${legacy[0].id} is a legacy group node (${legacy[0].type}); convert it to a subgraph in ComfyUI first.`);
  }
  const subs = subgraphDefs(workflow);

  // one index per graph (root + each definition): nodes, links, PrimitiveNode overrides
  const indexes = new Map();
  const indexOf = (g, key) => {
    if (indexes.has(key)) return indexes.get(key);
    const ix = { g, nodes: new Map((g.nodes || []).map((n) => [String(n.id), n])), links: normLinks(g.links), overrides: new Map() };
    indexes.set(key, ix);
    // 7.2: PrimitiveNode values flow into the widgets they feed (within this graph).
    for (const n of ix.nodes.values()) {
      if (n.type !== 'PrimitiveNode' || n.mode === 2) continue;
      const v = Array.isArray(n.widgets_values) ? n.widgets_values[0] : undefined;
      for (const lid of n.outputs?.[0]?.links || []) {
        const l = ix.links.get(Number(lid));
        const t = l && ix.nodes.get(String(l.target));
        const e = (t?.inputs || []).find((i) => Number(i.link) === Number(lid));
        const wname = e?.widget?.name ?? e?.name;
        if (!t || !wname) continue;
        if (!ix.overrides.has(String(t.id))) ix.overrides.set(String(t.id), {});
        ix.overrides.get(String(t.id))[wname] = v;
      }
    }
    return ix;
  };
  const root = { ix: indexOf(workflow, ''), prefix: '', instance: null, parent: null, def: null };
  const childCtx = (ctx, inst, depth) => {
    const def = subs.get(inst.type);
    if (depth > 32) throw new Error(`subgraph ${def?.name || inst.type} contains itself`);
    return { ix: indexOf(def, def.id), prefix: `${ctx.prefix}${inst.id}:`, instance: inst, parent: ctx, def, depth };
  };

  // promoted widget values of an instance: its widgets_values consumed positionally by the
  // boundary inputs that feed widgets (8.3)
  const promoted = (ctx) => {
    if (ctx.promoted) return ctx.promoted;
    const m = new Map();
    const vals = Array.isArray(ctx.instance.widgets_values) ? ctx.instance.widgets_values : [];
    let k = 0;
    (ctx.def.inputs || []).forEach((bi, slot) => {
      const feedsWidget = [...ctx.ix.links.values()].some((l) => {
        if (Number(l.origin) !== SUB_IN || l.originSlot !== slot) return false;
        const t = ctx.ix.nodes.get(String(l.target));
        const e = (t?.inputs || []).find((i) => Number(i.link) === l.id);
        return !!e?.widget;
      });
      if (feedsWidget) {
        if (k < vals.length) m.set(slot, vals[k]);
        k++;
      }
    });
    ctx.promoted = m;
    return m;
  };

  const instanceInput = (ctx, slot) => {
    const bi = (ctx.def.inputs || [])[slot];
    if (!bi) return null;
    return (ctx.instance.inputs || []).find((e) => e.name === bi.name) || null;
  };

  // resolveInput → {link: [id, slot]} | {value: v} | null
  const resolveInput = (ctx, node, entry, wanted, seen) => {
    if (entry.link === null || entry.link === undefined) return null;
    const l = ctx.ix.links.get(Number(entry.link));
    if (!l) return null;
    if (Number(l.origin) === SUB_IN) {
      if (!ctx.instance) return null;
      const ie = instanceInput(ctx, l.originSlot);
      if (ie && ie.link != null) return resolveInput(ctx.parent, ctx.instance, ie, ie.type || wanted, seen);
      const p = promoted(ctx);
      return p.has(l.originSlot) ? { value: p.get(l.originSlot) } : null;
    }
    return resolveOutput(ctx, ctx.ix.nodes.get(String(l.origin)), l.originSlot, wanted, seen);
  };
  const resolveOutput = (ctx, o, slot, wanted, seen) => {
    if (!o) return null;
    const key = `${ctx.prefix}${o.id}:${slot}`;
    if (seen.has(key)) throw new Error(`circular reference through node #${ctx.prefix}${o.id}`);
    seen.add(key);
    const def = defs[o.type];
    if (o.mode === 4) {
      const ins = subs.has(o.type) ? o.inputs || [] : fullInputs(o, def);
      const outT = subs.has(o.type) ? subs.get(o.type).outputs?.[slot]?.type : outputType(o, def, slot);
      let pick = null;
      if (!wanted || wanted === '*') pick = ins[slot] || ins[0];
      else if (ins[slot] && typesCompatible(ins[slot].type, outT) && typesCompatible(ins[slot].type, wanted)) pick = ins[slot];
      else pick = ins.find((i) => i.type === wanted) || ins.find((i) => typesCompatible(i.type, outT) && typesCompatible(i.type, wanted));
      if (!pick) return null;
      return resolveInput(ctx, o, pick, pick.type, seen);
    }
    if (subs.has(o.type)) {
      if (o.mode === 2) return null;
      const child = childCtx(ctx, o, (ctx.depth || 0) + 1);
      const inner = [...child.ix.links.values()].find((l) => Number(l.target) === SUB_OUT && l.targetSlot === slot);
      if (!inner) return null;
      if (Number(inner.origin) === SUB_IN) {
        const ie = instanceInput(child, inner.originSlot);
        return ie ? resolveInput(ctx, o, ie, wanted, seen) : null;
      }
      return resolveOutput(child, child.ix.nodes.get(String(inner.origin)), inner.originSlot, wanted, seen);
    }
    if (o.type === 'Reroute') {
      const e = (o.inputs || [])[slot];
      return e ? resolveInput(ctx, o, e, wanted, seen) : null;
    }
    if (VIRTUAL_TYPES.has(o.type)) return null;
    return { link: [`${ctx.prefix}${o.id}`, slot] };
  };

  const output = {};
  const emit = (ctx) => {
    for (const n of ctx.ix.nodes.values()) {
      if (subs.has(n.type)) {
        if (n.mode !== 2 && n.mode !== 4) emit(childCtx(ctx, n, (ctx.depth || 0) + 1));
        continue;
      }
      if (VIRTUAL_TYPES.has(n.type) || n.mode === 2 || n.mode === 4) continue;
      const def = defs[n.type];
      const inputs = {};
      if (def) {
        const { slots, values } = mapWidgetValues(def, n.widgets_values, n.type);
        const ov = ctx.ix.overrides.get(String(n.id)) || {};
        slots.forEach((s, i) => {
          if (s.kind !== 'value') return;
          let v = s.name in ov ? ov[s.name] : values[i];
          if (s.input.type === 'STRING' && typeof v === 'string') {
            if (s.input.opts.dynamicPrompts) {
              v = processDynamicPrompt(v, random);
              values[i] = v;
            }
            if (s.name === 'filename_prefix') v = replaceFilenameTokens(v, workflow.nodes, defs);
          }
          if (v === undefined) v = defaultValue(s.input);
          inputs[s.name] = Array.isArray(v) ? { __value__: v } : v;
        });
        if (Array.isArray(n.widgets_values)) n.widgets_values = values;
      }
      for (const e of fullInputs(n, def)) {
        if (e.link === null || e.link === undefined) continue;
        const r = resolveInput(ctx, n, e, e.type, new Set());
        if (r?.link) inputs[e.name] = r.link;
        else if (r && 'value' in r) inputs[e.name] = Array.isArray(r.value) ? { __value__: r.value } : r.value;
      }
      output[`${ctx.prefix}${n.id}`] = {
        inputs,
        class_type: n.type,
        _meta: { title: n.title || def?.display_name || n.type },
      };
    }
  };
  emit(root);
  // 7.5: drop links to nodes that are not in the prompt (muted sources).
  for (const node of Object.values(output)) {
    for (const [k, v] of Object.entries(node.inputs)) {
      if (Array.isArray(v) && v.length === 2 && !(v[0] in output)) delete node.inputs[k];
    }
  }
  return { output, workflow };
}

/**
 * processDynamicPrompt removes C-style comments and replaces each {a|b|c} group (nestable; a
 * backslash escapes the next character and is kept) with one option chosen by random().
 */
export function processDynamicPrompt(text, random = Math.random) {
  const stripped = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
  let i = 0;
  const parse = (inGroup) => {
    const options = [''];
    while (i < stripped.length) {
      const c = stripped[i];
      if (c === '\\' && i + 1 < stripped.length) {
        options[options.length - 1] += c + stripped[i + 1];
        i += 2;
      } else if (c === '{') {
        i++;
        const sub = parse(true);
        options[options.length - 1] += sub;
      } else if (c === '}' && inGroup) {
        i++;
        return options[Math.floor(random() * options.length)] ?? '';
      } else if (c === '|' && inGroup) {
        options.push('');
        i++;
      } else {
        options[options.length - 1] += c;
        i++;
      }
    }
    // unterminated group: keep the text as written
    return inGroup ? '{' + options.join('|') : options[0];
  };
  return parse(false);
}

function pad(n, w) {
  return String(n).padStart(w, '0');
}

/** formatDate applies the frontend's %date:FORMAT% tokens (yyyy yy MM M dd d hh h mm m ss s). */
export function formatDate(fmt, d) {
  const map = {
    yyyy: pad(d.getFullYear(), 4),
    yy: pad(d.getFullYear() % 100, 2),
    MM: pad(d.getMonth() + 1, 2),
    M: String(d.getMonth() + 1),
    dd: pad(d.getDate(), 2),
    d: String(d.getDate()),
    hh: pad(d.getHours(), 2),
    h: String(d.getHours()),
    mm: pad(d.getMinutes(), 2),
    m: String(d.getMinutes()),
    ss: pad(d.getSeconds(), 2),
    s: String(d.getSeconds()),
  };
  return fmt.replace(/yyyy|yy|MM|M|dd|d|hh|h|mm|m|ss|s/g, (t) => map[t]);
}

/** replaceFilenameTokens substitutes %date:…% and %Node.widget% like the frontend (section 6.8). */
export function replaceFilenameTokens(value, uiNodes, defs, now = new Date()) {
  return value.replace(/%([^%]+)%/g, (all, tok) => {
    if (tok.startsWith('date:')) return formatDate(tok.slice(5), now);
    const dot = tok.lastIndexOf('.');
    if (dot <= 0) return all;
    const nodeName = tok.slice(0, dot);
    const widget = tok.slice(dot + 1);
    const node =
      uiNodes.find((n) => n.properties?.['Node name for S&R'] === nodeName) ||
      uiNodes.find((n) => n.title === nodeName);
    if (!node || !defs[node.type]) return all;
    const { slots, values } = mapWidgetValues(defs[node.type], node.widgets_values, node.type);
    const i = slots.findIndex((s) => s.kind === 'value' && s.name === widget);
    if (i < 0) return all;
    const v = values[i];
    return typeof v === 'number' ? String(v) : String(v ?? '');
  });
}

/**
 * promptToWorkflow builds a UI workflow from an API prompt: one node per entry, links from
 * [id, slot] inputs, widget values in slot order, laid out in columns by depth. Node ids that
 * are not integers are renumbered (the original id is kept as the title suffix).
 */
export function promptToWorkflow(prompt, defs) {
  const keys = Object.keys(prompt);
  const idOf = new Map();
  let next = 1 + Math.max(0, ...keys.map((k) => (/^\d+$/.test(k) ? Number(k) : 0)));
  for (const k of keys) idOf.set(k, /^\d+$/.test(k) ? Number(k) : next++);
  const nodes = [];
  const links = [];
  let linkId = 0;
  const byId = new Map();
  for (const k of keys) {
    const p = prompt[k];
    const def = defs[p.class_type];
    const node = {
      id: idOf.get(k),
      type: p.class_type,
      pos: [0, 0],
      size: [300, 100],
      flags: {},
      order: 0,
      mode: 0,
      inputs: [],
      outputs: [],
      properties: { 'Node name for S&R': p.class_type },
    };
    const title = p._meta?.title;
    if (title && title !== (def?.display_name || p.class_type)) node.title = title;
    else if (!/^\d+$/.test(k)) node.title = `${def?.display_name || p.class_type} (${k})`;
    if (def) {
      const outs = Array.isArray(def.output) ? def.output : [];
      node.outputs = outs.map((t, i) => ({
        name: def.output_name?.[i] ?? (Array.isArray(t) ? 'COMBO' : t),
        type: Array.isArray(t) ? 'COMBO' : t,
        links: [],
      }));
      const slots = widgetSlots(def);
      node.widgets_values = slots.map((s) => {
        if (s.kind === 'control') return 'fixed';
        if (s.kind === 'filter') return '';
        if (s.kind === 'upload') return 'image';
        let v = p.inputs[s.name];
        if (v && typeof v === 'object' && !Array.isArray(v) && '__value__' in v) v = v.__value__;
        if (v === undefined || (Array.isArray(v) && v.length === 2 && typeof v[1] === 'number' && String(v[0]) in prompt))
          v = defaultValue(s.input);
        return v;
      });
      for (const inp of inputList(def)) {
        const v = p.inputs[inp.name];
        const isLink = Array.isArray(v) && v.length === 2 && typeof v[1] === 'number' && String(v[0]) in prompt;
        if (!inp.widget || isLink) {
          const e = { name: inp.name, type: inp.type, link: null };
          if (inp.widget) e.widget = { name: inp.name };
          node.inputs.push(e);
        }
      }
    } else {
      for (const [name, v] of Object.entries(p.inputs || {})) {
        if (Array.isArray(v) && v.length === 2 && typeof v[1] === 'number') node.inputs.push({ name, type: '*', link: null });
      }
    }
    nodes.push(node);
    byId.set(k, node);
  }
  for (const k of keys) {
    const target = byId.get(k);
    for (const [name, v] of Object.entries(prompt[k].inputs || {})) {
      if (!(Array.isArray(v) && v.length === 2 && typeof v[1] === 'number')) continue;
      const origin = byId.get(String(v[0]));
      const e = target.inputs.find((i) => i.name === name);
      if (!origin || !e) continue;
      while (origin.outputs.length <= v[1]) origin.outputs.push({ name: '*', type: '*', links: [] });
      const out = origin.outputs[v[1]];
      const id = ++linkId;
      out.links.push(id);
      e.link = id;
      const slot = target.inputs.indexOf(e);
      links.push([id, origin.id, v[1], target.id, slot, out.type || e.type]);
    }
  }
  layoutColumns(nodes, links);
  return {
    last_node_id: Math.max(0, ...nodes.map((n) => n.id)),
    last_link_id: linkId,
    nodes,
    links,
    groups: [],
    config: {},
    extra: {},
    version: 0.4,
  };
}

/** layoutColumns places nodes in columns by longest path from a source. */
export function layoutColumns(nodes, links) {
  const depth = new Map(nodes.map((n) => [n.id, 0]));
  const ins = new Map(nodes.map((n) => [n.id, []]));
  for (const l of links) ins.get(l[3])?.push(l[1]);
  const visiting = new Set();
  const d = (id) => {
    if (visiting.has(id)) return 0;
    if (depth.get(id) > 0) return depth.get(id);
    visiting.add(id);
    let best = 0;
    for (const o of ins.get(id) || []) best = Math.max(best, d(o) + 1);
    visiting.delete(id);
    depth.set(id, best);
    return best;
  };
  for (const n of nodes) d(n.id);
  const colY = new Map();
  for (const n of nodes) {
    const c = depth.get(n.id);
    const y = colY.get(c) || 0;
    const h = 60 + 26 * ((n.inputs?.length || 0) + (n.widgets_values?.length || 0));
    n.pos = [c * 380, y];
    n.size = [320, h];
    colY.set(c, y + h + 40);
  }
}
