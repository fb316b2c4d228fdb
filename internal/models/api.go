// Package models holds Stable Diffusion model families and the MODEL, CLIP and VAE values that
// flow between nodes. The interfaces below are the contract between the model loaders (UNet,
// VAE, detection), the text encoders, LoRA patching and the samplers.
//
// Entry points (the rest of the package implements them):
//   - Detect / DetectUNet / DetectVAE: family and configs from a checkpoint's key/shape table
//     (ComfyUI's model_detection + supported_models); Header / HeaderFromFile adapt a file.
//   - Manager (NewManager with ORTFactory): LoadCheckpoint → Checkpoint{Family, Model, VAE, File},
//     LoadVAE; a session cache per (component, static shape, patch set) with a memory budget.
//   - BuildUNet / BuildVAEDecoder / BuildVAEEncoder: the networks as shape-static graphs (Net),
//     lowered to ONNX with weights as external data in the checkpoint (Net.Lower).
//   - GenerateTiny / GenerateFull: deterministic tiny test models and full-size random ones.
//   - TimestepEmbedding: the UNet's sinusoidal embedding (also used for SDXL's size vector).
package models

import (
	"context"

	"github.com/comfygo/comfygo/internal/tensor"
)

// SamplingConfig is the model-sampling choice a MODEL carries (ModelSamplingDiscrete):
// Type is "eps", "v_prediction", "lcm", "x0" or "img_to_img"; ZSNR rescales to zero terminal SNR.
type SamplingConfig struct {
	Type string
	ZSNR bool
	// LinearStart, LinearEnd, Timesteps describe the beta schedule (SD defaults 0.00085, 0.012, 1000).
	LinearStart, LinearEnd float64
	Timesteps              int
}

// Patch is one adapter contribution to one checkpoint weight (a LoRA, LoCon, LoHa or LoKr module).
type Patch interface {
	// Delta returns the weight delta for a weight of the given shape, scaled by the adapter's own
	// alpha/rank but not by the user's strength.
	Delta(shape []int) (*tensor.Tensor, error)
}

// LowRank is optionally implemented by a Patch that is a plain low-rank product,
// Delta = Scale·reshape(Up·Down) with Up [out,r(,1,1)] and Down [r,in(,kh,kw)]. The Manager
// merges such patches from the factors with a tiled kernel (AddLowRankF16/F32) straight into
// the weight's dtype, without forming the full-size delta.
type LowRank interface {
	Factors() (up, down *tensor.Tensor, scale float64)
}

// WeightPatch is a Patch applied with a strength: W' = W + Strength·Delta.
type WeightPatch struct {
	Patch    Patch
	Strength float64
	Source   string // e.g. the LoRA file name, for cache keys and messages
}

// Patches maps checkpoint state-dict keys (e.g. "model.diffusion_model.input_blocks.1.1.proj_in.weight")
// to the patches applied to them, in order.
type Patches map[string][]WeightPatch

// UNetInput is one batched UNet evaluation.
type UNetInput struct {
	X         *tensor.Tensor // [B,C,H,W], already scaled by c_in
	Timesteps []float32      // [B]
	Context   *tensor.Tensor // [B,T,D] cross-attention conditioning
	Y         *tensor.Tensor // [B,adm] (SDXL) or nil
}

// Model is the MODEL value: a diffusion model with its patches and model sampling. Values are
// immutable: the With* methods return modified copies that share loaded weights.
type Model interface {
	Family() *Family
	Sampling() SamplingConfig
	WithSampling(SamplingConfig) Model
	// Keys lists the model's state-dict keys, as LoRA key mapping needs them.
	Keys() []string
	WithPatches(Patches) Model // adds to the existing patches
	// Apply runs the raw network (eps / v output) on one batch.
	Apply(ctx context.Context, in UNetInput) (*tensor.Tensor, error)
}

// Encoded is a text encoder's output for one prompt: the cross-attention tensor [1,T,D]
// (T a multiple of 77) and the pooled vector [1,P] (nil where the family has none).
type Encoded struct {
	Cond   *tensor.Tensor
	Pooled *tensor.Tensor
}

// CLIP is the CLIP value: the family's tokenizer(s) and text encoder(s).
type CLIP interface {
	Family() *Family
	Keys() []string
	WithPatches(Patches) CLIP
	// WithLastLayer sets CLIPSetLastLayer's stop_at_clip_layer (-1 = last, -2 = penultimate, ...).
	WithLastLayer(layer int) CLIP
	// Encode tokenizes text with ComfyUI's prompt syntax (weights, embeddings, chunking) and
	// encodes it. Options carry e.g. SDXL's per-encoder texts ("clip_l", "clip_g").
	Encode(ctx context.Context, text string, opts map[string]string) (Encoded, error)
}

// VAE is the VAE value. Images are [B,H,W,3] in 0..1; latents are first-stage latents
// [B,C,H/8,W/8] (no scale factor applied: samplers apply Family().LatentScale themselves).
type VAE interface {
	Decode(ctx context.Context, latent *tensor.Tensor) (*tensor.Tensor, error)
	Encode(ctx context.Context, image *tensor.Tensor) (*tensor.Tensor, error)
	LatentChannels() int
	Downscale() int // 8
}

// Family describes a model family (SD1.x, SD2.x, SDXL, SDXL refiner) as ComfyUI's
// supported_models does. The model-loading code fills it; others read it.
type Family struct {
	Name           string  // "SD15", "SD20", "SD21UnclipH", "SDXL", "SDXLRefiner", ...
	LatentChannels int     // 4
	LatentScale    float64 // 0.18215 (SD1/2), 0.13025 (SDXL)
	Prediction     string  // default model sampling: "eps" or "v_prediction"
	ContextDim     int     // 768, 1024, 2048, 1280
	AdmChannels    int     // 0, 2816 (SDXL), 2560 (refiner)
	// LatentRGB is the latent-to-RGB projection used for previews: LatentRGB[c] = [r,g,b] weights,
	// and LatentRGBBias the bias.
	LatentRGB     [][3]float32
	LatentRGBBias [3]float32

	// Fields below are filled by detection (Detect / LoadCheckpoint).

	UNet         *UNetConfig       // structural UNet config incl. heads; nil for VAE-only files
	VAE          *VAEConfig        // nil when the file has no VAE
	TextEncoders []TextEncoderSpec // the family's text encoders, in ComfyUI's order (l before g)
	Sampling     SamplingConfig    // default model sampling (Type = Prediction, SD beta schedule)
	Inpaint      bool              // 9-channel inpainting UNet
	// Hints are tiny-model / sidecar hints from the checkpoint's __metadata__ ("tiny.*" keys), e.g.
	// "tiny.clip_l.heads"; empty for real checkpoints.
	Hints map[string]string
}
