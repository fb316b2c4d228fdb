package graph

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"
)

// canon re-encodes JSON compactly keeping key order and number literals.
func canon(t testing.TB, s string) string {
	t.Helper()
	v, err := parseJSON([]byte(s), false)
	if err != nil {
		t.Fatalf("bad expected JSON: %v\n%s", err, s)
	}
	b, err := MarshalCompact(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var fixedNow = func() time.Time { return time.Date(2026, 11, 5, 9, 7, 3, 0, time.UTC) }

func convertString(t testing.TB, wf string, s Schema) (string, error) {
	t.Helper()
	w, err := ParseWorkflow([]byte(wf))
	if err != nil {
		return "", err
	}
	p, err := ConvertWorkflowWith(w, s, ConvertOptions{Now: fixedNow, Rand: rand.New(rand.NewSource(1))})
	if err != nil {
		return "", err
	}
	b, err := p.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return string(b), nil
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConvertWorkflow(t *testing.T) {
	tests := []struct {
		name, wf, want string
	}{
		{
			// Spec 3.7: a Reroute between two nodes; defaults for nothing missing.
			name: "reroute",
			wf: `{"last_node_id": 3, "last_link_id": 2, "version": 0.4,
			 "nodes": [
			  {"id": 1, "type": "EmptyLatentImage", "pos": [0, 0], "size": [300, 100], "flags": {}, "order": 0, "mode": 0,
			   "outputs": [{"name": "LATENT", "type": "LATENT", "links": [1]}], "properties": {}, "widgets_values": [512, 512, 1]},
			  {"id": 2, "type": "Reroute", "pos": [350, 0], "size": [75, 26], "flags": {}, "order": 1, "mode": 0,
			   "inputs": [{"name": "", "type": "*", "link": 1}], "outputs": [{"name": "", "type": "LATENT", "links": [2]}],
			   "properties": {"showOutputText": false, "horizontal": false}},
			  {"id": 3, "type": "SaveLatent", "pos": {"0": 500, "1": 0}, "size": [300, 60], "flags": {}, "order": 2, "mode": 0,
			   "inputs": [{"name": "samples", "type": "LATENT", "link": 2}], "properties": {}, "widgets_values": ["latents/test"]}],
			 "links": [[1, 1, 0, 2, 0, "*"], [2, 2, 0, 3, 0, "LATENT"]],
			 "groups": [], "config": {}, "extra": {"ds": {"scale": 1, "offset": [0, 0]}}}`,
			want: `{"1": {"inputs": {"width": 512, "height": 512, "batch_size": 1}, "class_type": "EmptyLatentImage", "_meta": {"title": "Empty Latent Image"}},
			 "3": {"inputs": {"filename_prefix": "latents/test", "samples": ["1", 0]}, "class_type": "SaveLatent", "_meta": {"title": "SaveLatent"}}}`,
		},
		{
			// Spec 7.6: bypassed LoRA behind chained reroutes, PrimitiveNode seed, muted save, note.
			name: "bypass_chained_reroutes_primitive_mute",
			wf:   readTestdata(t, "wf_worked.json"),
			want: `{
			 "3": {"inputs": {"seed": 1234, "steps": 6, "cfg": 1.5, "sampler_name": "lcm", "scheduler": "sgm_uniform", "denoise": 1,
			        "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}, "class_type": "KSampler", "_meta": {"title": "KSampler"}},
			 "4": {"inputs": {"ckpt_name": "a.safetensors"}, "class_type": "CheckpointLoaderSimple", "_meta": {"title": "Load Checkpoint"}},
			 "5": {"inputs": {"width": 512, "height": 768, "batch_size": 1}, "class_type": "EmptyLatentImage", "_meta": {"title": "Empty Latent Image"}},
			 "6": {"inputs": {"text": "a cat", "clip": ["4", 1]}, "class_type": "CLIPTextEncode", "_meta": {"title": "Positive"}},
			 "7": {"inputs": {"text": "bad", "clip": ["4", 1]}, "class_type": "CLIPTextEncode", "_meta": {"title": "CLIP Text Encode (Prompt)"}},
			 "8": {"inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "class_type": "VAEDecode", "_meta": {"title": "VAE Decode"}}}`,
		},
		{
			// Bypass by type (slot match), bypass without a type match (input dropped), an input
			// fed by a muted node (removed), upload widget slots, defaults for empty values.
			name: "bypass_types_mute_upload_defaults",
			wf: `{"version": 0.4, "nodes": [
			  {"id": 1, "type": "LoadImage", "mode": 0, "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1]}, {"name": "MASK", "type": "MASK", "links": null}], "widgets_values": ["cat.png", "image"]},
			  {"id": 2, "type": "ImageScale", "mode": 4, "inputs": [{"name": "image", "type": "IMAGE", "link": 1}], "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [2]}], "widgets_values": ["bilinear", 64, 64, "disabled"]},
			  {"id": 3, "type": "SaveImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 2}], "widgets_values": ["scaled"]},
			  {"id": 4, "type": "VAEDecode", "mode": 4, "inputs": [{"name": "samples", "type": "LATENT", "link": 3}], "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [4]}]},
			  {"id": 5, "type": "EmptyLatentImage", "mode": 0, "outputs": [{"name": "LATENT", "type": "LATENT", "links": [3]}], "widgets_values": []},
			  {"id": 6, "type": "SaveImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 4}], "widgets_values": ["nomatch"]},
			  {"id": 7, "type": "KSampler", "mode": 2, "outputs": [{"name": "LATENT", "type": "LATENT", "links": [5]}], "widgets_values": [1, "fixed", 20, 8, "euler", "normal", 1]},
			  {"id": 8, "type": "VAEDecode", "mode": 0, "inputs": [{"name": "samples", "type": "LATENT", "link": 5}, {"name": "vae", "type": "VAE", "link": null}]},
			  {"id": 9, "type": "LoadImageMask", "mode": 0, "widgets_values": ["m.png", "alpha", "image"]}],
			 "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"], [3, 5, 0, 4, 0, "LATENT"], [4, 4, 0, 6, 0, "IMAGE"], [5, 7, 0, 8, 0, "LATENT"]]}`,
			want: `{
			 "1": {"inputs": {"image": "cat.png"}, "class_type": "LoadImage", "_meta": {"title": "Load Image"}},
			 "3": {"inputs": {"filename_prefix": "scaled", "images": ["1", 0]}, "class_type": "SaveImage", "_meta": {"title": "Save Image"}},
			 "5": {"inputs": {"width": 512, "height": 512, "batch_size": 1}, "class_type": "EmptyLatentImage", "_meta": {"title": "Empty Latent Image"}},
			 "6": {"inputs": {"filename_prefix": "nomatch"}, "class_type": "SaveImage", "_meta": {"title": "Save Image"}},
			 "8": {"inputs": {}, "class_type": "VAEDecode", "_meta": {"title": "VAE Decode"}},
			 "9": {"inputs": {"image": "m.png", "channel": "alpha"}, "class_type": "LoadImageMask", "_meta": {"title": "Load Image (as Mask)"}}}`,
		},
		{
			// Seed widgets: explicit control, name-rule control (noise_seed), a file saved before
			// the control slot existed, control_after_generate false, 2023 boolean control with
			// the sample_ prefix fix-up, a seed beyond 2^64-1 kept digit for digit, 1.0 -> 1.
			name: "seeds_and_controls",
			wf: `{"version": 0.4, "links": [], "nodes": [
			  {"id": 1, "type": "KSampler", "mode": 0, "widgets_values": [5, "fixed", 20, 7, "euler", "normal", 0.5]},
			  {"id": 2, "type": "KSamplerAdvanced", "mode": 0, "widgets_values": ["enable", 99, "increment", 25, 8, "euler", "normal", 0, 20, "enable"]},
			  {"id": 3, "type": "KSamplerAdvanced", "mode": 0, "widgets_values": ["disable", 77, 30, 6.5, "lcm", "sgm_uniform", 2, 30, "disable"]},
			  {"id": 4, "type": "SeedGen", "mode": 0, "widgets_values": [42, 3]},
			  {"id": 5, "type": "KSampler", "mode": 0, "widgets_values": [823155751257884, true, 13, 8.5, "sample_euler", "normal", 1]},
			  {"id": 6, "type": "KSampler", "mode": 0, "widgets_values": [18446744073709551615, "randomize", 4, 1.0, "lcm", "sgm_uniform", 1.0]},
			  {"id": 7, "type": "KSampler", "mode": 0, "widgets_values": [3, "randomize"]}]}`,
			want: `{
			 "1": {"inputs": {"seed": 5, "steps": 20, "cfg": 7, "sampler_name": "euler", "scheduler": "normal", "denoise": 0.5}, "class_type": "KSampler", "_meta": {"title": "KSampler"}},
			 "2": {"inputs": {"add_noise": "enable", "noise_seed": 99, "steps": 25, "cfg": 8, "sampler_name": "euler", "scheduler": "normal", "start_at_step": 0, "end_at_step": 20, "return_with_leftover_noise": "enable"}, "class_type": "KSamplerAdvanced", "_meta": {"title": "KSampler (Advanced)"}},
			 "3": {"inputs": {"add_noise": "disable", "noise_seed": 77, "steps": 30, "cfg": 6.5, "sampler_name": "lcm", "scheduler": "sgm_uniform", "start_at_step": 2, "end_at_step": 30, "return_with_leftover_noise": "disable"}, "class_type": "KSamplerAdvanced", "_meta": {"title": "KSampler (Advanced)"}},
			 "4": {"inputs": {"seed": 42, "count": 3}, "class_type": "SeedGen", "_meta": {"title": "Seed Generator"}},
			 "5": {"inputs": {"seed": 823155751257884, "steps": 13, "cfg": 8.5, "sampler_name": "euler", "scheduler": "normal", "denoise": 1}, "class_type": "KSampler", "_meta": {"title": "KSampler"}},
			 "6": {"inputs": {"seed": 18446744073709551615, "steps": 4, "cfg": 1, "sampler_name": "lcm", "scheduler": "sgm_uniform", "denoise": 1}, "class_type": "KSampler", "_meta": {"title": "KSampler"}},
			 "7": {"inputs": {"seed": 3, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal", "denoise": 1}, "class_type": "KSampler", "_meta": {"title": "KSampler"}}}`,
		},
		{
			// Schema 0.4 converted widgets: old-style widget config, a PrimitiveNode feeding two
			// nodes, a STRING primitive with a dynamic prompt.
			name: "converted_widgets_and_primitives",
			wf: `{"version": 0.4, "nodes": [
			  {"id": 10, "type": "SeedGen", "mode": 0, "outputs": [{"name": "INT", "type": "INT", "links": [1]}], "widgets_values": [42, 1]},
			  {"id": 11, "type": "KSampler", "mode": 0, "inputs": [{"name": "seed", "type": "INT", "widget": {"name": "seed", "config": ["INT", {"default": 0}]}, "link": 1}, {"name": "steps", "type": "INT", "widget": {"name": "steps"}, "link": 2}], "widgets_values": [0, "randomize", 20, 8, "euler", "normal", 1]},
			  {"id": 13, "type": "KSampler", "mode": 0, "inputs": [{"name": "steps", "type": "INT", "widget": {"name": "steps"}, "link": 3}], "widgets_values": [1, "fixed", 20, 8, "euler", "normal", 1]},
			  {"id": 14, "type": "PrimitiveNode", "mode": 0, "outputs": [{"name": "INT", "type": "INT", "links": [2, 3], "widget": {"name": "steps"}}], "widgets_values": [8, "fixed"]},
			  {"id": 15, "type": "PrimitiveNode", "mode": 0, "outputs": [{"name": "STRING", "type": "STRING", "links": [4], "widget": {"name": "text"}}], "widgets_values": ["a {dog|dog} // comment"]},
			  {"id": 12, "type": "CLIPTextEncode", "mode": 0, "inputs": [{"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 4}, {"name": "clip", "type": "CLIP", "link": null}], "widgets_values": ["ignored"]}],
			 "links": [[1, 10, 0, 11, 0, "INT"], [2, 14, 0, 11, 1, "INT"], [3, 14, 0, 13, 0, "INT"], [4, 15, 0, 12, 0, "STRING"]]}`,
			want: `{
			 "10": {"inputs": {"seed": 42, "count": 1}, "class_type": "SeedGen", "_meta": {"title": "Seed Generator"}},
			 "11": {"inputs": {"seed": ["10", 0], "steps": 8, "cfg": 8, "sampler_name": "euler", "scheduler": "normal", "denoise": 1}, "class_type": "KSampler", "_meta": {"title": "KSampler"}},
			 "12": {"inputs": {"text": "a dog "}, "class_type": "CLIPTextEncode", "_meta": {"title": "CLIP Text Encode (Prompt)"}},
			 "13": {"inputs": {"seed": 1, "steps": 8, "cfg": 8, "sampler_name": "euler", "scheduler": "normal", "denoise": 1}, "class_type": "KSampler", "_meta": {"title": "KSampler"}}}`,
		},
		{
			// Schema 1 root graph (link objects) with a widget converted to an input (1.16+ style).
			name: "schema1_converted_widget",
			wf: `{"id": "6a0c4b1e-1111-4222-8333-944455556666", "revision": 0, "version": 1,
			 "state": {"lastGroupId": 0, "lastNodeId": 2, "lastLinkId": 1, "lastRerouteId": 0},
			 "nodes": [
			  {"id": 1, "type": "SeedGen", "mode": 0, "outputs": [{"name": "INT", "type": "INT", "links": [1]}], "widgets_values": [3, 2]},
			  {"id": 2, "type": "KSamplerAdvanced", "mode": 0, "inputs": [{"name": "noise_seed", "type": "INT", "widget": {"name": "noise_seed"}, "link": 1}], "widgets_values": ["enable", 0, "fixed", 10, 2, "lcm", "normal", 0, 10, "disable"]}],
			 "links": [{"id": 1, "origin_id": 1, "origin_slot": 0, "target_id": 2, "target_slot": 0, "type": "INT"}], "reroutes": [], "groups": []}`,
			want: `{
			 "1": {"inputs": {"seed": 3, "count": 2}, "class_type": "SeedGen", "_meta": {"title": "Seed Generator"}},
			 "2": {"inputs": {"add_noise": "enable", "noise_seed": ["1", 0], "steps": 10, "cfg": 2, "sampler_name": "lcm", "scheduler": "normal", "start_at_step": 0, "end_at_step": 10, "return_with_leftover_noise": "disable"}, "class_type": "KSamplerAdvanced", "_meta": {"title": "KSampler (Advanced)"}}}`,
		},
		{
			// Dict-form widgets_values, forceInput dummy values of pre-1.16 files, array widget
			// values wrapped in __value__ (curves tagged CURVE), a node type the schema does not know.
			name: "dict_forceinput_array_unknown",
			wf: `{"version": 0.4, "nodes": [
			  {"id": 1, "type": "DictNode", "mode": 0, "outputs": [{"name": "FLOAT", "type": "FLOAT", "links": [1]}], "widgets_values": {"amount": 0.5, "mode": "b"}},
			  {"id": 2, "type": "StringConcat", "mode": 0, "widgets_values": ["", "world"]},
			  {"id": 3, "type": "StringConcat", "mode": 0, "widgets_values": ["hi"]},
			  {"id": 4, "type": "ListNode", "mode": 0, "widgets_values": [{"points": [[0, 0], [1, 1.5]]}, ["a", "c"]]},
			  {"id": 5, "type": "MysteryNode", "mode": 0, "inputs": [{"name": "x", "type": "FLOAT", "link": 1}], "widgets_values": [1, 2]}],
			 "links": [[1, 1, 0, 5, 0, "FLOAT"]]}`,
			want: `{
			 "1": {"inputs": {"mode": "b", "amount": 0.5, "extra": "x"}, "class_type": "DictNode", "_meta": {"title": "DictNode"}},
			 "2": {"inputs": {"b": "world"}, "class_type": "StringConcat", "_meta": {"title": "StringConcat"}},
			 "3": {"inputs": {"b": "hi"}, "class_type": "StringConcat", "_meta": {"title": "StringConcat"}},
			 "4": {"inputs": {"curve": {"__type__": "CURVE", "__value__": {"points": [[0, 0], [1, 1.5]]}}, "tags": {"__value__": ["a", "c"]}}, "class_type": "ListNode", "_meta": {"title": "ListNode"}},
			 "5": {"inputs": {"x": ["1", 0]}, "class_type": "MysteryNode", "_meta": {"title": "MysteryNode"}}}`,
		},
		{
			// A subgraph used twice: inner links, an inner Reroute, exposed inputs and output,
			// a promoted seed widget (instance value) and the same input fed by a link.
			name: "subgraph",
			wf:   readTestdata(t, "wf_subgraph.json"),
			want: `{
			 "4": {"inputs": {"ckpt_name": "a.safetensors"}, "class_type": "CheckpointLoaderSimple", "_meta": {"title": "Load Checkpoint"}},
			 "6": {"inputs": {"text": "pos", "clip": ["4", 1]}, "class_type": "CLIPTextEncode", "_meta": {"title": "CLIP Text Encode (Prompt)"}},
			 "7": {"inputs": {"text": "neg", "clip": ["4", 1]}, "class_type": "CLIPTextEncode", "_meta": {"title": "CLIP Text Encode (Prompt)"}},
			 "8": {"inputs": {"samples": ["12:1", 0], "vae": ["4", 2]}, "class_type": "VAEDecode", "_meta": {"title": "VAE Decode"}},
			 "9": {"inputs": {"filename_prefix": "sg", "images": ["8", 0]}, "class_type": "SaveImage", "_meta": {"title": "Save Image"}},
			 "14": {"inputs": {"seed": 5, "count": 1}, "class_type": "SeedGen", "_meta": {"title": "Seed Generator"}},
			 "12:1": {"inputs": {"seed": 777, "steps": 4, "cfg": 1.5, "sampler_name": "lcm", "scheduler": "sgm_uniform", "denoise": 1,
			          "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["12:2", 0]}, "class_type": "KSampler", "_meta": {"title": "KSampler"}},
			 "12:2": {"inputs": {"width": 1024, "height": 1024, "batch_size": 1}, "class_type": "EmptyLatentImage", "_meta": {"title": "Empty Latent Image"}},
			 "13:1": {"inputs": {"seed": ["14", 0], "steps": 4, "cfg": 1.5, "sampler_name": "lcm", "scheduler": "sgm_uniform", "denoise": 1,
			          "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["13:2", 0]}, "class_type": "KSampler", "_meta": {"title": "KSampler"}},
			 "13:2": {"inputs": {"width": 1024, "height": 1024, "batch_size": 1}, "class_type": "EmptyLatentImage", "_meta": {"title": "Empty Latent Image"}}}`,
		},
		{
			// Nested subgraphs ("20:5:1"), a bypassed instance (no type match: dropped), a muted
			// instance (link removed), proxyWidgets value override, promoted widget falling back
			// to the inner value, an output wired straight to an input (pass-through).
			name: "nested_subgraphs",
			wf:   readTestdata(t, "wf_nested.json"),
			want: `{
			 "1": {"inputs": {"width": 8, "height": 8, "batch_size": 1}, "class_type": "EmptyLatentImage", "_meta": {"title": "Empty Latent Image"}},
			 "4": {"inputs": {"ckpt_name": "a.safetensors"}, "class_type": "CheckpointLoaderSimple", "_meta": {"title": "Load Checkpoint"}},
			 "6": {"inputs": {"text": "p", "clip": ["4", 1]}, "class_type": "CLIPTextEncode", "_meta": {"title": "CLIP Text Encode (Prompt)"}},
			 "8": {"inputs": {"filename_prefix": "n", "samples": ["20:5:1", 0]}, "class_type": "SaveLatent", "_meta": {"title": "SaveLatent"}},
			 "9": {"inputs": {"filename_prefix": "b"}, "class_type": "SaveLatent", "_meta": {"title": "SaveLatent"}},
			 "10": {"inputs": {"filename_prefix": "m"}, "class_type": "SaveLatent", "_meta": {"title": "SaveLatent"}},
			 "31": {"inputs": {"filename_prefix": "pt", "samples": ["1", 0]}, "class_type": "SaveLatent", "_meta": {"title": "SaveLatent"}},
			 "20:5:1": {"inputs": {"seed": 55, "steps": 4, "cfg": 1.5, "sampler_name": "lcm", "scheduler": "sgm_uniform", "denoise": 1,
			            "model": ["4", 0], "positive": ["6", 0], "negative": ["6", 0], "latent_image": ["20:5:2", 0]}, "class_type": "KSampler", "_meta": {"title": "KSampler"}},
			 "20:5:2": {"inputs": {"width": 1024, "height": 1024, "batch_size": 1}, "class_type": "EmptyLatentImage", "_meta": {"title": "Empty Latent Image"}},
			 "23:1": {"inputs": {"seed": 0, "steps": 9, "cfg": 1.5, "sampler_name": "lcm", "scheduler": "sgm_uniform", "denoise": 1,
			          "model": ["4", 0], "positive": ["6", 0], "negative": ["6", 0], "latent_image": ["23:2", 0]}, "class_type": "KSampler", "_meta": {"title": "KSampler"}},
			 "23:2": {"inputs": {"width": 1024, "height": 1024, "batch_size": 1}, "class_type": "EmptyLatentImage", "_meta": {"title": "Empty Latent Image"}}}`,
		},
		{
			// Legacy group nodes are accepted when muted (dropped) or bypassed (inputs passed
			// through by exact type).
			name: "muted_and_bypassed_group_nodes",
			wf: `{"version": 0.4, "extra": {"groupNodes": {"G": {"nodes": [], "links": []}}}, "nodes": [
			  {"id": 1, "type": "EmptyLatentImage", "mode": 0, "outputs": [{"name": "LATENT", "type": "LATENT", "links": [1, 3]}], "widgets_values": [64, 64, 1]},
			  {"id": 2, "type": "workflow>G", "mode": 4, "inputs": [{"name": "model", "type": "MODEL", "link": null}, {"name": "samples", "type": "LATENT", "link": 1}], "outputs": [{"name": "LATENT", "type": "LATENT", "links": [2]}]},
			  {"id": 3, "type": "SaveLatent", "mode": 0, "inputs": [{"name": "samples", "type": "LATENT", "link": 2}], "widgets_values": ["g"]},
			  {"id": 4, "type": "workflow/G", "mode": 2, "inputs": [{"name": "samples", "type": "LATENT", "link": 3}], "outputs": [{"name": "LATENT", "type": "LATENT", "links": [4]}]},
			  {"id": 5, "type": "SaveLatent", "mode": 0, "inputs": [{"name": "samples", "type": "LATENT", "link": 4}], "widgets_values": ["m"]}],
			 "links": [[1, 1, 0, 2, 1, "LATENT"], [2, 2, 0, 3, 0, "LATENT"], [3, 1, 0, 4, 0, "LATENT"], [4, 4, 0, 5, 0, "LATENT"]]}`,
			want: `{
			 "1": {"inputs": {"width": 64, "height": 64, "batch_size": 1}, "class_type": "EmptyLatentImage", "_meta": {"title": "Empty Latent Image"}},
			 "3": {"inputs": {"filename_prefix": "g", "samples": ["1", 0]}, "class_type": "SaveLatent", "_meta": {"title": "SaveLatent"}},
			 "5": {"inputs": {"filename_prefix": "m"}, "class_type": "SaveLatent", "_meta": {"title": "SaveLatent"}}}`,
		},
		{
			// filename_prefix replacements (%Node.widget%, %date:..%, backend ones kept) and a
			// PrimitiveNode with "Run widget replace on values".
			name: "text_replacements",
			wf: `{"version": 0.4, "nodes": [
			  {"id": 3, "type": "KSampler", "mode": 0, "widgets_values": [1234, "fixed", 20, 8, "euler", "normal", 1]},
			  {"id": 9, "type": "SaveImage", "mode": 0, "widgets_values": ["%KSampler.seed%/%date:yyyy-MM-dd_hh%_%width%"]},
			  {"id": 5, "type": "PrimitiveNode", "mode": 0, "properties": {"Run widget replace on values": true}, "outputs": [{"name": "STRING", "type": "STRING", "links": [1], "widget": {"name": "text"}}], "widgets_values": ["%KSampler.steps% steps"]},
			  {"id": 6, "type": "CLIPTextEncode", "mode": 0, "inputs": [{"name": "text", "type": "STRING", "widget": {"name": "text"}, "link": 1}], "widgets_values": [""]}],
			 "links": [[1, 5, 0, 6, 0, "STRING"]]}`,
			want: `{
			 "3": {"inputs": {"seed": 1234, "steps": 20, "cfg": 8, "sampler_name": "euler", "scheduler": "normal", "denoise": 1}, "class_type": "KSampler", "_meta": {"title": "KSampler"}},
			 "6": {"inputs": {"text": "20 steps"}, "class_type": "CLIPTextEncode", "_meta": {"title": "CLIP Text Encode (Prompt)"}},
			 "9": {"inputs": {"filename_prefix": "1234/2026-11-05_09_%width%"}, "class_type": "SaveImage", "_meta": {"title": "Save Image"}}}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := convertString(t, tc.wf, testSchema)
			if err != nil {
				t.Fatal(err)
			}
			if want := canon(t, tc.want); got != want {
				t.Errorf("prompt mismatch\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

func TestConvertWorkflowErrors(t *testing.T) {
	tests := []struct {
		name, wf, want string
	}{
		{"group_node", `{"version": 0.4, "nodes": [{"id": 1, "type": "workflow>MyGroup", "mode": 0}], "links": [], "extra": {"groupNodes": {"MyGroup": {"nodes": []}}}}`, "group node"},
		{"circular_reroutes", `{"version": 0.4, "nodes": [
			{"id": 1, "type": "Reroute", "inputs": [{"name": "", "type": "*", "link": 2}], "outputs": [{"name": "", "type": "*", "links": [1, 3]}]},
			{"id": 2, "type": "Reroute", "inputs": [{"name": "", "type": "*", "link": 1}], "outputs": [{"name": "", "type": "*", "links": [2]}]},
			{"id": 3, "type": "SaveLatent", "inputs": [{"name": "samples", "type": "LATENT", "link": 3}], "widgets_values": ["x"]}],
			"links": [[1, 1, 0, 2, 0, "*"], [2, 2, 0, 1, 0, "*"], [3, 1, 0, 3, 0, "LATENT"]]}`, "circular reference"},
		{"self_containing_subgraph", `{"version": 0.4, "nodes": [{"id": 1, "type": "bbbbbbbb-0000-4000-8000-000000000002", "mode": 0}], "links": [],
			"definitions": {"subgraphs": [{"id": "bbbbbbbb-0000-4000-8000-000000000002", "inputs": [], "outputs": [],
			  "nodes": [{"id": 1, "type": "bbbbbbbb-0000-4000-8000-000000000002", "mode": 0}], "links": []}]}}`, "contains itself"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := convertString(t, tc.wf, testSchema)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestParseWorkflowErrors(t *testing.T) {
	for _, in := range []string{``, `[]`, `{"nodes": 5}`, `{"links": []}`, `{"nodes": [1]}`, `{"nodes": [{"id": 1}]}`, `{"nodes": [], "links": [[1, 2]]}`, `{"nodes":[`} {
		if _, err := ParseWorkflow([]byte(in)); err == nil {
			t.Errorf("ParseWorkflow(%q): no error", in)
		}
	}
}

// Without a schema the converter still emits every real node with its links; widget values
// cannot be named and are left out.
func TestConvertWithoutSchema(t *testing.T) {
	got, err := convertString(t, readTestdata(t, "wf_worked.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := canon(t, `{
	 "3": {"inputs": {"model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}, "class_type": "KSampler", "_meta": {"title": "KSampler"}},
	 "4": {"inputs": {}, "class_type": "CheckpointLoaderSimple", "_meta": {"title": "CheckpointLoaderSimple"}},
	 "5": {"inputs": {}, "class_type": "EmptyLatentImage", "_meta": {"title": "EmptyLatentImage"}},
	 "6": {"inputs": {"clip": ["4", 1]}, "class_type": "CLIPTextEncode", "_meta": {"title": "Positive"}},
	 "7": {"inputs": {"clip": ["4", 1]}, "class_type": "CLIPTextEncode", "_meta": {"title": "CLIPTextEncode"}},
	 "8": {"inputs": {"samples": ["3", 0], "vae": ["4", 2]}, "class_type": "VAEDecode", "_meta": {"title": "VAEDecode"}}}`)
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestDynamicPrompt(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"a {b|b} c", "a b c"},
		{"x /* gone */y // tail", "x y "},
		{`keep \{this\}`, `keep \{this\}`},
		{"{{n|n}|{n|n}}", "n"},
		{"{only}", "only"},
	} {
		if got := processDynamicPrompt(tc.in, rng); got != tc.want {
			t.Errorf("processDynamicPrompt(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		seen[processDynamicPrompt("{a|b|c}", rng)] = true
	}
	if len(seen) != 3 {
		t.Errorf("choices seen: %v", seen)
	}
}

func TestFormatDate(t *testing.T) {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if got := formatDate("yyyy-MM-dd hh:mm:ss yy M d h m s", ts); got != "2026-03-04 05:06:07 26 3 4 5 6 7" {
		t.Errorf("formatDate = %q", got)
	}
}

func TestExecutionOrderAndKeyOrder(t *testing.T) {
	if got := jsKeyOrder([]string{"b", "10", "2", "1:2", "0", "01"}); strings.Join(got, ",") != "0,2,10,b,1:2,01" {
		t.Errorf("jsKeyOrder = %v", got)
	}
	w, err := ParseWorkflow([]byte(readTestdata(t, "wf_worked.json")))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range executionOrder(&w.WorkflowGraph) {
		ids = append(ids, n.ID)
	}
	// Kahn from the nodes without inputs (document order), FIFO.
	if got := strings.Join(ids, ","); got != "4,30,5,31,20,7,21,6,22,3,8,9" {
		t.Errorf("execution order = %s", got)
	}
}

func TestValidConnection(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		ok   bool
	}{{"IMAGE", "IMAGE", true}, {"*", "LATENT", true}, {"", "X", true}, {"image", "IMAGE", true}, {"INT,FLOAT", "FLOAT", true}, {"IMAGE", "LATENT", false}, {"A,B", "C,D", false}} {
		if validConnection(tc.a, tc.b) != tc.ok {
			t.Errorf("validConnection(%q,%q) != %v", tc.a, tc.b, tc.ok)
		}
	}
}

var _ = errors.New

// bigWorkflow builds an n-node UI workflow: a chain of KSamplers behind reroutes and a
// PrimitiveNode feeding every seed.
func bigWorkflow(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"version": 0.4, "nodes": [`)
	b.WriteString(`{"id": 1, "type": "EmptyLatentImage", "outputs": [{"name": "LATENT", "type": "LATENT", "links": [1]}], "widgets_values": [512, 512, 1]}`)
	b.WriteString(`,{"id": 2, "type": "PrimitiveNode", "outputs": [{"name": "INT", "type": "INT", "widget": {"name": "seed"}, "links": [`)
	for i := 3; i <= n; i += 2 {
		if i > 3 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%d", 1000000+i)
	}
	b.WriteString(`]}], "widgets_values": [42, "fixed"]}`)
	var links []string
	links = append(links, "[1, 1, 0, 3, 3, \"LATENT\"]")
	for i := 3; i <= n; i += 2 {
		// i: KSampler, i+1: Reroute after it
		fmt.Fprintf(&b, `,{"id": %d, "type": "KSampler", "inputs": [{"name": "latent_image", "type": "LATENT", "link": %d}, {"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": %d}], "outputs": [{"name": "LATENT", "type": "LATENT", "links": [%d]}], "widgets_values": [0, "fixed", 4, 1.5, "lcm", "sgm_uniform", 1]}`,
			i, linkIn(i), 1000000+i, 2000000+i)
		fmt.Fprintf(&b, `,{"id": %d, "type": "Reroute", "inputs": [{"name": "", "type": "*", "link": %d}], "outputs": [{"name": "", "type": "LATENT", "links": [%d]}]}`,
			i+1, 2000000+i, linkIn(i+2))
		links = append(links, fmt.Sprintf("[%d, 2, 0, %d, 1, \"INT\"]", 1000000+i, i))
		links = append(links, fmt.Sprintf("[%d, %d, 0, %d, 0, \"LATENT\"]", 2000000+i, i, i+1))
		links = append(links, fmt.Sprintf("[%d, %d, 0, %d, 0, \"LATENT\"]", linkIn(i+2), i+1, i+2))
	}
	b.WriteString(`], "links": [` + strings.Join(links, ",") + `]}`)
	return []byte(b.String())
}

func linkIn(i int) int {
	if i == 3 {
		return 1
	}
	return 3000000 + i
}

func TestBigWorkflow(t *testing.T) {
	w, err := ParseWorkflow(bigWorkflow(1001))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ConvertWorkflow(w, testSchema)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.IDs) != 501 {
		t.Fatalf("nodes = %d", len(p.IDs))
	}
	last := p.Nodes["1001"]
	if l, ok := last.Inputs.Values["latent_image"].(Link); !ok || l.NodeID != "999" {
		t.Errorf("latent_image = %v", last.Inputs.Values["latent_image"])
	}
	if fmt.Sprint(last.Inputs.Values["seed"]) != "42" {
		t.Errorf("seed = %v", last.Inputs.Values["seed"])
	}
}

func BenchmarkConvertWorkflow10k(b *testing.B) {
	data := bigWorkflow(10001)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w, err := ParseWorkflow(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ConvertWorkflow(w, testSchema); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzConvertWorkflow(f *testing.F) {
	for _, name := range []string{"wf_worked.json", "wf_subgraph.json", "wf_nested.json"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version": 1, "nodes": [{"id": 1, "type": "KSampler", "widgets_values": {"seed": 1}}], "links": [{"id": 1, "origin_id": -10, "origin_slot": 0, "target_id": 1, "target_slot": 0}]}`))
	f.Add([]byte(`{"nodes": [{"id": "a", "type": "Reroute", "mode": 4, "inputs": [{"link": "1"}]}], "links": [[1, "a", "0", "a", 0]]}`))
	f.Add(bigWorkflow(9))
	f.Fuzz(func(t *testing.T, data []byte) {
		w, err := ParseWorkflow(data)
		if err != nil {
			return
		}
		p, err := ConvertWorkflowWith(w, testSchema, ConvertOptions{Now: fixedNow, Rand: rand.New(rand.NewSource(1))})
		if err != nil {
			return
		}
		out, err := p.MarshalJSON()
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		if _, err := ParsePrompt(out); err != nil {
			t.Fatalf("converted prompt does not re-parse: %v\n%s", err, out)
		}
		_, _ = ConvertWorkflow(w, nil)
	})
}

// The same subgraph workflow saved with a schema-1 root (link objects) converts identically.
func TestConvertSchema1RootWithSubgraph(t *testing.T) {
	a, err := convertString(t, readTestdata(t, "wf_subgraph.json"), testSchema)
	if err != nil {
		t.Fatal(err)
	}
	b, err := convertString(t, readTestdata(t, "wf_subgraph_v1.json"), testSchema)
	if err != nil {
		t.Fatal(err)
	}
	if a != b || !strings.Contains(b, `"12:1"`) {
		t.Errorf("schema 1 root differs:\n%s\n%s", a, b)
	}
}
