// End-to-end test of comfygo's page in real headless Chromium (Debian's `chromium`, driven by
// playwright-core; no browser download). It builds and starts the comfygo binary with the test
// node pack, drops workflows on the page, edits a widget, queues with the keyboard and the
// button, waits for the progress bar to reach 100 %, checks the image, shows validation errors on
// the right node, lists missing nodes/models, and measures a 300-node workflow.
//
//   cd web/page && npm ci && npm run build && node e2e/e2e.mjs
//
// Env: CHROMIUM (default /usr/bin/chromium), COMFYGO_BIN (use this binary instead of building),
// COMFYGO_URL (test an already running server; nothing is started), SCREENSHOTS (default
// <repo>/screenshots).

import { chromium } from 'playwright-core';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync, writeFileSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { widgetSlots, defaultValue, inputList } from '../src/nodedefs.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../../..');
const shots = process.env.SCREENSHOTS || join(repo, 'screenshots');
mkdirSync(shots, { recursive: true });
for (const f of readdirSync(shots)) if (/^fail-\d+\.png$/.test(f)) rmSync(join(shots, f)); // from an earlier run
const tmp = mkdtempSync(join(tmpdir(), 'comfygo-e2e-'));
const cleanups = [];
const results = [];
let step = '';

function log(...a) {
  console.log('e2e:', ...a);
}

async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
    s.on('error', rej);
  });
}

async function waitHTTP(url, ms, proc) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (proc && proc.exitCode !== null) throw new Error(`comfygo exited with code ${proc.exitCode}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${url} did not answer within ${ms} ms`);
}

let binPath = '';

async function startServer() {
  if (process.env.COMFYGO_URL) return process.env.COMFYGO_URL.replace(/\/$/, '');
  let bin = process.env.COMFYGO_BIN;
  if (!bin && !existsSync(join(here, '..', 'dist', 'app.js'))) {
    throw new Error('web/page/dist is not built: run `npm run build` (or `npm test`) first, so that go build embeds the page');
  }
  if (!bin) {
    bin = join(tmp, 'comfygo');
    log('go build ./cmd/comfygo');
    execFileSync('go', ['build', '-o', bin, './cmd/comfygo'], { cwd: repo, stdio: 'inherit' });
  }
  binPath = bin;
  const port = await freePort();
  const d = (n) => join(tmp, n);
  const args = ['serve', '--listen', '127.0.0.1', '--port', String(port), '--enable-test-nodes', '--preview-method', 'auto',
    '--models-dir', d('models'), '--input-dir', d('input'), '--output-dir', d('output'), '--temp-dir', d('temp'), '--user-dir', d('user')];
  log(bin, args.join(' '));
  try {
    execFileSync(bin, ['gen-tiny', '--models-dir', d('models')], { cwd: tmp, stdio: 'pipe' });
  } catch (e) {
    log('gen-tiny failed (the tiny-model check will be skipped):', String(e.stderr || e).slice(0, 300));
  }
  // the server runs in a temp dir: point it at the repository's ONNX Runtime and CLIP vocabulary
  // (scripts/setup.sh) unless the environment already does
  const env = { ...process.env };
  const ort = join(repo, 'third_party/onnxruntime/libonnxruntime.so.1');
  const vocab = join(repo, 'third_party/clip/bpe_simple_vocab_16e6.js');
  if (!env.ONNXRUNTIME_LIB && existsSync(ort)) env.ONNXRUNTIME_LIB = ort;
  if (!env.COMFYGO_CLIP_VOCAB && existsSync(vocab)) env.COMFYGO_CLIP_VOCAB = vocab;
  const proc = spawn(bin, args, { cwd: tmp, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (b) => (out += b));
  proc.stderr.on('data', (b) => (out += b));
  const stop = () => {
    if (proc.exitCode === null) proc.kill('SIGTERM');
  };
  cleanups.push(stop);
  // a test run killed from outside (timeout, Ctrl+C) must not leave the server behind
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      stop();
      rmSync(tmp, { recursive: true, force: true });
      process.exit(130);
    });
  }
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHTTP(url + '/object_info', 30000, proc);
  } catch (e) {
    console.error(out);
    throw e;
  }
  process.on('exit', () => {
    if (process.exitCode) console.error('--- comfygo log ---\n' + out.slice(-4000));
  });
  return url;
}

// ---------- building workflows and files ----------

let nextId = 1;
let nextLink = 1;

/** uiNode makes a UI-workflow node for class type from its /object_info definition. */
function uiNode(defs, type, pos, values = {}) {
  const def = defs[type];
  assert.ok(def, `the server has no node type ${type}`);
  const slots = widgetSlots(def);
  const n = {
    id: nextId++,
    type,
    pos,
    size: [300, 120],
    flags: {},
    order: 0,
    mode: 0,
    inputs: [],
    outputs: (def.output || []).map((t, i) => ({ name: def.output_name?.[i] ?? t, type: t, links: [] })),
    properties: { 'Node name for S&R': type },
    widgets_values: slots.map((s) => {
      if (s.kind === 'control') return 'fixed';
      if (s.kind === 'filter') return '';
      if (s.kind === 'upload') return 'image';
      return s.name in values ? values[s.name] : defaultValue(s.input);
    }),
  };
  for (const inp of inputList(def)) if (!inp.widget) n.inputs.push({ name: inp.name, type: inp.type, link: null });
  return n;
}

