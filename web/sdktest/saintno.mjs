// Drives comfygo with @saintno/comfyui-sdk (ComfyApi + CallWrapper + PromptBuilder).
// usage: node saintno.mjs http://127.0.0.1:PORT [TOKEN]
import { ComfyApi, CallWrapper, PromptBuilder } from "@saintno/comfyui-sdk";
import WebSocket from "ws";
import { check, deadline, withTimeout, pngSize, sleepyImagePrompt, wsImagePrompt } from "./common.mjs";

const [host, token] = process.argv.slice(2);
deadline(40000);

if (token) {
  // The server refuses clients without the token, over HTTP and on the websocket.
  const res = await fetch(host + "/prompt");
  check(res.status === 401, "no token: GET /prompt is 401", res.status);
  const wsStatus = await new Promise((resolve) => {
    const ws = new WebSocket(host.replace("http", "ws") + "/ws");
    ws.on("unexpected-response", (_req, r) => resolve(r.statusCode));
    ws.on("open", () => { ws.close(); resolve(101); });
    ws.on("error", () => resolve(-1));
  });
  check(wsStatus === 401, "no token: websocket upgrade is 401", wsStatus);
}

const api = new ComfyApi(host, "sdk-saintno", token ? { credentials: { type: "bearer_token", token } } : {});
const connected = new Promise((resolve) => api.on("connected", resolve));
api.on("auth_error", () => check(false, "credentials accepted"));
api.init(20, 100);
await withTimeout(api.waitForReady(), 10000, "waitForReady");
await withTimeout(connected, 10000, "websocket connected");
check(true, "client ready and websocket connected");

const stats = await api.getSystemStats();
check(stats.system && typeof stats.system.os === "string" && Array.isArray(stats.devices), "getSystemStats", stats);
const defs = await api.getNodeDefs("SaveImageWebsocket");
check(defs && defs.SaveImageWebsocket && defs.SaveImageWebsocket.output_node === true, "getNodeDefs(SaveImageWebsocket)", defs);
const samplers = await api.getSamplerInfo();
check(Array.isArray(samplers.sampler?.[0]) && samplers.sampler[0].includes("euler"), "getSamplerInfo lists euler", samplers);

// 1. CallWrapper: queue, pending/start/progress/output/finished callbacks, then the image bytes.
const builder = new PromptBuilder(sleepyImagePrompt("unset"), ["prefix"], ["images"])
  .setInputNode("prefix", "3.inputs.filename_prefix")
  .setOutputNode("images", "3")
  .input("prefix", "sdk/saintno");
const seen = { pending: 0, start: 0, progress: [], output: [], finished: 0 };
const result = await withTimeout(
  new CallWrapper(api, builder)
    .onPending((id) => { seen.pending++; seen.id = id; })
    .onStart(() => seen.start++)
    .onProgress((p) => seen.progress.push(p))
    .onOutput((key) => seen.output.push(key))
    .onFinished(() => seen.finished++)
    .onFailed((err) => check(false, "CallWrapper run", String(err) + " " + JSON.stringify(err.cause ?? null)))
    .run(),
  20000,
  "CallWrapper.run"
);
check(result && result.images && result.images.images?.length === 1, "CallWrapper result has one image", result);
check(seen.pending === 1 && seen.start === 1 && seen.finished === 1, "pending, start and finished callbacks", seen);
check(seen.progress.length >= 2 && seen.progress.every((p) => p.node === "2" && p.max === 1 && typeof p.prompt_id === "string"), "progress events of node 2", seen.progress.slice(0, 3));
check(seen.output.includes("images"), "executed output mapped to key images", seen.output);
const info = result.images.images[0];
check(/^saintno_\d{5}_\.png$/.test(info.filename) && info.subfolder === "sdk" && info.type === "output", "image item shape", info);
const blob = await api.getImage(info);
const size = pngSize(await blob.arrayBuffer());
check(size && size[0] === 64 && size[1] === 48, "getImage returns the 64x48 PNG", size);

// 2. History and queue as the SDK reads them.
check(Object.keys(await api.getHistories(10)).includes(seen.id), "getHistories lists the prompt", seen.id);
const hist = await api.getHistory(seen.id);
check(hist && hist.status?.completed === true && hist.outputs["3"]?.images?.[0]?.filename === info.filename, "getHistory entry", hist?.status);
const queue = await api.getQueue();
check(Array.isArray(queue.queue_running) && Array.isArray(queue.queue_pending), "getQueue", queue);

// 3. SaveImageWebsocket: full-size PNG binary frames reach the SDK as b_preview blobs.
const blobs = [];
api.on("b_preview", (ev) => blobs.push(ev.detail));
const finished = new Set();
let wake = () => {};
api.on("executing", (ev) => {
  if (ev.detail.node === null) {
    finished.add(ev.detail.prompt_id);
    wake();
  }
});
const job = await api.queuePrompt(null, wsImagePrompt());
check(typeof job.prompt_id === "string" && job.number >= 0, "queuePrompt answer", job);
await withTimeout(new Promise((resolve) => {
  wake = () => finished.has(job.prompt_id) && resolve();
  wake();
}), 10000, "SaveImageWebsocket prompt");
check(blobs.length === 2, "two b_preview frames", blobs.length);
for (const b of blobs) {
  const s = pngSize(await b.arrayBuffer());
  check(s && s[0] === 600 && s[1] === 520, "b_preview frame is a full-size PNG", s);
}

api.destroy();
console.log("PASS saintno");
process.exit(0);
