import { test } from 'node:test';
import assert from 'node:assert/strict';
import { graphToPrompt, promptToWorkflow, processDynamicPrompt, typesCompatible, formatDate } from '../src/convert.js';
import { mapWidgetValues, widgetSlots } from '../src/nodedefs.js';

const defs = {
  CheckpointLoaderSimple: {
    input: { required: { ckpt_name: [['a.safetensors', 'b.safetensors'], {}] } },
    output: ['MODEL', 'CLIP', 'VAE'], output_name: ['MODEL', 'CLIP', 'VAE'], name: 'CheckpointLoaderSimple', display_name: 'Load Checkpoint',
  },
  LoraLoader: {
    input: { required: { model: ['MODEL'], clip: ['CLIP'], lora_name: [['l.safetensors']], strength_model: ['FLOAT', { default: 1 }], strength_clip: ['FLOAT', { default: 1 }] } },
    output: ['MODEL', 'CLIP'], name: 'LoraLoader',
  },
  KSampler: {
    input: {
      required: {
        model: ['MODEL'], seed: ['INT', { default: 0, min: 0, max: 2 ** 64 - 1, control_after_generate: true }], steps: ['INT', { default: 20, min: 1 }],
        cfg: ['FLOAT', { default: 8 }], sampler_name: [['euler', 'lcm']], scheduler: [['normal', 'sgm_uniform']], denoise: ['FLOAT', { default: 1 }],
      },
    },
    input_order: { required: ['model', 'seed', 'steps', 'cfg', 'sampler_name', 'scheduler', 'denoise'] },
    output: ['LATENT'], name: 'KSampler',
  },
  SaveImage: { input: { required: { images: ['IMAGE'], filename_prefix: ['STRING', { default: 'ComfyUI' }] } }, output: [], output_node: true, name: 'SaveImage' },
  VAEDecode: { input: { required: { samples: ['LATENT'], vae: ['VAE'] } }, output: ['IMAGE'], name: 'VAEDecode' },
  CLIPTextEncode: { input: { required: { text: ['STRING', { multiline: true, dynamicPrompts: true }], clip: ['CLIP'] } }, output: ['CONDITIONING'], name: 'CLIPTextEncode' },
  LoadImage: { input: { required: { image: [['x.png'], { image_upload: true }] } }, output: ['IMAGE', 'MASK'], name: 'LoadImage' },
};

test('widget slots and values (control, upload, legacy booleans, sample_ prefix)', () => {
  assert.deepEqual(widgetSlots(defs.KSampler).map((s) => s.kind), ['value', 'control', 'value', 'value', 'value', 'value', 'value']);
  assert.deepEqual(widgetSlots(defs.LoadImage).map((s) => s.kind), ['value', 'upload']);
  const r = mapWidgetValues(defs.KSampler, [823155751257884, true, 13, 8.5, 'sample_euler', 'normal', 1], 'KSampler');
  assert.deepEqual(r.values, [823155751257884, 'randomize', 13, 8.5, 'euler', 'normal', 1]);
  const short = mapWidgetValues(defs.KSampler, [5, 'fixed', 3], 'KSampler');
  assert.deepEqual(short.values, [5, 'fixed', 3, 8, 'euler', 'normal', 1]);
});

