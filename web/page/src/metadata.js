// Reading workflows out of dropped files, with the same rules as ComfyUI's frontend:
// JSON (UI workflow or API prompt), PNG tEXt/iTXt/zTXt/comf chunks, WEBP EXIF, safetensors/latent
// headers. Every function takes bytes (Uint8Array) and never throws on malformed input: it returns
// what it could read.

const latin1 = new TextDecoder('latin1');
const utf8Strict = new TextDecoder('utf-8', { fatal: true });
const utf8 = new TextDecoder('utf-8');

function decodeText(bytes) {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return latin1.decode(bytes);
  }
}

async function inflate(bytes) {
  // zlib stream (PNG zTXt and compressed iTXt use deflate with a zlib header).
  if (typeof DecompressionStream === 'undefined') return null;
  try {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch {
    return null;
  }
}

const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** isPNG reports whether bytes start with the PNG signature. */
export function isPNG(b) {
  return b.length >= 8 && PNG_SIG.every((v, i) => b[i] === v);
}

/** isWEBP reports whether bytes are a RIFF/WEBP file. */
export function isWEBP(b) {
  return b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP';
}

function ascii(b, off, n) {
  let s = '';
  for (let i = off; i < off + n && i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

function u32be(b, o) {
  return ((b[o] << 24) >>> 0) + (b[o + 1] << 16) + (b[o + 2] << 8) + b[o + 3];
}

/**
 * pngText returns the text chunks of a PNG as {keyword: text}; a later chunk with the same
 * keyword wins. Reads tEXt, iTXt (compressed ones inflated), zTXt and ComfyUI's `comf` chunk;
 * does not check CRCs and stops at the end of the buffer.
 */
export async function pngText(b) {
  const out = {};
  if (!isPNG(b)) return out;
  let off = 8;
  while (off + 8 <= b.length) {
    const len = u32be(b, off);
    const type = ascii(b, off + 4, 4);
    const start = off + 8;
    const end = start + len;
    if (end > b.length) break;
    const data = b.subarray(start, end);
    if (type === 'tEXt' || type === 'comf' || type === 'iTXt' || type === 'zTXt') {
      const nul = data.indexOf(0);
      if (nul > 0) {
        const key = latin1.decode(data.subarray(0, nul));
        let text = null;
        if (type === 'tEXt' || type === 'comf') {
          text = decodeText(data.subarray(nul + 1));
        } else if (type === 'zTXt') {
          const raw = await inflate(data.subarray(nul + 2));
          if (raw) text = decodeText(raw);
        } else {
          // iTXt: keyword\0 compFlag compMethod language\0 translatedKeyword\0 text
          const compressed = data[nul + 1] === 1;
          let p = nul + 3;
          const langEnd = data.indexOf(0, p);
          if (langEnd >= 0) {
            const tkEnd = data.indexOf(0, langEnd + 1);
            if (tkEnd >= 0) {
              p = tkEnd + 1;
              const body = data.subarray(p);
              if (compressed) {
                const raw = await inflate(body);
                if (raw) text = utf8.decode(raw);
              } else {
                text = utf8.decode(body);
              }
            }
          }
        }
        if (text !== null) out[key] = text;
      }
    }
    if (type === 'IEND') break;
    off = end + 4;
  }
  return out;
}

/**
 * webpExif returns the `key:value` ASCII entries of IFD0 of the first EXIF chunk of a WEBP file
 * as {key: value} (ComfyUI stores "prompt:{…}" in tag 0x0110 and "workflow:{…}" in 0x010F).
 */
export function webpExif(b) {
  const out = {};
  if (!isWEBP(b)) return out;
  let off = 12;
  while (off + 8 <= b.length) {
    const type = ascii(b, off, 4);
    const len = b[off + 4] | (b[off + 5] << 8) | (b[off + 6] << 16) | ((b[off + 7] << 24) >>> 0);
    const start = off + 8;
    if (start + len > b.length || len < 0) break;
    if (type === 'EXIF') {
      Object.assign(out, tiffAscii(b.subarray(start, start + len)));
      break;
    }
    off = start + len + (len & 1);
  }
  return out;
}

function tiffAscii(d) {
  const out = {};
  let t = d;
  if (ascii(t, 0, 6) === 'Exif\0\0') t = t.subarray(6);
  if (t.length < 8) return out;
  const order = ascii(t, 0, 2);
  if (order !== 'II' && order !== 'MM') return out;
  const le = order === 'II';
  const dv = new DataView(t.buffer, t.byteOffset, t.byteLength);
  const u16 = (o) => dv.getUint16(o, le);
  const u32 = (o) => dv.getUint32(o, le);
  const ifd = u32(4);
  if (ifd + 2 > t.length) return out;
  const n = u16(ifd);
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > t.length) break;
    const type = u16(e + 2);
    const count = u32(e + 4);
    if (type !== 2) continue;
    const voff = count <= 4 ? e + 8 : u32(e + 8);
    if (voff + count > t.length) continue;
    let s = decodeText(t.subarray(voff, voff + count));
    s = s.replace(/\0+$/, '');
    const colon = s.indexOf(':');
    if (colon > 0) out[s.slice(0, colon)] = s.slice(colon + 1);
  }
  return out;
}

/** safetensorsMeta returns the string entries of a safetensors/.latent header's __metadata__. */
export function safetensorsMeta(b) {
  if (b.length < 8) return {};
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  if (n > 8 << 20 || 8 + n > b.length) return {};
  const h = parseJSON(utf8.decode(b.subarray(8, 8 + n)));
  const m = h && typeof h === 'object' ? h.__metadata__ : null;
  return m && typeof m === 'object' ? m : {};
}

/**
 * parseJSON parses JSON like ComfyUI's frontend: strict first, then with bare NaN/Infinity
 * tokens (outside strings) replaced by null. Returns undefined when it cannot parse.
 */
export function parseJSON(text) {
  try {
    return JSON.parse(text);
  } catch {
    /* fall through */
  }
  let out = '';
  let inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inStr) {
      out += c;
      if (c === '\\') {
        out += text[++i] ?? '';
      } else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') {
      inStr = true;
      out += c;
      continue;
    }
    if (text.startsWith('-Infinity', i)) {
      out += 'null';
      i += 8;
    } else if (text.startsWith('Infinity', i)) {
      out += 'null';
      i += 7;
    } else if (text.startsWith('NaN', i)) {
      out += 'null';
      i += 2;
    } else out += c;
  }
  try {
    return JSON.parse(out);
  } catch {
    return undefined;
  }
}

