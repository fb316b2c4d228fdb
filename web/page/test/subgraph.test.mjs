// A current-frontend style workflow: one subgraph instance with no boundary inputs whose inner
// widgets are exposed through properties.proxyWidgets, a bypassed inner node, groups inside the
// definition, and a root SaveImage fed by the subgraph output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { graphToPrompt } from '../src/convert.js';

const T = (t, o = {}) => [t, o];
const defs = {
  CLIPLoader: { input: { required: { clip_name: [['te.safetensors']], type: [['stable_diffusion', 'lumina2']] }, optional: { device: [['default', 'cpu']] } }, output: ['CLIP'] },
  VAELoader: { input: { required: { vae_name: [['vae.safetensors']] } }, output: ['VAE'] },
  UNETLoader: { input: { required: { unet_name: [['unet.safetensors']], weight_dtype: [['default', 'fp8_e4m3fn']] } }, output: ['MODEL'] },
  EmptySD3LatentImage: { input: { required: { width: T('INT', { default: 1024 }), height: T('INT', { default: 1024 }), batch_size: T('INT', { default: 1 }) } }, output: ['LATENT'] },
  CLIPTextEncode: { input: { required: { text: T('STRING', { multiline: true, dynamicPrompts: true }), clip: ['CLIP'] } }, output: ['CONDITIONING'] },
  ConditioningZeroOut: { input: { required: { conditioning: ['CONDITIONING'] } }, output: ['CONDITIONING'] },
  ModelSamplingAuraFlow: { input: { required: { model: ['MODEL'], shift: T('FLOAT', { default: 1.73 }) } }, output: ['MODEL'] },
  KSampler: {
    input: { required: { model: ['MODEL'], seed: T('INT', { control_after_generate: true }), steps: T('INT', { default: 20 }), cfg: T('FLOAT', { default: 8 }), sampler_name: [['euler', 'res_multistep']], scheduler: [['normal', 'simple']], positive: ['CONDITIONING'], negative: ['CONDITIONING'], latent_image: ['LATENT'], denoise: T('FLOAT', { default: 1 }) } },
    input_order: { required: ['model', 'seed', 'steps', 'cfg', 'sampler_name', 'scheduler', 'positive', 'negative', 'latent_image', 'denoise'] },
    output: ['LATENT'],
  },
  VAEDecode: { input: { required: { samples: ['LATENT'], vae: ['VAE'] } }, output: ['IMAGE'] },
  SaveImage: { input: { required: { images: ['IMAGE'], filename_prefix: T('STRING', { default: 'ComfyUI' }) } }, output: [], output_node: true },
};

const node = (id, type, ins, outs, widgets, mode = 0) => ({ id, type, mode, pos: [0, 0], size: [200, 60], flags: {}, inputs: ins.map(([name, type, link]) => ({ name, type, link })), outputs: outs.map(([name, type, links]) => ({ name, type, links })), properties: {}, widgets_values: widgets });
const link = (id, o, os, t, ts, type) => ({ id, origin_id: o, origin_slot: os, target_id: t, target_slot: ts, type });
const SG = 'ef10a538-0000-4000-8000-000000000001';
const wf = {
  version: 0.4,
  nodes: [
    { ...node(83, SG, [], [['IMAGE', 'IMAGE', [134]]], []), properties: { proxyWidgets: [['27', 'text'], ['13', 'height'], ['13', 'width'], ['3', 'seed'], ['3', 'control_after_generate']] } },
    node(84, 'MarkdownNote', [], [], ['notes']),
    node(60, 'SaveImage', [['images', 'IMAGE', 134]], [], ['z-image']),
  ],
  links: [[134, 83, 0, 60, 0, 'IMAGE']],
  definitions: {
    subgraphs: [{
      id: SG, version: 1, name: 'Text to Image', inputNode: { id: -10 }, outputNode: { id: -20 },
      inputs: [], outputs: [{ id: 'o', name: 'IMAGE', type: 'IMAGE', linkIds: [16] }], widgets: [],
      nodes: [
        node(30, 'CLIPLoader', [], [['CLIP', 'CLIP', [28]]], ['te.safetensors', 'lumina2', 'default']),
        node(29, 'VAELoader', [], [['VAE', 'VAE', [27]]], ['vae.safetensors']),
        node(13, 'EmptySD3LatentImage', [], [['LATENT', 'LATENT', [17]]], [1024, 1024, 1]),
        node(33, 'ConditioningZeroOut', [['conditioning', 'CONDITIONING', 32]], [['CONDITIONING', 'CONDITIONING', [33]]], []),
        node(8, 'VAEDecode', [['samples', 'LATENT', 14], ['vae', 'VAE', 27]], [['IMAGE', 'IMAGE', [16]]], []),
        node(3, 'KSampler', [['model', 'MODEL', 13], ['positive', 'CONDITIONING', 30], ['negative', 'CONDITIONING', 33], ['latent_image', 'LATENT', 17]], [['LATENT', 'LATENT', [14]]], [528562900154240, 'randomize', 4, 1, 'res_multistep', 'simple', 1]),
        node(27, 'CLIPTextEncode', [['clip', 'CLIP', 28]], [['CONDITIONING', 'CONDITIONING', [30, 32]]], ['a billboard']),
        node(28, 'UNETLoader', [], [['MODEL', 'MODEL', [26]]], ['unet.safetensors', 'default']),
        node(11, 'ModelSamplingAuraFlow', [['model', 'MODEL', 26]], [['MODEL', 'MODEL', [13]]], [3], 4),
      ],
      groups: [{ id: 2, title: 'Step 2', bounding: [100, 560, 290, 200] }],
      links: [
        link(32, 27, 0, 33, 0, 'CONDITIONING'), link(26, 28, 0, 11, 0, 'MODEL'), link(14, 3, 0, 8, 0, 'LATENT'), link(27, 29, 0, 8, 1, 'VAE'),
        link(13, 11, 0, 3, 0, 'MODEL'), link(30, 27, 0, 3, 1, 'CONDITIONING'), link(33, 33, 0, 3, 2, 'CONDITIONING'), link(17, 13, 0, 3, 3, 'LATENT'),
        link(28, 30, 0, 27, 0, 'CLIP'), link(16, 8, 0, -20, 0, 'IMAGE'),
      ],
    }],
  },
};

test('subgraph with proxyWidgets and a bypassed inner node', () => {
  const { output } = graphToPrompt(wf, defs);
  assert.deepEqual(Object.keys(output).sort(), ['60', '83:13', '83:27', '83:28', '83:29', '83:3', '83:30', '83:33', '83:8']);
  assert.deepEqual(output['83:3'].inputs, {
    seed: 528562900154240, steps: 4, cfg: 1, sampler_name: 'res_multistep', scheduler: 'simple', denoise: 1,
    model: ['83:28', 0], positive: ['83:27', 0], negative: ['83:33', 0], latent_image: ['83:13', 0],
  });
  assert.deepEqual(output['60'].inputs, { filename_prefix: 'z-image', images: ['83:8', 0] });
  assert.deepEqual(output['83:30'].inputs, { clip_name: 'te.safetensors', type: 'lumina2', device: 'default' });
});
export { wf, defs };
