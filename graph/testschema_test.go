package graph

import (
	"testing"
)

// testSchema is a small fake of the node registry, shaped like ComfyUI's definitions.
var testSchema = SchemaMap{
	"CheckpointLoaderSimple": {DisplayName: "Load Checkpoint", Outputs: []string{"MODEL", "CLIP", "VAE"}, Inputs: []SchemaInput{
		{Name: "ckpt_name", Type: "COMBO", Widget: true, Options: []string{"a.safetensors", "b.safetensors"}},
	}},
	"LoraLoader": {DisplayName: "Load LoRA", Outputs: []string{"MODEL", "CLIP"}, Inputs: []SchemaInput{
		{Name: "model", Type: "MODEL"},
		{Name: "clip", Type: "CLIP"},
		{Name: "lora_name", Type: "COMBO", Widget: true, Options: []string{"l.safetensors"}},
		{Name: "strength_model", Type: "FLOAT", Widget: true, Default: 1.0},
		{Name: "strength_clip", Type: "FLOAT", Widget: true, Default: 1.0},
	}},
	"CLIPTextEncode": {DisplayName: "CLIP Text Encode (Prompt)", Outputs: []string{"CONDITIONING"}, Inputs: []SchemaInput{
		{Name: "text", Type: "STRING", Widget: true, DynamicPrompts: true},
		{Name: "clip", Type: "CLIP"},
	}},
	"KSampler": {DisplayName: "KSampler", Outputs: []string{"LATENT"}, Inputs: []SchemaInput{
		{Name: "model", Type: "MODEL"},
		{Name: "seed", Type: "INT", Widget: true, ControlAfterGenerate: true},
		{Name: "steps", Type: "INT", Widget: true, Default: 20},
		{Name: "cfg", Type: "FLOAT", Widget: true, Default: 8.0},
		{Name: "sampler_name", Type: "COMBO", Widget: true, Options: []string{"euler", "lcm"}},
		{Name: "scheduler", Type: "COMBO", Widget: true, Options: []string{"normal", "sgm_uniform"}},
		{Name: "positive", Type: "CONDITIONING"},
		{Name: "negative", Type: "CONDITIONING"},
		{Name: "latent_image", Type: "LATENT"},
		{Name: "denoise", Type: "FLOAT", Widget: true, Default: 1.0},
	}},
	"KSamplerAdvanced": {DisplayName: "KSampler (Advanced)", Outputs: []string{"LATENT"}, Inputs: []SchemaInput{
		{Name: "model", Type: "MODEL"},
		{Name: "add_noise", Type: "COMBO", Widget: true, Options: []string{"enable", "disable"}},
		{Name: "noise_seed", Type: "INT", Widget: true}, // control by the name rule
		{Name: "steps", Type: "INT", Widget: true, Default: 20},
		{Name: "cfg", Type: "FLOAT", Widget: true, Default: 8.0},
		{Name: "sampler_name", Type: "COMBO", Widget: true, Options: []string{"euler", "lcm"}},
		{Name: "scheduler", Type: "COMBO", Widget: true, Options: []string{"normal", "sgm_uniform"}},
		{Name: "positive", Type: "CONDITIONING"},
		{Name: "negative", Type: "CONDITIONING"},
		{Name: "latent_image", Type: "LATENT"},
		{Name: "start_at_step", Type: "INT", Widget: true},
		{Name: "end_at_step", Type: "INT", Widget: true, Default: 10000},
		{Name: "return_with_leftover_noise", Type: "COMBO", Widget: true, Options: []string{"disable", "enable"}},
	}},
	"EmptyLatentImage": {DisplayName: "Empty Latent Image", Outputs: []string{"LATENT"}, Inputs: []SchemaInput{
		{Name: "width", Type: "INT", Widget: true, Default: 512},
		{Name: "height", Type: "INT", Widget: true, Default: 512},
		{Name: "batch_size", Type: "INT", Widget: true, Default: 1},
	}},
	"VAEDecode": {DisplayName: "VAE Decode", Outputs: []string{"IMAGE"}, Inputs: []SchemaInput{
		{Name: "samples", Type: "LATENT"},
		{Name: "vae", Type: "VAE"},
	}},
	"SaveImage": {DisplayName: "Save Image", OutputNode: true, Inputs: []SchemaInput{
		{Name: "images", Type: "IMAGE"},
		{Name: "filename_prefix", Type: "STRING", Widget: true, Default: "ComfyUI"},
	}},
	"SaveLatent": {OutputNode: true, Inputs: []SchemaInput{
		{Name: "samples", Type: "LATENT"},
		{Name: "filename_prefix", Type: "STRING", Widget: true, Default: "latents/ComfyUI"},
	}},
	"LoadImage": {DisplayName: "Load Image", Outputs: []string{"IMAGE", "MASK"}, Inputs: []SchemaInput{
		{Name: "image", Type: "COMBO", Widget: true, ImageUpload: true, Options: []string{"example.png"}},
	}},
	"LoadImageMask": {DisplayName: "Load Image (as Mask)", Outputs: []string{"MASK"}, Inputs: []SchemaInput{
		{Name: "image", Type: "COMBO", Widget: true, ImageUpload: true, Options: []string{"example.png"}},
		{Name: "channel", Type: "COMBO", Widget: true, Options: []string{"alpha", "red"}},
	}},
	"ImageScale": {DisplayName: "Upscale Image", Outputs: []string{"IMAGE"}, Inputs: []SchemaInput{
		{Name: "image", Type: "IMAGE"},
		{Name: "upscale_method", Type: "COMBO", Widget: true, Options: []string{"nearest-exact", "bilinear"}},
		{Name: "width", Type: "INT", Widget: true, Default: 512},
		{Name: "height", Type: "INT", Widget: true, Default: 512},
		{Name: "crop", Type: "COMBO", Widget: true, Options: []string{"disabled", "center"}},
	}},
	// A custom node whose "seed" has control_after_generate: false.
	"SeedGen": {DisplayName: "Seed Generator", Outputs: []string{"INT"}, Inputs: []SchemaInput{
		{Name: "seed", Type: "INT", Widget: true, NoControlAfterGenerate: true},
		{Name: "count", Type: "INT", Widget: true, Default: 1},
	}},
	// A custom node with a forceInput STRING and one saving widgets_values as an object.
	"StringConcat": {Outputs: []string{"STRING"}, Inputs: []SchemaInput{
		{Name: "a", Type: "STRING", ForceInput: true},
		{Name: "b", Type: "STRING", Widget: true},
	}},
	"DictNode": {Outputs: []string{"FLOAT"}, Inputs: []SchemaInput{
		{Name: "mode", Type: "COMBO", Widget: true, Options: []string{"a", "b"}},
		{Name: "amount", Type: "FLOAT", Widget: true, Default: 0.25},
		{Name: "extra", Type: "STRING", Widget: true, Optional: true, Default: "x"},
	}},
	"ListNode": {Outputs: []string{"FLOAT"}, Inputs: []SchemaInput{
		{Name: "curve", Type: "CURVE", Widget: true},
		{Name: "tags", Type: "COMBO", Widget: true, Options: []string{"a", "b", "c"}},
	}},
}

func TestSchemaMap(t *testing.T) {
	if _, ok := testSchema.NodeSchema("KSampler"); !ok {
		t.Fatal("KSampler missing")
	}
	if _, ok := testSchema.NodeSchema("Nope"); ok {
		t.Fatal("unexpected Nope")
	}
}
