import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { pngText, webpExif, readWorkflowBytes, parseJSON, classifyJSON, isApiPrompt } from '../src/metadata.js';

function chunk(type, data) {
  const b = Buffer.alloc(12 + data.length);
  b.writeUInt32BE(data.length, 0);
  b.write(type, 4, 'latin1');
  Buffer.from(data).copy(b, 8);
  return b; // CRC left zero: readers must not check it
}
const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const kv = (k, v) => Buffer.concat([Buffer.from(k, 'latin1'), Buffer.from([0]), Buffer.from(v)]);

test('png tEXt, later chunk wins; iTXt and zTXt read', async () => {
  const itxt = Buffer.concat([Buffer.from('prompt\0', 'latin1'), Buffer.from([1, 0]), Buffer.from('en\0\0'), deflateSync(Buffer.from('{"1":{"class_type":"X","inputs":{}}}'))]);
  const png = Buffer.concat([
    sig,
    chunk('IHDR', Buffer.alloc(13)),
    chunk('tEXt', kv('workflow', '{"nodes":[],"links":[],"version":0.4,"v":1}')),
    chunk('tEXt', kv('workflow', '{"nodes":[],"links":[],"version":0.4,"v":2}')),
    chunk('iTXt', itxt),
    chunk('zTXt', Buffer.concat([Buffer.from('extra\0', 'latin1'), Buffer.from([0]), deflateSync(Buffer.from('zz'))])),
    chunk('IEND', Buffer.alloc(0)),
  ]);
  const t = await pngText(new Uint8Array(png));
  assert.equal(JSON.parse(t.workflow).v, 2);
  assert.equal(t.extra, 'zz');
  assert.equal(JSON.parse(t.prompt)['1'].class_type, 'X');
  const r = await readWorkflowBytes(new Uint8Array(png), 'a.png');
  assert.equal(r.kind, 'workflow');
  assert.equal(r.data.v, 2);
});

test('png with only a prompt loads as API prompt; truncated png does not throw', async () => {
  const png = Buffer.concat([sig, chunk('tEXt', kv('prompt', '{"3":{"class_type":"SaveImage","inputs":{}}}'))]);
  const r = await readWorkflowBytes(new Uint8Array(png), 'x.png');
  assert.equal(r.kind, 'prompt');
  const cut = new Uint8Array(png.subarray(0, png.length - 5));
  const r2 = await readWorkflowBytes(cut, 'x.png');
  assert.ok(r2.error);
});

function webp(order) {
  const le = order === 'II';
  const entries = [
    [0x0110, 'prompt:{"5":{"class_type":"A","inputs":{}}}'],
    [0x010f, 'workflow:{"nodes":[{"id":1}],"links":[],"version":0.4}'],
  ];
  const hdr = Buffer.alloc(8);
  hdr.write(order, 0, 'latin1');
  le ? hdr.writeUInt16LE(42, 2) : hdr.writeUInt16BE(42, 2);
  le ? hdr.writeUInt32LE(8, 4) : hdr.writeUInt32BE(8, 4);
  const ifd = Buffer.alloc(2 + entries.length * 12 + 4);
  le ? ifd.writeUInt16LE(entries.length, 0) : ifd.writeUInt16BE(entries.length, 0);
  let dataOff = 8 + ifd.length;
  const datas = [];
  entries.forEach(([tag, s], i) => {
    const d = Buffer.from(s + '\0', 'latin1');
    const e = 2 + i * 12;
    const w16 = (v, o) => (le ? ifd.writeUInt16LE(v, o) : ifd.writeUInt16BE(v, o));
    const w32 = (v, o) => (le ? ifd.writeUInt32LE(v, o) : ifd.writeUInt32BE(v, o));
    w16(tag, e);
    w16(2, e + 2);
    w32(d.length, e + 4);
    w32(dataOff, e + 8);
    dataOff += d.length;
    datas.push(d);
  });
  const exif = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), hdr, ifd, ...datas]);
  const pad = exif.length & 1 ? Buffer.alloc(1) : Buffer.alloc(0);
  const ch = Buffer.alloc(8);
  ch.write('EXIF', 0, 'latin1');
  ch.writeUInt32LE(exif.length, 4);
  const vp8 = Buffer.concat([Buffer.from('VP8 ', 'latin1'), Buffer.from([2, 0, 0, 0, 0, 0])]);
  const body = Buffer.concat([Buffer.from('WEBP', 'latin1'), vp8, ch, exif, pad]);
  const riff = Buffer.alloc(8);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(body.length, 4);
  return new Uint8Array(Buffer.concat([riff, body]));
}

test('webp EXIF, both byte orders', async () => {
  for (const order of ['MM', 'II']) {
    const m = webpExif(webp(order));
    assert.ok(m.workflow.startsWith('{'), order);
    const r = await readWorkflowBytes(webp(order), 'a.webp');
    assert.equal(r.kind, 'workflow');
    assert.equal(r.data.nodes[0].id, 1);
  }
});

test('JSON detection', async () => {
  assert.equal(parseJSON('{"a": NaN, "b": "NaN", "c": -Infinity}').a, null);
  assert.equal(parseJSON('{"a": NaN, "b": "NaN"}').b, 'NaN');
  assert.equal(classifyJSON({ 1: { class_type: 'A', inputs: {} } }).kind, 'prompt');
  assert.ok(classifyJSON({ 1: { class_type: 'A', inputs: [] } }).error);
  assert.equal(classifyJSON({ nodes: [], links: [], version: 0.4 }).kind, 'workflow');
  assert.equal(classifyJSON({ prompt: { 1: { class_type: 'A', inputs: {} } } }).kind, 'prompt');
  assert.ok(classifyJSON([1, 2]).error);
  assert.ok(!isApiPrompt({}));
  const r = await readWorkflowBytes(new TextEncoder().encode('\uFEFF{"nodes":[],"links":[],"version":0.4}'), 'w.json');
  assert.equal(r.kind, 'workflow');
  assert.ok((await readWorkflowBytes(new Uint8Array([1, 2, 3]), 'x.bin')).error);
});
