// Node definitions from /object_info: which inputs are widgets, which are sockets, and how a
// node's widgets_values map onto them (workflow-format.md section 6).

export const WIDGET_TYPES = new Set(['INT', 'FLOAT', 'STRING', 'BOOLEAN', 'COMBO']);
export const CONTROL_MODES = ['fixed', 'increment', 'decrement', 'randomize'];
export const VIRTUAL_TYPES = new Set(['Reroute', 'PrimitiveNode', 'Note', 'MarkdownNote']);

/** inputList returns a definition's inputs in declared order: [{name, section, type, opts, options}]. */
export function inputList(def) {
  const out = [];
  if (!def || !def.input) return out;
  for (const section of ['required', 'optional']) {
    const specs = def.input[section];
    if (!specs) continue;
    const order = def.input_order?.[section] ?? Object.keys(specs);
    for (const name of order) {
      const spec = specs[name];
      if (!spec) continue;
      out.push(describeInput(name, section, spec));
    }
  }
  return out;
}

function describeInput(name, section, spec) {
  const s = Array.isArray(spec) ? spec : [spec];
  let type = s[0];
  const opts = (s[1] && typeof s[1] === 'object' ? s[1] : {}) || {};
  let options = null;
  if (Array.isArray(type)) {
    options = type;
    type = 'COMBO';
  } else if (type === 'COMBO') {
    options = Array.isArray(opts.options) ? opts.options : [];
  }
  const widget = WIDGET_TYPES.has(type) && !opts.forceInput;
  return { name, section, type: String(type), opts, options, widget, forceInput: !!opts.forceInput };
}

/** hasControl reports whether a widget input gets a control_after_generate widget. */
export function hasControl(inp) {
  if (inp.type === 'INT') {
    if (inp.opts.control_after_generate !== undefined) return !!inp.opts.control_after_generate;
    return inp.name === 'seed' || inp.name === 'noise_seed';
  }
  return !!inp.opts.control_after_generate;
}

function hasUpload(inputs) {
  return inputs.some(
    (i) =>
      i.section === 'required' &&
      i.type === 'COMBO' &&
      (i.opts.image_upload || i.opts.video_upload || i.opts.animated_image_upload),
  );
}

/**
 * widgetSlots lists the entries of widgets_values for a definition:
 * [{name, kind: 'value'|'control'|'filter'|'upload', input}] (section 6.3).
 */
export function widgetSlots(def) {
  const inputs = inputList(def);
  const upload = hasUpload(inputs);
  const slots = [];
  let lastRequired = -1;
  inputs.forEach((inp, i) => {
    if (inp.section === 'required') lastRequired = i;
  });
  inputs.forEach((inp, i) => {
    if (inp.widget) {
      slots.push({ name: inp.name, kind: 'value', input: inp });
      if (hasControl(inp)) {
        slots.push({ name: inp.name, kind: 'control', input: inp });
        if (inp.type === 'COMBO') slots.push({ name: inp.name, kind: 'filter', input: inp });
      }
    }
    if (i === lastRequired && upload) slots.push({ name: 'upload', kind: 'upload', input: null });
  });
  if (lastRequired < 0 && upload) slots.push({ name: 'upload', kind: 'upload', input: null });
  return slots;
}

/** defaultValue is the value a widget takes when a workflow has none for it (section 6.6). */
export function defaultValue(inp) {
  if (inp.opts.default !== undefined) return inp.opts.default;
  switch (inp.type) {
    case 'COMBO':
      return inp.options && inp.options.length ? inp.options[0] : '';
    case 'INT':
    case 'FLOAT':
      return inp.opts.min !== undefined && inp.opts.min > 0 ? inp.opts.min : 0;
    case 'STRING':
      return '';
    case 'BOOLEAN':
      return false;
  }
  return null;
}

function defaultControl(inp) {
  const c = inp.opts.control_after_generate;
  return typeof c === 'string' && CONTROL_MODES.includes(c) ? c : 'randomize';
}

