// Fuzz-style robustness: the readers and the converter take user files; random and mutated input
// must give a result or an {error}, never an exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readWorkflowBytes, parseJSON } from '../src/metadata.js';
import { graphToPrompt, promptToWorkflow } from '../src/convert.js';

function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

const seeds = [
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x74, 0x45, 0x58, 0x74, 0x77, 0x6f, 0x72, 0x6b, 0x66, 0x6c, 0x6f, 0x77, 0, 0x7b, 0x7d]),
  Buffer.from('RIFF\x30\x00\x00\x00WEBPEXIF\x20\x00\x00\x00Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x10\x00\x02\x00\x00\x00\x05\x00\x00\x00\x1a', 'latin1'),
  Buffer.from('{"nodes":[{"id":1,"type":"X","inputs":[{"name":"a","link":1}]}],"links":[[1,2,0,1,0,"*"]],"version":0.4}'),
  Buffer.from('{"1":{"class_type":"A","inputs":{"x":["2",0]}},"2":{"class_type":"B","inputs":{}}}'),
];

test('random and mutated files never throw', async () => {
  const r = rng(7);
  for (let i = 0; i < 3000; i++) {
    const base = seeds[i % seeds.length];
    const b = Buffer.from(base);
    const flips = 1 + Math.floor(r() * 6);
    for (let k = 0; k < flips; k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
    const cut = r() < 0.3 ? b.subarray(0, Math.floor(r() * b.length)) : b;
    const name = ['a.png', 'a.webp', 'a.json', 'a.latent', ''][i % 5];
    const res = await readWorkflowBytes(new Uint8Array(cut), name);
    assert.ok(res && (res.error || res.kind), `iteration ${i}`);
    if (res.kind === 'workflow') {
      try {
        graphToPrompt(res.data, {});
      } catch (e) {
        assert.ok(e instanceof Error && e.message, 'converter errors are Errors with a message');
      }
    } else if (res.kind === 'prompt') promptToWorkflow(res.data, {});
  }
  for (let i = 0; i < 500; i++) {
    const s = Array.from({ length: 30 }, () => '{}[]",:NaInfty-0123 \\u'[Math.floor(r() * 22)]).join('');
    parseJSON(s);
  }
});

test('converter refuses cycles instead of recursing forever', () => {
  const wf = {
    version: 0.4,
    nodes: [
      { id: 1, type: 'Reroute', mode: 0, inputs: [{ name: '', type: '*', link: 2 }], outputs: [{ name: '', type: '*', links: [1] }] },
      { id: 2, type: 'Reroute', mode: 0, inputs: [{ name: '', type: '*', link: 1 }], outputs: [{ name: '', type: '*', links: [2, 3] }] },
      { id: 3, type: 'SaveImage', mode: 0, inputs: [{ name: 'images', type: 'IMAGE', link: 3 }], widgets_values: ['x'] },
    ],
    links: [[1, 1, 0, 2, 0, '*'], [2, 2, 0, 1, 0, '*'], [3, 2, 0, 3, 0, 'IMAGE']],
  };
  assert.throws(() => graphToPrompt(wf, {}), /circular/);
});
