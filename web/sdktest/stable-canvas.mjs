// Drives comfygo with @stable-canvas/comfyui-client (Client: REST + websocket, enqueue,
// enqueue_polling, binary image frames). Node 20 has no global WebSocket: the SDK takes `ws`.
// usage: node stable-canvas.mjs http://127.0.0.1:PORT [TOKEN]
import { Client, Workflow } from "@stable-canvas/comfyui-client";
import WebSocket from "ws";
import { check, deadline, withTimeout, pngSize, sleepyImagePrompt, wsImagePrompt } from "./common.mjs";

const [host, token] = process.argv.slice(2);
deadline(40000);

// The SDK's documented Node hooks (a WebSocket class and a fetch function) carry the token.
const auth = token ? { Authorization: "Bearer " + token } : {};
class AuthWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols, { headers: auth });
  }
}
const authFetch = (url, init = {}) => fetch(url, { ...init, headers: { ...(init.headers ?? {}), ...auth } });

const client = new Client({ api_host: new URL(host).host, WebSocket: AuthWebSocket, fetch: authFetch, clientId: "sdk-stable-canvas" });
check((await withTimeout(client.connect(), 10000, "connect")) === true, "websocket connected");

const stats = await client.getSystemStats();
check(stats.system && Array.isArray(stats.devices), "getSystemStats", stats);
const samplers = await client.getSamplers();
check(samplers.includes("euler"), "getSamplers lists euler", samplers);
const schedulers = await client.getSchedulers();
check(schedulers.includes("normal"), "getSchedulers lists normal", schedulers);

// 1. enqueue: websocket flow with progress callback; the result holds /view URLs.
const progress = [];
const out = await withTimeout(client.enqueue(sleepyImagePrompt("sdk/stable-canvas"), { progress: (p) => progress.push(p) }), 20000, "enqueue");
check(typeof out.prompt_id === "string" && out.images.length === 1 && out.images[0].type === "url", "enqueue result has one image URL", out);
check(progress.length >= 2 && progress.every((p) => p.node === "2" && p.max === 1 && p.prompt_id === out.prompt_id), "progress callback for node 2", progress.slice(0, 3));
const res = await authFetch(out.images[0].data);
const size = pngSize(await res.arrayBuffer());
check(res.status === 200 && size && size[0] === 64 && size[1] === 48, "/view returns the 64x48 PNG", [res.status, size, out.images[0].data]);
check(/filename=stable-canvas_\d{5}_\.png&subfolder=sdk&type=output$/.test(out.images[0].data), "image URL names the saved file", out.images[0].data);

// 2. enqueue_polling: /queue and /history polling instead of the websocket.
const polled = await withTimeout(client.enqueue_polling(sleepyImagePrompt("sdk/polling"), { polling_ms: 100 }), 20000, "enqueue_polling");
check(polled.images.length === 1 && /filename=polling_\d{5}_\.png/.test(polled.images[0].data), "enqueue_polling result", polled);
const { History } = await client.getHistory();
const ids = History.map((h) => h.prompt[1]);
const ours = History.filter((h) => h.prompt[1] === out.prompt_id || h.prompt[1] === polled.prompt_id);
check(ours.length === 2 && ours.every((h) => h.status?.status_str === "success" && h.status.completed === true), "getHistory lists both prompts as successful", ids);
const status = await client.getPromptStatus(polled.prompt_id);
check(status.done && !status.running && !status.pending, "getPromptStatus done", status);

// 3. SaveImageWebsocket: full-size PNG frames arrive as image_data (mime from the frame header).
const frames = [];
client.on("image_data", (d) => frames.push(d));
const finished = new Set();
let wake = () => {};
client.on("executing", (d) => {
  if (d && d.node === null) {
    finished.add(d.prompt_id);
    wake();
  }
});
const job = await client.queuePrompt(0, { prompt: wsImagePrompt() });
await withTimeout(new Promise((resolve) => {
  wake = () => finished.has(job.prompt_id) && resolve();
  wake();
}), 10000, "SaveImageWebsocket prompt");
check(frames.length === 2, "two image_data frames", frames.length);
for (const f of frames) {
  const s = pngSize(f.image);
  check(f.mime === "image/png" && s && s[0] === 600 && s[1] === 520, "image_data is a full-size image/png", [f.mime, s]);
}

// 4. The programmable Workflow API: invoke() collects SaveImage URLs from `executed` and
// SaveImageWebsocket buffers from the binary frames of the prompt's executing nodes.
const wf = new Workflow();
const { StubImage, TestSyncProgressUpdate, SaveImage, SaveImageWebsocket } = wf.classes;
const [stub] = StubImage({ content: "WHITE", height: 30, width: 40, batch_size: 1 });
const [slowImg] = TestSyncProgressUpdate({ value: stub, sleep_seconds: 0.2 + Math.random() / 100 });
SaveImage({ images: slowImg, filename_prefix: "sdk/workflow" });
SaveImageWebsocket({ images: slowImg });
const wfProgress = [];
const invoked = await withTimeout(wf.invoke(client, { progress: (p) => wfProgress.push(p) }), 20000, "Workflow.invoke");
const urls = invoked.images.filter((i) => i.type === "url");
const bufs = invoked.images.filter((i) => i.type === "buff");
check(urls.length === 1 && /filename=workflow_\d{5}_\.png&subfolder=sdk&type=output$/.test(urls[0].data), "Workflow.invoke: SaveImage URL", invoked.images);
check(bufs.length === 1 && bufs[0].mime === "image/png" && String(pngSize(bufs[0].data)) === "40,30", "Workflow.invoke: SaveImageWebsocket buffer", bufs.map((b) => [b.mime, pngSize(b.data)]));
check(wfProgress.length >= 2, "Workflow.invoke progress callback", wfProgress.length);

// 5. Progress text (binary frame type 3): GetImageSize shows the size on its node.
const texts = [];
client.on("progress_text", (d) => texts.push(d));
const wf2 = new Workflow();
const [probe] = wf2.classes.StubImage({ content: "BLACK", height: 24, width: 36, batch_size: 2 });
const [w] = wf2.classes.GetImageSize({ image: probe });
const [sized] = wf2.classes.StubImage({ content: "WHITE", height: 8, width: w, batch_size: 1 });
wf2.classes.SaveImageWebsocket({ images: sized });
const sizedOut = await withTimeout(wf2.invoke(client), 20000, "GetImageSize workflow");
check(sizedOut.images.length === 1 && String(pngSize(sizedOut.images[0].data)) === "36,8", "GetImageSize width feeds the next node", sizedOut.images.map((b) => pngSize(b.data)));
check(texts.length === 1 && texts[0].text === "width: 36, height: 24\n batch size: 2" && typeof texts[0].nodeId === "string", "progress_text event from GetImageSize", texts);

// 6. Housekeeping routes.
await client.interrupt();
await client.free({ unload_models: false, free_memory: true });
await client.clearItems("history");
check((await client.getHistory()).History.length === 0, "clearItems(history) empties history");

client.close();
console.log("PASS stable-canvas");
process.exit(0);
