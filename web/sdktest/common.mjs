// Shared helpers of the SDK test scripts: assertions, PNG checks, the test workflows.

/** check exits the process with a message when cond is false, else logs "ok <msg>". */
export function check(cond, msg, detail) {
  if (!cond) {
    console.error("FAIL " + msg + (detail !== undefined ? ": " + JSON.stringify(detail) : ""));
    process.exit(1);
  }
  console.log("ok " + msg);
}

/** deadline fails the script after ms (a hung SDK promise must not hang the Go test). */
export function deadline(ms) {
  setTimeout(() => {
    console.error(`FAIL timed out after ${ms} ms`);
    process.exit(1);
  }, ms);
}

/** withTimeout rejects when p does not settle within ms. */
export function withTimeout(p, ms, what) {
  return Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(`${what}: no answer within ${ms} ms`)), ms))]);
}

/** pngSize returns [width, height] of PNG bytes, or null when they are not a PNG. */
export function pngSize(buf) {
  const b = Buffer.from(buf);
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (b.length < 24 || !sig.every((v, i) => b[i] === v) || b.toString("latin1", 12, 16) !== "IHDR") return null;
  return [b.readUInt32BE(16), b.readUInt32BE(20)];
}

/** sleepyImagePrompt: a 64x48 stub image, a node reporting progress for ~0.4 s (a slightly
 * different time per call, so that a rerun against the same server is not served from cache),
 * SaveImage. */
export function sleepyImagePrompt(prefix) {
  return {
    "1": { class_type: "StubImage", inputs: { content: "WHITE", height: 48, width: 64, batch_size: 1 } },
    "2": { class_type: "TestSyncProgressUpdate", inputs: { value: ["1", 0], sleep_seconds: 0.4 + Math.random() / 100 } },
    "3": { class_type: "SaveImage", inputs: { images: ["2", 0], filename_prefix: prefix } },
  };
}

/** wsImagePrompt: two 600x520 images sent full size by SaveImageWebsocket (larger than previews). */
export function wsImagePrompt() {
  return {
    "1": { class_type: "StubImage", inputs: { content: "BLACK", height: 520, width: 600, batch_size: 2 } },
    save_image_websocket_node: { class_type: "SaveImageWebsocket", inputs: { images: ["1", 0] } },
  };
}
