// The ComfyUI HTTP + websocket API as the page uses it (server-api.md). Works against comfygo
// and against ComfyUI itself.

/** Api talks to the server the page was loaded from. */
export class Api extends EventTarget {
  constructor(base = '') {
    super();
    this.base = base; // '' → same origin
    this.prefix = '/api';
    this.clientId = sessionStorage.getItem('comfygo.clientId') || '';
    this.ws = null;
    this.connected = false;
    this.retry = 0;
  }

  url(path) {
    return this.base + this.prefix + path;
  }

  /** fetchJSON GETs or POSTs JSON; rejects with an Error carrying .status and .body on non-2xx. */
  async fetchJSON(path, body, method) {
    const init = { cache: 'no-store', headers: {} };
    if (body !== undefined) {
      init.method = method || 'POST';
      init.body = JSON.stringify(body);
      init.headers['Content-Type'] = 'application/json';
    } else if (method) init.method = method;
    let res = await fetch(this.url(path), init);
    if (res.status === 404 && this.prefix === '/api' && path === '/object_info') {
      // a server without the /api aliases
      this.prefix = '';
      res = await fetch(this.url(path), init);
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = text;
      }
    }
    if (!res.ok) {
      const err = new Error(typeof data === 'string' && data ? data : `${init.method || 'GET'} ${path}: HTTP ${res.status}`);
      err.status = res.status;
      err.body = data;
      throw err;
    }
    return data;
  }

  objectInfo() {
    return this.fetchJSON('/object_info');
  }
  queuePrompt(prompt, workflow, front = false) {
    const body = { client_id: this.clientId, prompt, extra_data: { extra_pnginfo: { workflow } } };
    if (front) body.front = true;
    return this.fetchJSON('/prompt', body);
  }
  getQueue() {
    return this.fetchJSON('/queue');
  }
  deleteQueued(ids) {
    return this.fetchJSON('/queue', { delete: ids });
  }
  clearQueue() {
    return this.fetchJSON('/queue', { clear: true });
  }
  interrupt(promptId) {
    return this.fetchJSON('/interrupt', promptId ? { prompt_id: promptId } : {});
  }
  getHistory(max = 64) {
    return this.fetchJSON(`/history?max_items=${max}`);
  }
  deleteHistory(ids) {
    return this.fetchJSON('/history', { delete: ids });
  }
  clearHistory() {
    return this.fetchJSON('/history', { clear: true });
  }
  async folderPaths() {
    try {
      const r = await fetch(this.base + '/internal/folder_paths', { cache: 'no-store' });
      return r.ok ? await r.json() : {};
    } catch {
      return {};
    }
  }
  /** viewURL is the /view address of an output item ({filename, subfolder, type}). */
  viewURL(item) {
    const q = new URLSearchParams({ filename: item.filename, subfolder: item.subfolder || '', type: item.type || 'output' });
    return this.url('/view?' + q.toString());
  }
  async uploadImage(file) {
    const fd = new FormData();
    fd.append('image', file, file.name);
    const res = await fetch(this.url('/upload/image'), { method: 'POST', body: fd });
    if (!res.ok) throw new Error(`upload ${file.name}: HTTP ${res.status}`);
    return res.json();
  }

  /** connect opens the websocket (reconnecting with backoff) and dispatches its messages. */
  connect() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const host = this.base ? new URL(this.base).host : location.host;
    const q = this.clientId ? `?clientId=${encodeURIComponent(this.clientId)}` : '';
    const ws = new WebSocket(`${proto}//${host}/ws${q}`);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => {
      this.retry = 0;
      ws.send(JSON.stringify({ type: 'feature_flags', data: { supports_preview_metadata: true } }));
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') {
        this.onBinary(ev.data);
        return;
      }
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (!msg || typeof msg.type !== 'string') return;
      if (msg.type === 'status' && msg.data?.sid) {
        this.clientId = msg.data.sid;
        sessionStorage.setItem('comfygo.clientId', this.clientId);
        if (!this.connected) {
          this.connected = true;
          this.dispatchEvent(new CustomEvent('connected'));
        }
      }
      this.dispatchEvent(new CustomEvent(msg.type, { detail: msg.data }));
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      const was = this.connected;
      this.connected = false;
      if (was) this.dispatchEvent(new CustomEvent('disconnected'));
      const delay = Math.min(5000, 300 * 2 ** this.retry++);
      setTimeout(() => this.connect(), delay);
    };
  }

  onBinary(buf) {
    const dv = new DataView(buf);
    if (buf.byteLength < 8) return;
    const event = dv.getUint32(0);
    if (event === 1) {
      const fmt = dv.getUint32(4);
      const blob = new Blob([buf.slice(8)], { type: fmt === 2 ? 'image/png' : 'image/jpeg' });
      this.dispatchEvent(new CustomEvent('preview', { detail: { blob, meta: null } }));
    } else if (event === 4) {
      const n = dv.getUint32(4);
      let meta = null;
      try {
        meta = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, n)));
      } catch {
        return;
      }
      const blob = new Blob([buf.slice(8 + n)], { type: meta?.image_type || 'image/jpeg' });
      this.dispatchEvent(new CustomEvent('preview', { detail: { blob, meta } }));
    } else if (event === 3) {
      const n = dv.getUint32(4);
      const dec = new TextDecoder();
      const node = dec.decode(new Uint8Array(buf, 8, n));
      const text = dec.decode(new Uint8Array(buf, 8 + n));
      this.dispatchEvent(new CustomEvent('progress_text', { detail: { node, text } }));
    }
  }
}