function connect(wf, from, slot, to, inputName, widget = false) {
  const id = nextLink++;
  let e = to.inputs.find((i) => i.name === inputName);
  if (!e) {
    e = { name: inputName, type: from.outputs[slot].type, link: null };
    if (widget) e.widget = { name: inputName };
    to.inputs.push(e);
  }
  e.link = id;
  from.outputs[slot].links.push(id);
  wf.links.push([id, from.id, slot, to.id, to.inputs.indexOf(e), from.outputs[slot].type]);
}

function workflow(nodes) {
  return { last_node_id: 0, last_link_id: 0, nodes, links: [], groups: [], config: {}, extra: {}, version: 0.4 };
}

function finish(wf) {
  wf.last_node_id = Math.max(...wf.nodes.map((n) => n.id));
  wf.last_link_id = Math.max(0, ...wf.links.map((l) => l[0]));
  return wf;
}

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** pngWithWorkflow encodes a small RGB PNG carrying a tEXt `workflow` chunk, as ComfyUI writes. */
function pngWithWorkflow(wf, w = 32, h = 32) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set([x * 8, y * 8, 128], y * (w * 3 + 1) + 1 + x * 3);
  const text = Buffer.concat([Buffer.from('workflow\0', 'latin1'), Buffer.from(JSON.stringify(wf), 'latin1')]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('tEXt', text),
    pngChunk('IDAT', deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** webpWithWorkflow makes a WEBP whose EXIF IFD0 holds "workflow:{...}" in tag 0x010F (Make), as ComfyUI writes. */
function webpWithWorkflow(wf) {
  const str = Buffer.from('workflow:' + JSON.stringify(wf) + '\0', 'latin1');
  const tiff = Buffer.alloc(8 + 2 + 12 + 4);
  tiff.write('MM', 0, 'latin1');
  tiff.writeUInt16BE(42, 2);
  tiff.writeUInt32BE(8, 4);
  tiff.writeUInt16BE(1, 8);
  tiff.writeUInt16BE(0x010f, 10);
  tiff.writeUInt16BE(2, 12);
  tiff.writeUInt32BE(str.length, 14);
  tiff.writeUInt32BE(tiff.length, 18);
  const exif = Buffer.concat([tiff, str]);
  const chunk = (type, data) => {
    const h = Buffer.alloc(8);
    h.write(type, 0, 'latin1');
    h.writeUInt32LE(data.length, 4);
    return Buffer.concat([h, data, Buffer.alloc(data.length & 1)]);
  };
  const body = Buffer.concat([Buffer.from('WEBP', 'latin1'), chunk('VP8L', Buffer.from([0x2f, 0, 0, 0, 0])), chunk('EXIF', exif)]);
  const riff = Buffer.alloc(8);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(body.length, 4);
  return Buffer.concat([riff, body]);
}

function pngSize(buf) {
  return { w: buf.readUInt32BE(16), h: buf.readUInt32BE(20) };
}

/** drop dispatches a real drop event carrying a File built from bytes onto the canvas. */
async function drop(page, bytes, name, mime) {
  const dt = await page.evaluateHandle(
    ({ b64, name, mime }) => {
      const bin = atob(b64);
      const u8 = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
      const dt = new DataTransfer();
      dt.items.add(new File([u8], name, { type: mime }));
      return dt;
    },
    { b64: Buffer.from(bytes).toString('base64'), name, mime },
  );
  await page.dispatchEvent('#canvas', 'dragenter', { dataTransfer: dt });
  await page.dispatchEvent('#canvas', 'dragover', { dataTransfer: dt });
  await page.dispatchEvent('#canvas', 'drop', { dataTransfer: dt });
}

async function shot(page, name) {
  const p = join(shots, name);
  await page.screenshot({ path: p });
  log('screenshot', p);
}

class Skip extends Error {}

function check(name, fn) {
  return { name, fn };
}

// ---------- the test ----------

async function main() {
  const url = await startServer();
  const defs = await (await fetch(url + '/object_info')).json();
  for (const t of ['StubImage', 'SaveImage']) assert.ok(defs[t], `/object_info lacks ${t} (is --enable-test-nodes on?)`);
  const stubInputs = inputList(defs.StubImage).filter((i) => i.widget).map((i) => i.name);
  assert.ok(stubInputs.includes('width') && stubInputs.includes('height'), `StubImage has no width/height widgets: ${stubInputs}`);

  const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} not found: apt-get install -y chromium (or set CHROMIUM)`);
  const profile = join(tmp, 'profile');
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1400, height: 860 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  cleanups.unshift(() => ctx.close());
  const origin = new URL(url).origin;
  const foreign = [];
  const consoleErrors = [];
  ctx.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('blob:') && !u.startsWith('data:') && !u.startsWith(origin.replace('http', 'ws'))) foreign.push(u);
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) consoleErrors.push(m.text());
  });
  page.on('response', (r) => {
    const expected400 = r.status() === 400 && r.request().method() === 'POST' && /\/prompt$/.test(new URL(r.url()).pathname);
    if (r.status() >= 400 && !expected400) consoleErrors.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  const posts = [];
  page.on('request', (r) => {
    if (r.method() === 'POST') posts.push(new URL(r.url()).pathname);
  });

  const tests = [
    check('page loads, connects, no external requests', async () => {
      await page.goto(url + '/');
      await page.waitForSelector('body[data-ready="1"]', { timeout: 15000 });
      await page.waitForSelector('#conn.on', { timeout: 10000 });
      await shot(page, '01-empty.png');
    }),

    check('drop a PNG with a workflow, edit a widget, queue with Ctrl+Enter, progress 100 %, image appears', async () => {
      nextId = 1;
      nextLink = 1;
      // width comes from an INT primitive whose control_after_generate is "increment": the real
      // PrimitiveInt node when the server has it, else the frontend-only PrimitiveNode.
      let prim;
      if (defs.PrimitiveInt) {
        prim = uiNode(defs, 'PrimitiveInt', [0, 0], { value: 48 });
        prim.widgets_values[1] = 'increment';
      } else {
        prim = {
          id: nextId++, type: 'PrimitiveNode', pos: [0, 0], size: [260, 90], flags: {}, order: 0, mode: 0,
          outputs: [{ name: 'INT', type: 'INT', links: [], widget: { name: 'width' } }], properties: { 'Run widget replace on values': false },
          widgets_values: [48, 'increment'],
        };
      }
      const primInput = defs.PrimitiveInt ? 'value' : 'width';
      const stub = uiNode(defs, 'StubImage', [340, 0], { width: 48, height: 40, content: 'NOISE' });
      const save = uiNode(defs, 'SaveImage', [720, 0], { filename_prefix: 'e2e' });
      const wf = workflow([prim, stub, save]);
      connect(wf, prim, 0, stub, 'width', true);
      connect(wf, stub, 0, save, 'images');
      finish(wf);
      await drop(page, pngWithWorkflow(wf), 'stub-workflow.png', 'image/png');
      await page.waitForSelector(`.node[data-id="${save.id}"]`);
      assert.equal(await page.locator('.node').count(), 3);
      assert.equal(await page.locator('svg.links path').count(), 2);
      // edit the height widget by typing into it, as a user does
      const h = page.locator(`#w-${stub.id}-height`);
      await h.fill('56');
      await h.press('Tab');
      assert.equal(await page.evaluate((id) => window.comfygo.graph.widgetValue(id, 'height'), stub.id), 56);
      await shot(page, '02-loaded.png');
      await page.keyboard.press('Control+Enter');
      await page.waitForFunction(() => document.querySelector('#total-progress').getAttribute('aria-valuenow') === '100', null, { timeout: 60000 });
      await page.waitForFunction(() => [...document.querySelectorAll('#gallery img')].some((i) => i.complete && i.naturalWidth > 0), null, { timeout: 15000 });
      await page.waitForFunction((id) => !!document.querySelector(`.node[data-id="${id}"] .node-media img.output`), save.id, { timeout: 15000 });
      assert.ok(posts.includes('/api/prompt') || posts.includes('/prompt'), 'Ctrl+Enter posted /prompt');
      // the image has the edited size: width from the primitive (48), height typed (56)
      const src = await page.locator('#gallery img').first().getAttribute('src');
      const buf = Buffer.from(await (await fetch(new URL(src, url))).arrayBuffer());
      assert.deepEqual(pngSize(buf), { w: 48, h: 56 }, 'output image size follows the widgets');
      // control_after_generate "increment" moved the primitive on after queueing
      assert.equal(await page.locator(`#w-${prim.id}-${primInput}`).inputValue(), '49');
      await shot(page, '03-done.png');
      // switch the control to "decrement" and queue again with the button: 49 is used, then 48
      await page.locator(`.node[data-id="${prim.id}"] select.control`).selectOption('decrement');
      await page.click('#queue');
      await page.waitForFunction(() => document.querySelectorAll('#gallery img').length >= 2, null, { timeout: 60000 });
      await page.waitForFunction(() => document.querySelector('#total-progress').getAttribute('aria-valuenow') === '100', null, { timeout: 60000 });
      const src2 = await page.locator('#gallery img').first().getAttribute('src');
      const buf2 = Buffer.from(await (await fetch(new URL(src2, url))).arrayBuffer());
      assert.equal(pngSize(buf2).w, 49);
      assert.equal(await page.locator(`#w-${prim.id}-${primInput}`).inputValue(), '48');
    }),

    check('history images re-load their workflow', async () => {
      await page.waitForSelector('#history-list li img');
      await drop(page, Buffer.from(JSON.stringify(finish(workflow([uiNode(defs, 'SaveImage', [0, 0])])))), 'one.json', 'application/json');
      await page.waitForFunction(() => document.querySelectorAll('.node').length === 1);
      await page.locator('#gallery figure button', { hasText: 'Load workflow' }).first().click();
      await page.waitForFunction(() => document.querySelectorAll('.node').length === 3, null, { timeout: 10000 });
      await page.locator('#history-list li img').first().click();
      await page.waitForFunction(() => document.querySelectorAll('.node').length === 3 && document.querySelector('#wfname').textContent.includes('.png'));
    }),

    check('a WEBP carrying a workflow in EXIF loads', async () => {
      nextId = 1;
      nextLink = 1;
      const a = uiNode(defs, 'StubImage', [0, 0]);
      const b = uiNode(defs, 'SaveImage', [360, 0], { filename_prefix: 'from-webp' });
      const wf = workflow([a, b]);
      connect(wf, a, 0, b, 'images');
      await drop(page, webpWithWorkflow(finish(wf)), 'saved.webp', 'image/webp');
      await page.waitForFunction(() => document.querySelector('#wfname').textContent === 'saved.webp');
      assert.equal(await page.locator(`#w-${b.id}-filename_prefix`).inputValue(), 'from-webp');
    }),

    check('upload an image into LoadImage, then run it', async () => {
      if (!defs.LoadImage) throw new Skip('server lacks LoadImage');
      nextId = 1;
      nextLink = 1;
      const load = uiNode(defs, 'LoadImage', [0, 0], { image: 'e2e-upload.png' });
      const save = uiNode(defs, 'SaveImage', [360, 0], { filename_prefix: 'uploaded' });
      const wf = workflow([load, save]);
      connect(wf, load, 0, save, 'images');
      await drop(page, Buffer.from(JSON.stringify(finish(wf))), 'upload.json', 'application/json');
      await page.waitForFunction(() => document.querySelector('#wfname').textContent === 'upload.json');
      assert.equal(await page.locator(`.node[data-id="${load.id}"] .w.invalid`).count(), 1, 'the missing input image is flagged');
      await page.locator(`.node[data-id="${load.id}"] input.upload`).setInputFiles({ name: 'e2e-upload.png', mimeType: 'image/png', buffer: pngWithWorkflow({ nodes: [], links: [], version: 0.4 }, 24, 20) });
      await page.waitForFunction((id) => !document.querySelector(`.node[data-id="${id}"] .w.invalid`), load.id, { timeout: 10000 });
      assert.equal(await page.locator(`#w-${load.id}-image`).inputValue(), 'e2e-upload.png');
      const before = await page.locator('#gallery img').count();
      await page.keyboard.press('Control+Enter');
      await page.waitForFunction((n) => document.querySelectorAll('#gallery img').length > n, before, { timeout: 30000 });
      const src = await page.locator('#gallery img').first().getAttribute('src');
      const buf = Buffer.from(await (await fetch(new URL(src, url))).arrayBuffer());
      assert.deepEqual(pngSize(buf), { w: 24, h: 20 });
    }),

    check('an API-format prompt loads and queues', async () => {
      const prompt = {
        1: { class_type: 'StubImage', inputs: Object.fromEntries(widgetSlots(defs.StubImage).filter((s) => s.kind === 'value').map((s) => [s.name, s.name === 'width' || s.name === 'height' ? 24 : defaultValue(s.input)])) },
        2: { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'api' } },
      };
      await drop(page, Buffer.from(JSON.stringify(prompt)), 'api.json', 'application/json');
      await page.waitForFunction(() => document.querySelector('#wfname').textContent === 'api.json (API prompt)');
      assert.equal(await page.locator('.node').count(), 2);
      assert.equal(await page.locator('svg.links path').count(), 1);
      // collapse a node from its title bar: it folds, its link still ends on it, the flag is saved
      const d0 = await page.locator('svg.links path').getAttribute('d');
      await page.locator('.node[data-id="1"] button.collapse').click();
      await page.waitForSelector('.node[data-id="1"].collapsed');
      assert.notEqual(await page.locator('svg.links path').getAttribute('d'), d0);
      assert.equal(await page.evaluate(() => window.comfygo.state.workflow.nodes[0].flags.collapsed), true);
      await page.locator('.node[data-id="1"] button.collapse').press('Enter');
      await page.waitForSelector('.node[data-id="1"]:not(.collapsed)');
      const before = await page.locator('#gallery img').count();
      await page.click('#queue');
      await page.waitForFunction((n) => document.querySelectorAll('#gallery img').length > n, before, { timeout: 60000 });
    }),

    check('a workflow with a subgraph is flattened and runs', async () => {
      nextId = 1;
      nextLink = 1;
      const inner = uiNode(defs, 'StubImage', [0, 0], { width: 8, height: 24, content: 'NOISE' });
      inner.inputs.push({ name: 'width', type: 'INT', widget: { name: 'width' }, link: 1 });
      const S = {
        id: '7d5b0c1e-0000-4000-8000-00000000e2e0', version: 1, name: 'Stub in a subgraph',
        inputNode: { id: -10, bounding: [0, 0, 100, 60] }, outputNode: { id: -20, bounding: [600, 0, 100, 60] },
        inputs: [{ id: 'i0', name: 'width', type: 'INT', linkIds: [1] }],
        outputs: [{ id: 'o0', name: 'IMAGE', type: 'IMAGE', linkIds: [2] }],
        widgets: [], nodes: [inner], groups: [],
        links: [
          { id: 1, origin_id: -10, origin_slot: 0, target_id: inner.id, target_slot: 0, type: 'INT' },
          { id: 2, origin_id: inner.id, origin_slot: 0, target_id: -20, target_slot: 0, type: 'IMAGE' },
        ],
        state: { lastGroupId: 0, lastNodeId: 1, lastLinkId: 2, lastRerouteId: 0 },
      };
      const inst = { id: 5, type: S.id, pos: [0, 0], size: [300, 80], flags: {}, order: 0, mode: 0,
        inputs: [{ name: 'width', type: 'INT', widget: { name: 'width' }, link: null }],
        outputs: [{ name: 'IMAGE', type: 'IMAGE', links: [] }], properties: { proxyWidgets: [] }, widgets_values: [40] };
      const save = { ...uiNode(defs, 'SaveImage', [400, 0], { filename_prefix: 'sub' }), id: 6 };
      const wf = workflow([inst, save]);
      wf.definitions = { subgraphs: [S] };
      nextLink = 10;
      connect(wf, inst, 0, save, 'images');
      await drop(page, pngWithWorkflow(finish(wf)), 'subgraph.png', 'image/png');
      await page.waitForFunction(() => document.querySelector('#wfname').textContent === 'subgraph.png');
      assert.equal(await page.locator('.node.subgraph').count(), 1);
      assert.equal(await page.locator('.node.missing').count(), 0);
      // the promoted widget is editable on the instance
      assert.equal(await page.locator(`#w-${inst.id}-width`).inputValue(), '40');
      await page.locator(`#w-${inst.id}-width`).fill('44');
      const before = await page.locator('#gallery img').count();
      await page.click('#queue');
      await page.waitForFunction((n) => document.querySelectorAll('#gallery img').length > n, before, { timeout: 30000 });
      const src = await page.locator('#gallery img').first().getAttribute('src');
      const buf = Buffer.from(await (await fetch(new URL(src, url))).arrayBuffer());
      assert.deepEqual(pngSize(buf), { w: 44, h: 24 }, 'the edited promoted width reached the inner StubImage');
      await shot(page, '03b-subgraph.png');
    }),

    check('the page and `comfygo convert` turn workflows into the same prompt', async () => {
      if (!binPath) throw new Skip('no comfygo binary (COMFYGO_URL mode)');
      nextId = 1;
      nextLink = 1;
      // StubImage → Reroute → TestSleep (bypassed) → SaveImage; PrimitiveNode → StubImage.height; a muted node
      const stub = uiNode(defs, 'StubImage', [0, 0], { width: 12 });
      const rr = { id: nextId++, type: 'Reroute', pos: [300, 0], size: [75, 26], flags: {}, order: 0, mode: 0,
        inputs: [{ name: '', type: '*', link: null }], outputs: [{ name: '', type: 'IMAGE', links: [] }], properties: { showOutputText: false, horizontal: false } };
      const sl = uiNode(defs, 'TestSleep', [420, 0], { seconds: 5 });
      sl.mode = 4;
      sl.inputs = [{ name: 'value', type: '*', link: null }];
      sl.outputs = [{ name: '*', type: '*', links: [] }];
      const save = uiNode(defs, 'SaveImage', [760, 0], { filename_prefix: 'parity' });
      const prim = { id: nextId++, type: 'PrimitiveNode', pos: [0, 300], size: [200, 80], flags: {}, order: 0, mode: 0,
        outputs: [{ name: 'INT', type: 'INT', links: [], widget: { name: 'height' } }], properties: {}, widgets_values: [20, 'fixed'] };
      const muted = uiNode(defs, 'StubImage', [0, 500]);
      muted.mode = 2;
      const wf = workflow([stub, rr, sl, save, prim, muted]);
      connect(wf, stub, 0, rr, '');
      connect(wf, rr, 0, sl, 'value');
      connect(wf, sl, 0, save, 'images');
      connect(wf, prim, 0, stub, 'height', true);
      finish(wf);
      const cases = { 'reroute-bypass-primitive-mute': wf };
      const sub = JSON.parse(await page.evaluate(() => JSON.stringify(window.comfygo.state.workflow)));
      if (sub?.definitions?.subgraphs?.length) cases.subgraph = sub;
      for (const [name, w] of Object.entries(cases)) {
        const file = join(tmp, `${name}.json`);
        writeFileSync(file, JSON.stringify(w));
        const server = JSON.parse(execFileSync(binPath, ['convert', '--enable-test-nodes', '--models-dir', join(tmp, 'models'), file], { cwd: tmp, encoding: 'utf8' }));
        const mine = await page.evaluate((w) => window.comfygo.graphToPrompt(w).output, w);
        const strip = (p) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, { class_type: v.class_type, inputs: v.inputs }]));
        assert.deepEqual(strip(mine), strip(server.prompt || server), `${name}: page vs comfygo convert`);
      }
      log(`converters agree on: ${Object.keys(cases).join(', ')}`);
    }),

    check('the bundled workflows/ load without missing nodes and convert like `comfygo convert`', async () => {
      const dir = join(repo, 'workflows');
      const files = existsSync(dir) ? readdirSync(dir).filter((f) => /\.(json|png|webp)$/i.test(f)) : [];
      if (!files.length) throw new Skip('no workflows/ in the repository yet');
      for (const f of files) {
        const bytes = readFileSync(join(dir, f));
        await drop(page, bytes, f, f.endsWith('.json') ? 'application/json' : `image/${f.split('.').pop()}`);
        await page.waitForFunction((f) => document.querySelector('#wfname').textContent.startsWith(f), f);
        const missing = await page.locator('.node.missing').count();
        assert.equal(missing, 0, `${f}: ${missing} node(s) of unknown type`);
        await shot(page, `10-workflow-${f.replace(/\.\w+$/, '')}.png`);
        const mine = await page.evaluate(() => window.comfygo.graphToPrompt().output);
        if (process.env.E2E_RUN_WORKFLOWS === '1') {
          // queue it on the tiny models and wait for its images (slow: 10–40 s each on 2 cores)
          for (const up of await page.locator('.node input.upload').all()) {
            await up.setInputFiles({ name: 'example.png', mimeType: 'image/png', buffer: pngWithWorkflow({ nodes: [], links: [], version: 0.4 }, 64, 64) });
            await page.waitForFunction(() => !document.querySelector('.w.invalid'), null, { timeout: 10000 });
          }
          const before = await page.locator('#gallery img').count();
          const prevRun = await page.evaluate(() => window.comfygo.state.run?.id || '');
          const t0 = Date.now();
          await page.click('#queue');
          await page.waitForFunction(
            ([n, prev]) => {
              const r = window.comfygo.state.run;
              if (window.comfygo.state.problems.validation.length) return true;
              return (r && r.id !== prev && r.finished) || (document.querySelectorAll('#gallery img').length > n && r?.finished);
            },
            [before, prevRun],
            { timeout: 180000 },
          );
          const bad = await page.evaluate(() => window.comfygo.state.problems.validation.map((p) => p.text).join('\n'));
          if (bad) throw new Error(`${f}: not queued: ${bad}`);
          const fin = await page.evaluate(() => window.comfygo.state.run.finished);
          if (!fin.startsWith('done')) throw new Error(`${f}: run ${fin}: ${await page.locator('#problem-list').textContent()}`);
          log(`${f}: ran in ${Date.now() - t0} ms`);
        }
        if (binPath) {
          const server = JSON.parse(execFileSync(binPath, ['convert', '--enable-test-nodes', '--models-dir', join(tmp, 'models'), join(dir, f)], { cwd: tmp, encoding: 'utf8' }));
          const strip = (p) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, { class_type: v.class_type, inputs: v.inputs }]));
          assert.deepEqual(strip(mine), strip(server.prompt || server), `${f}: page vs comfygo convert`);
        }
      }
      log(`workflows/: ${files.join(', ')}`);
    }),

    check('live progress on the running node, Escape cancels it', async () => {
      if (!defs.TestSleep) throw new Error('/object_info lacks TestSleep');
      nextId = 1;
      nextLink = 1;
      const stub = uiNode(defs, 'StubImage', [0, 0], { width: 8, height: 8 });
      const sleep = uiNode(defs, 'TestSleep', [360, 0], { seconds: 20 });
      sleep.inputs = [{ name: 'value', type: '*', link: null }];
      sleep.outputs = [{ name: '*', type: '*', links: [] }];
      const save = uiNode(defs, 'SaveImage', [720, 0]);
      const wf = workflow([stub, sleep, save]);
      connect(wf, stub, 0, sleep, 'value');
      connect(wf, sleep, 0, save, 'images');
      await drop(page, Buffer.from(JSON.stringify(finish(wf))), 'sleep.json', 'application/json');
      await page.waitForFunction(() => document.querySelector('#wfname').textContent === 'sleep.json');
      await page.keyboard.press('Control+Enter');
      await page.waitForSelector(`.node[data-id="${sleep.id}"].running`, { timeout: 15000 });
      await page.waitForFunction(() => Number(document.querySelector('#node-progress').getAttribute('aria-valuenow')) > 0, null, { timeout: 10000 });
      const total = Number(await page.locator('#total-progress').getAttribute('aria-valuenow'));
      assert.ok(total > 0 && total < 100, `prompt progress while sleeping: ${total}`);
      // queue the same workflow again: it waits in the queue and can be removed from there
      await page.keyboard.press('Control+Enter');
      const pending = page.locator('#queue-list li:not(.running) button[aria-label="Remove from queue"]');
      await pending.first().waitFor({ timeout: 10000 });
      assert.equal(await page.locator('#queue-list li.running').count(), 1);
      await shot(page, '04-running.png');
      await pending.first().click();
      await page.waitForFunction(() => document.querySelectorAll('#queue-list button[aria-label="Remove from queue"]').length === 0, null, { timeout: 10000 });
      const t0 = Date.now();
      await page.keyboard.press('Escape');
      await page.waitForFunction(() => document.querySelector('#total-text').textContent === 'interrupted', null, { timeout: 10000 });
      log(`interrupt took effect after ${Date.now() - t0} ms`);
      await page.waitForFunction((id) => !document.querySelector(`.node[data-id="${id}"].running`), sleep.id);
      await page.waitForFunction(() => /error/.test(document.querySelector('#history-list li')?.textContent || ''), null, { timeout: 10000 });
    }),

    check('an execution error is shown on the node that failed', async () => {
      if (!defs.TestSyncError) throw new Error('/object_info lacks TestSyncError');
      nextId = 1;
      nextLink = 1;
      const stub = uiNode(defs, 'StubImage', [0, 0], { width: 8, height: 8 });
      const bad = uiNode(defs, 'TestSyncError', [360, 0]);
      bad.inputs = [{ name: 'value', type: '*', link: null }];
      bad.outputs = [{ name: '*', type: '*', links: [] }];
      const save = uiNode(defs, 'SaveImage', [720, 0]);
      const wf = workflow([stub, bad, save]);
      connect(wf, stub, 0, bad, 'value');
      connect(wf, bad, 0, save, 'images');
      await drop(page, Buffer.from(JSON.stringify(finish(wf))), 'error.json', 'application/json');
      await page.waitForFunction(() => document.querySelector('#wfname').textContent === 'error.json');
      await page.click('#queue');
      await page.waitForSelector(`.node[data-id="${bad.id}"].has-error`, { timeout: 15000 });
      assert.match(await page.locator(`.node[data-id="${bad.id}"] .node-errors`).textContent(), /Intentional sync execution error/);
      assert.match(await page.locator('#problem-list').textContent(), new RegExp(`#${bad.id} TestSyncError failed`));
      assert.equal(await page.locator(`.node[data-id="${stub.id}"].has-error`).count(), 0);
      await shot(page, '05-execution-error.png');
    }),

    check('tiny SD1.5 LCM workflow: latent previews, seed randomize after queue, image', async () => {
      const need = ['CheckpointLoaderSimple', 'CLIPTextEncode', 'EmptyLatentImage', 'KSampler', 'VAEDecode'];
      const missing = need.filter((t) => !defs[t]);
      const ckpts = defs.CheckpointLoaderSimple ? inputList(defs.CheckpointLoaderSimple)[0].options || [] : [];
      if (missing.length || !ckpts.includes('tiny-sd15.safetensors')) {
        throw new Skip(`server lacks ${missing.join(', ') || 'models/checkpoints/tiny-sd15.safetensors'}`);
      }
      nextId = 1;
      nextLink = 1;
      const pick = (type, name, want) => {
        const o = inputList(defs[type]).find((i) => i.name === name)?.options || [];
        return o.includes(want) ? want : o[0];
      };
      const ck = uiNode(defs, 'CheckpointLoaderSimple', [0, 0], { ckpt_name: 'tiny-sd15.safetensors' });
      const pos = uiNode(defs, 'CLIPTextEncode', [340, 0], { text: 'a {red|blue} cube' });
      const neg = uiNode(defs, 'CLIPTextEncode', [340, 220], { text: '' });
      const lat = uiNode(defs, 'EmptyLatentImage', [340, 440], { width: 64, height: 64, batch_size: 1 });
      const ks = uiNode(defs, 'KSampler', [700, 0], { seed: 5, steps: 4, cfg: 1.5, sampler_name: pick('KSampler', 'sampler_name', 'lcm'), scheduler: pick('KSampler', 'scheduler', 'sgm_uniform'), denoise: 1 });
      const dec = uiNode(defs, 'VAEDecode', [1060, 0]);
      const save = uiNode(defs, 'SaveImage', [1060, 200], { filename_prefix: 'tiny' });
      const wf = workflow([ck, pos, neg, lat, ks, dec, save]);
      connect(wf, ck, 0, ks, 'model');
      connect(wf, ck, 1, pos, 'clip');
      connect(wf, ck, 1, neg, 'clip');
      connect(wf, pos, 0, ks, 'positive');
      connect(wf, neg, 0, ks, 'negative');
      connect(wf, lat, 0, ks, 'latent_image');
      connect(wf, ks, 0, dec, 'samples');
      connect(wf, ck, 2, dec, 'vae');
      connect(wf, dec, 0, save, 'images');
      await drop(page, pngWithWorkflow(finish(wf)), 'tiny-sd15.png', 'image/png');
      await page.waitForFunction(() => document.querySelector('#wfname').textContent === 'tiny-sd15.png');
      assert.equal(await page.locator('.node.has-error, .w.invalid').count(), 0, 'tiny workflow loads without problems');
      await page.locator(`.node[data-id="${ks.id}"] select.control`).selectOption('randomize');
      const before = await page.locator('#gallery img').count();
      const prevRun = await page.evaluate(() => window.comfygo.state.run?.id || '');
      await page.keyboard.press('Control+Enter');
      await page.waitForFunction(
        ([n, prev]) => {
          const r = window.comfygo.state.run;
          return document.querySelectorAll('#gallery img').length > n || (r && r.id !== prev && r.finished === 'failed');
        },
        [before, prevRun],
        { timeout: 120000 },
      );
      if (await page.evaluate(() => window.comfygo.state.run?.finished === 'failed')) throw new Error(`the run failed: ${await page.locator('#problem-list').textContent()}`);
      await page.waitForFunction(() => document.querySelector('#total-progress').getAttribute('aria-valuenow') === '100', null, { timeout: 30000 });
      assert.notEqual(await page.locator(`#w-${ks.id}-seed`).inputValue(), '5', 'randomize changed the seed after queueing');
      const previews = await page.locator(`.node[data-id="${ks.id}"] img.preview`).count();
      assert.equal(previews, 1, 'a latent preview reached the KSampler node');
      await shot(page, '09-tiny-sd15.png');
    }),

    check('validation errors show on the offending node and input', async () => {
      nextId = 1;
      nextLink = 1;
      // below the minimum (an over-large value would make a broken server allocate it)
      const min = Number(inputList(defs.StubImage).find((i) => i.name === 'height').opts.min ?? 1);
      const stub = uiNode(defs, 'StubImage', [0, 0], { width: 16, height: min - 1 });
      const save = uiNode(defs, 'SaveImage', [380, 0]);
      const wf = workflow([stub, save]);
      connect(wf, stub, 0, save, 'images');
      await drop(page, pngWithWorkflow(finish(wf)), 'invalid.png', 'image/png');
      await page.waitForFunction(() => document.querySelector('#wfname').textContent === 'invalid.png');
      const resp = page.waitForResponse((r) => r.url().includes('/prompt') && r.request().method() === 'POST');
      await page.keyboard.press('Control+Enter');
      assert.equal((await resp).status(), 400);
      await page.waitForSelector(`.node[data-id="${stub.id}"].has-error`);
      const msg = await page.locator(`.node[data-id="${stub.id}"] .w[data-name="height"] .werr`).textContent();
      assert.match(msg, /smaller than min/i, `error on the height input: ${msg}`);
      assert.equal(await page.locator(`.node[data-id="${save.id}"].has-error`).count(), 0, 'SaveImage not marked');
      assert.match(await page.locator('#problem-list').textContent(), /smaller than min of \d+: height/i);
      await shot(page, '06-validation-error.png');
    }),

    check('missing node types and model files are listed with where to put the file', async () => {
      nextId = 1;
      const nodes = [
        { id: 1, type: 'NoSuchNodeFromAPack', pos: [0, 0], size: [300, 80], flags: {}, mode: 0, inputs: [], outputs: [{ name: 'IMAGE', type: 'IMAGE', links: [] }], widgets_values: [1, 'x'] },
        uiNode(defs, 'SaveImage', [400, 0]),
      ];
      nodes[1].id = 2;
      const ckpt = defs.CheckpointLoaderSimple;
      if (ckpt) nodes.push({ ...uiNode(defs, 'CheckpointLoaderSimple', [0, 200], { ckpt_name: 'missing-model.safetensors' }), id: 3 });
      await drop(page, Buffer.from(JSON.stringify(finish(workflow(nodes)))), 'missing.json', 'application/json');
      await page.waitForFunction(() => document.querySelector('#wfname').textContent === 'missing.json');
      await page.waitForSelector('#problems:not([hidden])');
      const text = await page.locator('#problem-list').textContent();
      assert.match(text, /Missing node type “NoSuchNodeFromAPack”/);
      assert.equal(await page.locator('.node.missing').count(), 1);
      if (ckpt) {
        assert.match(text, /Missing model file “missing-model\.safetensors”/);
        assert.match(text, /checkpoints/);
      }
      await shot(page, '07-missing.png');
    }),

    check('keyboard: Escape interrupts; Tab reaches the queue and cancel buttons', async () => {
      await page.locator('#canvas').focus();
      const req = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname.endsWith('/interrupt'), { timeout: 5000 });
      await page.keyboard.press('Escape');
      await req; // Escape posts /interrupt
      await page.locator('#save').focus();
      await page.keyboard.press('Tab');
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'queue');
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'cancel');
    }),

    check('a 300-node workflow stays responsive', async () => {
      nextId = 1;
      nextLink = 1;
      const nodes = [];
      const wf = workflow(nodes);
      for (let i = 0; i < 150; i++) {
        const s = uiNode(defs, 'StubImage', [(i % 10) * 700, Math.floor(i / 10) * 260], { width: 16, height: 16 });
        const v = uiNode(defs, 'SaveImage', [(i % 10) * 700 + 340, Math.floor(i / 10) * 260]);
        nodes.push(s, v);
        connect(wf, s, 0, v, 'images');
      }
      const t0 = Date.now();
      await drop(page, pngWithWorkflow(finish(wf)), 'big.png', 'image/png');
      await page.waitForFunction(() => document.querySelectorAll('.node').length === 300, null, { timeout: 20000 });
      const dropToRender = Date.now() - t0;
      const m = await page.evaluate(async () => {
        const g = window.comfygo.graph;
        const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
        // widget edit: input event handled and painted
        for (let i = 0; i < 3; i++) await frame(); // let the load settle
        const el = document.querySelector('.node[data-id="151"] input[type=number]');
        const edits = [];
        let t;
        for (let i = 0; i < 9; i++) {
          t = performance.now();
          el.value = String(20 + i);
          el.dispatchEvent(new Event('input', { bubbles: true }));
          await frame();
          edits.push(performance.now() - t);
        }
        edits.sort((a, b) => a - b);
        const edit = edits[4];
        // pan/zoom: 30 wheel events, one per frame
        const vp = document.querySelector('#canvas');
        const frames = [];
        for (let i = 0; i < 30; i++) {
          t = performance.now();
          vp.dispatchEvent(new WheelEvent('wheel', { deltaY: i < 15 ? -40 : 40, clientX: 400, clientY: 300, bubbles: true, cancelable: true }));
          await frame();
          frames.push(performance.now() - t);
        }
        frames.sort((a, b) => a - b);
        // drag a node (moves its links)
        t = performance.now();
        const mdl = g.models.get('1');
        for (let i = 0; i < 20; i++) {
          g.moveNode(mdl, 10 + i, 10 + i);
          await frame();
        }
        const drag = (performance.now() - t) / 20;
        // build the prompt for all 300 nodes
        t = performance.now();
        const { graphToPrompt } = window.comfygo;
        const conv = graphToPrompt ? (graphToPrompt(), performance.now() - t) : -1;
        return { load: g.loadMs, edit, wheelMedian: frames[15], wheelP90: frames[27], drag, conv };
      });
      log(`300 nodes: drop→rendered ${dropToRender} ms (graph build ${m.load.toFixed(0)} ms), widget edit median ${m.edit.toFixed(1)} ms, wheel frame median ${m.wheelMedian.toFixed(1)} ms / p90 ${m.wheelP90.toFixed(1)} ms, node drag ${m.drag.toFixed(1)} ms/frame, prompt build ${m.conv.toFixed(1)} ms`);
      results.push({ nodes300: { dropToRender, ...m } });
      assert.ok(dropToRender < 5000, `render took ${dropToRender} ms`);
      assert.ok(m.edit < 100, `widget edit took ${m.edit} ms`);
      // medians: the machine running the test may be shared; p90 is logged above
      assert.ok(m.wheelMedian < 100, `pan/zoom frames median ${m.wheelMedian} ms`);
      assert.ok(m.drag < 100, `node drag ${m.drag} ms per frame`);
      assert.ok(m.conv >= 0 && m.conv < 500, `prompt build ${m.conv} ms`);
      await shot(page, '08-300-nodes.png');
    }),

    check('no external requests, no page errors', async () => {
      assert.deepEqual(foreign, [], 'requests to other hosts');
      assert.deepEqual(consoleErrors, [], 'console errors');
    }),
  ];

  let failed = 0;
  const only = process.env.E2E_ONLY;
  for (const t of tests) {
    if (only && !t.name.includes(only) && !t.name.startsWith('page loads')) continue;
    step = t.name;
    const t0 = Date.now();
    try {
      await t.fn();
      log(`ok   ${t.name} (${Date.now() - t0} ms)`);
    } catch (e) {
      if (e instanceof Skip) {
        log(`skip ${t.name}: ${e.message}`);
        continue;
      }
      failed++;
      log(`FAIL ${t.name}: ${e.stack || e}`);
      await shot(page, `fail-${failed}.png`).catch(() => {});
    }
  }
  return failed;
}

let code = 1;
try {
  const failed = await main();
  code = failed ? 1 : 0;
  log(failed ? `${failed} check(s) failed` : 'all checks passed');
} catch (e) {
  console.error(`e2e: setup failed during "${step}":`, e);
} finally {
  for (const c of cleanups) {
    try {
      await c();
    } catch {
      /* ignore */
    }
  }
  if (existsSync(tmp)) rmSync(tmp, { recursive: true, force: true });
}
process.exitCode = code;