/**
 * mapWidgetValues aligns a node's saved widgets_values (array or object) with the slots of its
 * definition and returns {values: [...one per slot], fixes: [notes]}, applying the frontend's
 * load-time fixups (forceInput migration, boolean control values, sample_ prefix, null combos).
 */
export function mapWidgetValues(def, saved, classType) {
  const slots = widgetSlots(def);
  let vals = saved;
  if (vals && !Array.isArray(vals) && typeof vals === 'object') {
    const byName = vals;
    vals = slots.map((s) => (s.kind === 'value' && s.name in byName ? byName[s.name] : undefined));
  }
  vals = Array.isArray(vals) ? vals.slice() : [];
  // Legacy forceInput dummy values (section 6.4).
  const inputs = inputList(def);
  if (inputs.some((i) => i.forceInput && WIDGET_TYPES.has(i.type))) {
    const legacy = [];
    for (const inp of inputs) {
      if (inp.widget || (inp.forceInput && WIDGET_TYPES.has(inp.type))) {
        legacy.push(inp.forceInput ? 'force' : 'w');
        if (hasControl(inp)) legacy.push('w');
      }
    }
    if (legacy.length === vals.length && legacy.length !== slots.length) {
      vals = vals.filter((_, i) => legacy[i] !== 'force');
    }
  }
  // A seed saved without a control value (custom nodes with control_after_generate: false, or
  // a definition that changed): detect by the value after it being a plain number.
  const values = [];
  let k = 0;
  for (const s of slots) {
    let v = k < vals.length ? vals[k] : undefined;
    if (s.kind === 'control') {
      if (typeof v === 'boolean') v = v ? 'randomize' : 'fixed';
      if (typeof v !== 'string') {
        if (typeof v === 'number' && vals.length < slots.length) {
          values.push(defaultControl(s.input));
          continue; // value belongs to the next slot
        }
        v = defaultControl(s.input);
      }
    } else if (s.kind === 'filter') {
      if (typeof v !== 'string') v = '';
    } else if (s.kind === 'upload') {
      v = 'image';
    } else if (v === undefined) {
      v = defaultValue(s.input);
    } else if (v === null && s.input.type === 'COMBO') {
      v = defaultValue(s.input);
    } else if (
      s.name === 'sampler_name' &&
      (classType === 'KSampler' || classType === 'KSamplerAdvanced') &&
      typeof v === 'string' &&
      v.startsWith('sample_')
    ) {
      v = v.slice('sample_'.length);
    }
    values.push(v);
    k++;
  }
  return { slots, values };
}

/** Model folders keyed by the combo input names ComfyUI's loaders use. */
const MODEL_INPUTS = {
  ckpt_name: 'checkpoints',
  lora_name: 'loras',
  vae_name: 'vae',
  clip_name: 'text_encoders',
  clip_name1: 'text_encoders',
  clip_name2: 'text_encoders',
  clip_name3: 'text_encoders',
  clip_name4: 'text_encoders',
  unet_name: 'diffusion_models',
  control_net_name: 'controlnet',
  model_name: 'upscale_models',
  style_model_name: 'style_models',
  gligen_name: 'gligen',
  config_name: 'configs',
  embedding: 'embeddings',
};

const MODEL_EXT = /\.(safetensors|ckpt|pt|pt2|pth|bin|sft|gguf|onnx)$/i;

/**
 * modelFolder guesses the model folder of a combo input from its name and value; null when the
 * combo does not hold a model file.
 */
export function modelFolder(inputName, value, classType = '') {
  if (MODEL_INPUTS[inputName]) {
    if (inputName === 'model_name' && !/upscale/i.test(classType)) return null;
    return MODEL_INPUTS[inputName];
  }
  if (typeof value === 'string' && MODEL_EXT.test(value)) return 'checkpoints';
  return null;
}