// 4 ckpt → 20 LoraLoader (bypassed) → 21 Reroute → 3 KSampler ← 30 Primitive(seed); 8 VAEDecode → 9 SaveImage (muted)
const wf = {
  version: 0.4,
  nodes: [
    { id: 4, type: 'CheckpointLoaderSimple', mode: 0, outputs: [{ name: 'MODEL', type: 'MODEL', links: [1] }, { name: 'CLIP', type: 'CLIP', links: [2] }, { name: 'VAE', type: 'VAE', links: [8] }], widgets_values: ['a.safetensors'] },
    { id: 20, type: 'LoraLoader', mode: 4, inputs: [{ name: 'model', type: 'MODEL', link: 1 }, { name: 'clip', type: 'CLIP', link: 2 }], outputs: [{ name: 'MODEL', type: 'MODEL', links: [3] }], widgets_values: ['l.safetensors', 1, 1] },
    { id: 21, type: 'Reroute', mode: 0, inputs: [{ name: '', type: '*', link: 3 }], outputs: [{ name: '', type: 'MODEL', links: [4] }] },
    { id: 3, type: 'KSampler', mode: 0, inputs: [{ name: 'model', type: 'MODEL', link: 4 }, { name: 'seed', type: 'INT', link: 5, widget: { name: 'seed' } }], outputs: [{ name: 'LATENT', type: 'LATENT', links: [6] }], widgets_values: [1, 'randomize', 4, 1.5, 'lcm', 'sgm_uniform', 1] },
    { id: 30, type: 'PrimitiveNode', mode: 0, outputs: [{ name: 'INT', type: 'INT', links: [5], widget: { name: 'seed' } }], widgets_values: [1234, 'fixed'] },
    { id: 8, type: 'VAEDecode', mode: 0, inputs: [{ name: 'samples', type: 'LATENT', link: 6 }, { name: 'vae', type: 'VAE', link: 8 }], outputs: [{ name: 'IMAGE', type: 'IMAGE', links: [7] }] },
    { id: 9, type: 'SaveImage', mode: 2, inputs: [{ name: 'images', type: 'IMAGE', link: 7 }], widgets_values: ['x'] },
    { id: 10, type: 'Note', mode: 0, widgets_values: ['hello'] },
  ],
  links: [[1, 4, 0, 20, 0, 'MODEL'], [2, 4, 1, 20, 1, 'CLIP'], [3, 20, 0, 21, 0, 'MODEL'], [4, 21, 0, 3, 0, 'MODEL'], [5, 30, 0, 3, 1, 'INT'], [6, 3, 0, 8, 0, 'LATENT'], [7, 8, 0, 9, 0, 'IMAGE'], [8, 4, 2, 8, 1, 'VAE']],
};

test('graphToPrompt: bypass + reroute + primitive + mute + note', () => {
  const { output } = graphToPrompt(wf, defs);
  assert.deepEqual(Object.keys(output).sort(), ['3', '4', '8']);
  assert.deepEqual(output['3'].inputs, { seed: 1234, steps: 4, cfg: 1.5, sampler_name: 'lcm', scheduler: 'sgm_uniform', denoise: 1, model: ['4', 0] });
  assert.deepEqual(output['8'].inputs, { samples: ['3', 0], vae: ['4', 2] });
  assert.equal(output['4']._meta.title, 'Load Checkpoint');
});

test('graphToPrompt drops links from muted sources and wraps arrays', () => {
  const w = structuredClone(wf);
  w.nodes.find((n) => n.id === 4).mode = 2;
  const { output } = graphToPrompt(w, defs);
  assert.equal(output['3'].inputs.model, undefined);
  assert.equal(output['8'].inputs.vae, undefined);
});

test('dynamic prompts and filename tokens', () => {
  let i = 0;
  const seq = [0.9, 0.1];
  const rnd = () => seq[i++ % seq.length];
  assert.equal(processDynamicPrompt('a {cat|dog} /* c */ // x\nb', rnd), 'a dog  \nb');
  assert.equal(processDynamicPrompt('{x|{y|z}}', () => 0.99), 'z');
  assert.equal(processDynamicPrompt('{x|{y|z}}', () => 0), 'x');
  assert.equal(processDynamicPrompt('\\{a\\}', rnd), '\\{a\\}');
  assert.equal(processDynamicPrompt('{only', rnd), '{only');
  assert.equal(formatDate('yyyy-MM-dd', new Date(2026, 0, 5)), '2026-01-05');
  assert.ok(typesCompatible('INT,FLOAT', 'float'));
  assert.ok(!typesCompatible('MODEL', 'CLIP'));
  const w = { version: 0.4, nodes: [{ id: 1, type: 'CLIPTextEncode', mode: 0, inputs: [{ name: 'clip', type: 'CLIP', link: null }], widgets_values: ['{a|b}'] }, { id: 2, type: 'SaveImage', mode: 0, widgets_values: ['%date:yyyy%/x'] }], links: [] };
  const { output, workflow } = graphToPrompt(w, defs, { random: () => 0 });
  assert.equal(output['1'].inputs.text, 'a');
  assert.equal(workflow.nodes[0].widgets_values[0], 'a');
  assert.equal(output['2'].inputs.filename_prefix, `${new Date().getFullYear()}/x`);
  assert.equal(w.nodes[0].widgets_values[0], '{a|b}', 'input workflow untouched');
});

