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

// Prompts done (executing with node null: sent after the history entry is stored).
const finished = new Set();
let wake = () => {};
api.on("executing", (ev) => {
  if (ev.detail.node === null) {
    finished.add(ev.detail.prompt_id);
    wake();
  }
});
const waitDone = (id, what) => withTimeout(new Promise((resolve) => {
  wake = () => finished.has(id) && resolve();
  wake();
}), 10000, what);

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

// 2. History and queue as the SDK reads them. CallWrapper resolves on `executed`, before
// the prompt is stored in history (as with ComfyUI): wait for the end of the prompt first.
await waitDone(seen.id, "end of the CallWrapper prompt");
check(Object.keys(await api.getHistories(10)).includes(seen.id), "getHistories lists the prompt", seen.id);
const hist = await api.getHistory(seen.id);
check(hist && hist.status?.completed === true && hist.outputs["3"]?.images?.[0]?.filename === info.filename, "getHistory entry", hist?.status);
const queue = await api.getQueue();
check(Array.isArray(queue.queue_running) && Array.isArray(queue.queue_pending), "getQueue", queue);

// 3. SaveImageWebsocket: full-size PNG binary frames reach the SDK as b_preview blobs.
const blobs = [];
api.on("b_preview", (ev) => blobs.push(ev.detail));
const job = await api.queuePrompt(null, wsImagePrompt());
check(typeof job.prompt_id === "string" && job.number >= 0, "queuePrompt answer", job);
await waitDone(job.prompt_id, "SaveImageWebsocket prompt");
check(blobs.length === 2, "two b_preview frames", blobs.length);
for (const b of blobs) {
  const s = pngSize(await b.arrayBuffer());
  check(s && s[0] === 600 && s[1] === 520, "b_preview frame is a full-size PNG", s);
}

// 4. Uploads: the image we downloaded goes back as input (multipart), LoadImage reads it.
const png = await blob.arrayBuffer();
const up = await api.uploadImage(png, "sdk_upload.png", { override: true });
check(up && up.info.filename === "sdk_upload.png" && up.info.subfolder === "" && up.info.type === "input", "uploadImage", up);
const mask = await api.uploadMask(png, up.info);
check(mask && mask.info.type === "input" && typeof mask.info.filename === "string", "uploadMask", mask);
blobs.length = 0;
const job2 = await api.queuePrompt(null, {
  "1": { class_type: "LoadImage", inputs: { image: "sdk_upload.png" } },
  save_image_websocket_node: { class_type: "SaveImageWebsocket", inputs: { images: ["1", 0] } },
});
await waitDone(job2.prompt_id, "LoadImage prompt");
const s2 = blobs.length === 1 ? pngSize(await blobs[0].arrayBuffer()) : null;
check(s2 && s2[0] === 64 && s2[1] === 48, "LoadImage of the upload sent back full size", s2);

// 5. A prompt that fails validation: the SDK rejects with the 400 response (error, node_errors).
let enqueueErr = null;
await api.queuePrompt(null, { "1": { class_type: "StubImage", inputs: { content: "PURPLE", height: 8, width: 8, batch_size: 1 } },
  "2": { class_type: "SaveImage", inputs: { images: ["1", 0], filename_prefix: "bad" } } }).catch((e) => { enqueueErr = e; });
const body = enqueueErr instanceof Response ? await enqueueErr.json() : null;
check(enqueueErr instanceof Response && enqueueErr.status === 400 && body.error?.type === "prompt_outputs_failed_validation" &&
  body.node_errors?.["1"]?.errors?.[0]?.type === "value_not_in_list", "invalid prompt: 400 with node_errors", body);

// 6. Interrupt a running prompt: CallWrapper reports ExecutionInterruptedError.
const slow = new PromptBuilder({
  "1": { class_type: "StubImage", inputs: { content: "WHITE", height: 8, width: 8, batch_size: 1 } },
  "2": { class_type: "TestSyncProgressUpdate", inputs: { value: ["1", 0], sleep_seconds: 20 } },
  "3": { class_type: "SaveImage", inputs: { images: ["2", 0], filename_prefix: "slow" } },
}, [], ["images"]).setOutputNode("images", "3");
let failure = null;
let interrupted = false;
const slowResult = await withTimeout(
  new CallWrapper(api, slow)
    .onProgress(() => { if (!interrupted) { interrupted = true; api.interrupt(); } })
    .onFailed((err) => { failure = err; })
    .run(),
  15000,
  "interrupted CallWrapper.run"
);
check(slowResult === false && failure?.name === "ExecutionInterruptedError" && failure.cause?.node_id === "2", "interrupt: ExecutionInterruptedError at node 2", [slowResult, failure?.name, failure?.cause]);

api.destroy();
console.log("PASS saintno");
process.exit(0);