/** isApiPrompt applies the frontend's strict API-prompt test (section 1 of workflow-format). */
export function isApiPrompt(o) {
  if (!o || typeof o !== 'object' || Array.isArray(o)) return false;
  const vals = Object.values(o);
  if (vals.length === 0) return false;
  return vals.every(
    (v) =>
      v &&
      typeof v === 'object' &&
      typeof v.class_type === 'string' &&
      v.inputs &&
      typeof v.inputs === 'object' &&
      !Array.isArray(v.inputs),
  );
}

function looseApi(o) {
  if (!o || typeof o !== 'object' || Array.isArray(o)) return false;
  const vals = Object.values(o);
  return vals.length > 0 && vals.every((v) => v && typeof v === 'object' && v.class_type);
}

/** isUIWorkflow reports whether o looks like a UI workflow (nodes array; version or links). */
export function isUIWorkflow(o) {
  return (
    !!o &&
    typeof o === 'object' &&
    !Array.isArray(o) &&
    Array.isArray(o.nodes) &&
    (typeof o.version === 'number' || Array.isArray(o.links))
  );
}

/**
 * classifyJSON turns a parsed JSON value into {kind: 'workflow'|'prompt', data} or
 * {error}. Accepts a /prompt request body or a history entry ({prompt: {...}}) too.
 */
export function classifyJSON(o) {
  if (o === undefined) return { error: 'The file is not valid JSON.' };
  if (o && typeof o === 'object' && o.templates) return { error: 'Template packs are not supported.' };
  if (looseApi(o)) {
    if (isApiPrompt(o)) return { kind: 'prompt', data: o };
    return { error: 'The file looks like an API prompt but a node lacks class_type or inputs.' };
  }
  if (isUIWorkflow(o)) return { kind: 'workflow', data: o };
  if (o && typeof o === 'object' && o.prompt && isApiPrompt(o.prompt)) {
    const wf = o.extra_data?.extra_pnginfo?.workflow;
    if (isUIWorkflow(wf)) return { kind: 'workflow', data: wf };
    return { kind: 'prompt', data: o.prompt };
  }
  return { error: 'The JSON is neither a ComfyUI workflow nor an API prompt.' };
}

/**
 * fromMetadata picks the workflow out of metadata entries like the frontend: `workflow`
 * (UI workflow) first, then `prompt` (API prompt). Keys are matched case-insensitively.
 */
export function fromMetadata(meta) {
  const get = (k) => {
    for (const [key, v] of Object.entries(meta)) if (key.toLowerCase() === k) return v;
    return undefined;
  };
  const wf = get('workflow');
  if (typeof wf === 'string' && wf) {
    const o = parseJSON(wf);
    if (o && typeof o === 'object' && !Array.isArray(o) && Array.isArray(o.nodes))
      return { kind: 'workflow', data: o };
  }
  const pr = get('prompt');
  if (typeof pr === 'string' && pr) {
    const o = parseJSON(pr);
    if (isApiPrompt(o)) return { kind: 'prompt', data: o };
  }
  if (get('parameters')) return { error: 'A1111 "parameters" metadata is not supported; no ComfyUI workflow in this file.' };
  return { error: 'No ComfyUI workflow found in this file.' };
}

/**
 * readWorkflowBytes detects the format of a dropped file from its bytes (and name) and returns
 * {kind, data} or {error}.
 */
export async function readWorkflowBytes(bytes, name = '') {
  const lower = name.toLowerCase();
  if (isPNG(bytes)) return fromMetadata(await pngText(bytes));
  if (isWEBP(bytes)) return fromMetadata(webpExif(bytes));
  if (lower.endsWith('.latent') || lower.endsWith('.safetensors')) return fromMetadata(safetensorsMeta(bytes));
  const text = utf8.decode(bytes).replace(/^\uFEFF/, '');
  const t = text.trimStart();
  if (lower.endsWith('.json') || t.startsWith('{') || t.startsWith('[')) return classifyJSON(parseJSON(text));
  return { error: `Unable to find a workflow in ${name || 'the dropped data'}.` };
}