test('promptToWorkflow round trip', () => {
  const { output } = graphToPrompt(wf, defs);
  const back = promptToWorkflow(output, defs);
  assert.equal(back.nodes.length, 3);
  const again = graphToPrompt(back, defs).output;
  for (const k of Object.keys(output)) assert.deepEqual(again[k].inputs, output[k].inputs, k);
  const named = promptToWorkflow({ save_ws: { class_type: 'VAEDecode', inputs: {} } }, defs);
  assert.equal(typeof named.nodes[0].id, 'number');
});

test('graphToPrompt flattens subgraphs (boundary links, promoted widget values, nested ids)', () => {
  const S = {
    id: 'e5fb1765-0001-4548-801a-5aead34d879e', version: 1, name: 'Sampler',
    inputNode: { id: -10 }, outputNode: { id: -20 },
    inputs: [{ id: 'a', name: 'model', type: 'MODEL', linkIds: [1] }, { id: 'b', name: 'seed', type: 'INT', linkIds: [2] }],
    outputs: [{ id: 'c', name: 'LATENT', type: 'LATENT', linkIds: [3] }],
    nodes: [{ id: 1, type: 'KSampler', mode: 0, inputs: [{ name: 'model', type: 'MODEL', link: 1 }, { name: 'seed', type: 'INT', widget: { name: 'seed' }, link: 2 }], widgets_values: [0, 'randomize', 4, 1.5, 'lcm', 'sgm_uniform', 1] }],
    links: [
      { id: 1, origin_id: -10, origin_slot: 0, target_id: 1, target_slot: 0, type: 'MODEL' },
      { id: 2, origin_id: -10, origin_slot: 1, target_id: 1, target_slot: 1, type: 'INT' },
      { id: 3, origin_id: 1, origin_slot: 0, target_id: -20, target_slot: 0, type: 'LATENT' },
    ],
  };
  const w = {
    version: 0.4,
    definitions: { subgraphs: [S] },
    nodes: [
      { id: 4, type: 'CheckpointLoaderSimple', mode: 0, outputs: [{ name: 'MODEL', type: 'MODEL', links: [1, 5] }, { name: 'CLIP', type: 'CLIP', links: [] }, { name: 'VAE', type: 'VAE', links: [3] }], widgets_values: ['a.safetensors'] },
      { id: 12, type: S.id, mode: 0, inputs: [{ name: 'model', type: 'MODEL', link: 1 }, { name: 'seed', type: 'INT', widget: { name: 'seed' }, link: null }], outputs: [{ name: 'LATENT', type: 'LATENT', links: [2] }], widgets_values: [777] },
      { id: 13, type: S.id, mode: 0, inputs: [{ name: 'model', type: 'MODEL', link: 5 }], outputs: [{ name: 'LATENT', type: 'LATENT', links: [] }], widgets_values: [] },
      { id: 8, type: 'VAEDecode', mode: 0, inputs: [{ name: 'samples', type: 'LATENT', link: 2 }, { name: 'vae', type: 'VAE', link: 3 }], outputs: [{ name: 'IMAGE', type: 'IMAGE', links: [4] }] },
      { id: 9, type: 'SaveImage', mode: 0, inputs: [{ name: 'images', type: 'IMAGE', link: 4 }], widgets_values: ['x'] },
    ],
    links: [[1, 4, 0, 12, 0, 'MODEL'], [2, 12, 0, 8, 0, 'LATENT'], [3, 4, 2, 8, 1, 'VAE'], [4, 8, 0, 9, 0, 'IMAGE'], [5, 4, 0, 13, 0, 'MODEL']],
  };
  const { output } = graphToPrompt(w, defs);
  assert.deepEqual(Object.keys(output).sort(), ['12:1', '13:1', '4', '8', '9']);
  assert.equal(output['12:1'].class_type, 'KSampler');
  assert.equal(output['12:1'].inputs.seed, 777);
  assert.deepEqual(output['12:1'].inputs.model, ['4', 0]);
  assert.equal(output['13:1'].inputs.seed, 0, 'falls back to the inner widget value');
  assert.deepEqual(output['8'].inputs.samples, ['12:1', 0]);
  // a bypassed instance passes its matching input through
  const b = structuredClone(w);
  b.nodes[1].mode = 4;
  b.nodes[1].inputs.push({ name: 'latent', type: 'LATENT', link: null });
  assert.equal(graphToPrompt(b, defs).output['12:1'], undefined);
  assert.throws(() => graphToPrompt({ version: 0.4, nodes: [{ id: 1, type: 'workflow>G', mode: 0 }], links: [] }, defs), /legacy group node/);
});
