// Package sdktest runs third-party ComfyUI client SDKs from npm (@saintno/comfyui-sdk,
// @stable-canvas/comfyui-client) against `comfygo serve --enable-test-nodes`, with and without
// --auth-token. The Node scripts live next to this file; install their packages with
// `(cd web/sdktest && npm ci --ignore-scripts)`. Without node, npm or node_modules the test skips.
package sdktest
