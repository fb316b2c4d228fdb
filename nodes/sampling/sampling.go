// Package sampling registers ComfyUI's sampling nodes: KSampler, KSamplerAdvanced,
// ModelSamplingDiscrete, LoraLoader and LoraLoaderModelOnly.
package sampling

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/comfygo/comfygo/internal/models"
	isampling "github.com/comfygo/comfygo/internal/sampling"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

func init() {
	nodes.Register(
		&nodes.Def{
			Name: "KSampler", DisplayName: "KSampler", Category: "sampling",
			Description: "Uses the provided model, positive and negative conditioning to denoise the latent image.",
			Required: []nodes.Input{
				{Name: "model", Type: nodes.TypeModel, Tooltip: "The model used for denoising the input latent."},
				seedInput("seed"),
				stepsInput(),
				cfgInput(),
				samplerInput(),
				schedulerInput(),
				{Name: "positive", Type: nodes.TypeCond, Tooltip: "The conditioning describing the attributes you want to include in the image."},
				{Name: "negative", Type: nodes.TypeCond, Tooltip: "The conditioning describing the attributes you want to exclude from the image."},
				{Name: "latent_image", Type: nodes.TypeLatent, Tooltip: "The latent image to denoise."},
				{Name: "denoise", Type: nodes.TypeFloat, Default: 1.0, Min: 0.0, Max: 1.0, Step: 0.01, Tooltip: "The amount of denoising applied, lower values will maintain the structure of the initial image allowing for image to image sampling."},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeLatent, Tooltip: "The denoised latent."}},
			Execute: executeKSampler,
		},
		&nodes.Def{
			Name: "KSamplerAdvanced", DisplayName: "KSampler (Advanced)", Category: "sampling",
			Required: []nodes.Input{
				{Name: "model", Type: nodes.TypeModel},
				{Name: "add_noise", Type: nodes.TypeCombo, Options: []string{"enable", "disable"}},
				seedInput("noise_seed"),
				stepsInput(),
				cfgInput(),
				samplerInput(),
				schedulerInput(),
				{Name: "positive", Type: nodes.TypeCond},
				{Name: "negative", Type: nodes.TypeCond},
				{Name: "latent_image", Type: nodes.TypeLatent},
				{Name: "start_at_step", Type: nodes.TypeInt, Default: 0, Min: 0, Max: 10000},
				{Name: "end_at_step", Type: nodes.TypeInt, Default: 10000, Min: 0, Max: 10000},
				{Name: "return_with_leftover_noise", Type: nodes.TypeCombo, Options: []string{"disable", "enable"}},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeLatent}},
			Execute: executeKSamplerAdvanced,
		},
		&nodes.Def{
			Name: "ModelSamplingDiscrete", DisplayName: "ModelSamplingDiscrete", Category: "advanced/model",
			Module: "comfy_extras.nodes_model_advanced",
			Required: []nodes.Input{
				{Name: "model", Type: nodes.TypeModel},
				{Name: "sampling", Type: nodes.TypeCombo, Options: isampling.Parameterizations},
				{Name: "zsnr", Type: nodes.TypeBoolean, Default: false},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeModel}},
			Execute: executeModelSamplingDiscrete,
		},
		&nodes.Def{
			Name: "LoraLoader", DisplayName: "Load LoRA", Category: "loaders",
			Description: "LoRAs are used to modify diffusion and CLIP models, altering the way in which latents are denoised such as applying styles. Multiple LoRA nodes can be linked together.",
			Required: []nodes.Input{
				{Name: "model", Type: nodes.TypeModel, Tooltip: "The diffusion model the LoRA will be applied to."},
				{Name: "clip", Type: nodes.TypeClip, Tooltip: "The CLIP model the LoRA will be applied to."},
				{Name: "lora_name", Type: nodes.TypeCombo, OptionsFunc: loraFiles, Tooltip: "The name of the LoRA."},
				strengthInput("strength_model", "How strongly to modify the diffusion model. This value can be negative."),
				strengthInput("strength_clip", "How strongly to modify the CLIP model. This value can be negative."),
			},
			Outputs: []nodes.Output{
				{Type: nodes.TypeModel, Tooltip: "The modified diffusion model."},
				{Type: nodes.TypeClip, Tooltip: "The modified CLIP model."},
			},
			Execute: executeLoraLoader,
		},
		&nodes.Def{
			Name: "LoraLoaderModelOnly", DisplayName: "LoraLoaderModelOnly", Category: "loaders",
			Description: "LoRAs are used to modify diffusion and CLIP models, altering the way in which latents are denoised such as applying styles. Multiple LoRA nodes can be linked together.",
			Required: []nodes.Input{
				{Name: "model", Type: nodes.TypeModel},
				{Name: "lora_name", Type: nodes.TypeCombo, OptionsFunc: loraFiles},
				strengthInput("strength_model", ""),
			},
			Outputs: []nodes.Output{{Type: nodes.TypeModel}},
			Execute: executeLoraLoaderModelOnly,
		},
	)
}

func seedInput(name string) nodes.Input {
	return nodes.Input{Name: name, Type: nodes.TypeInt, Default: 0, Min: 0, Max: uint64(math.MaxUint64),
		ControlAfterGenerate: true, Tooltip: "The random seed used for creating the noise."}
}

func stepsInput() nodes.Input {
	return nodes.Input{Name: "steps", Type: nodes.TypeInt, Default: 20, Min: 1, Max: 10000, Tooltip: "The number of steps used in the denoising process."}
}

func cfgInput() nodes.Input {
	return nodes.Input{Name: "cfg", Type: nodes.TypeFloat, Default: 8.0, Min: 0.0, Max: 100.0, Step: 0.1, Round: 0.01,
		Tooltip: "The Classifier-Free Guidance scale balances creativity and adherence to the prompt. Higher values result in images more closely matching the prompt however too high values will negatively impact quality."}
}

func samplerInput() nodes.Input {
	return nodes.Input{Name: "sampler_name", Type: nodes.TypeCombo, Options: isampling.SamplerNames,
		Tooltip: "The algorithm used when sampling, this can affect the quality, speed, and style of the generated output."}
}

func schedulerInput() nodes.Input {
	return nodes.Input{Name: "scheduler", Type: nodes.TypeCombo, Options: isampling.SchedulerNames,
		Tooltip: "The scheduler controls how noise is gradually removed to form the image."}
}

func strengthInput(name, tip string) nodes.Input {
	return nodes.Input{Name: name, Type: nodes.TypeFloat, Default: 1.0, Min: -100.0, Max: 100.0, Step: 0.01, Tooltip: tip}
}

// ---- ModelSamplingDiscrete ---------------------------------------------------------------

func executeModelSamplingDiscrete(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	m, err := modelInput(in)
	if err != nil {
		return nodes.Result{}, err
	}
	cur := m.Sampling()
	cfg := models.SamplingConfig{Type: in.String("sampling"), ZSNR: in.Bool("zsnr"),
		LinearStart: cur.LinearStart, LinearEnd: cur.LinearEnd, Timesteps: cur.Timesteps}
	if _, err := isampling.NewModelSampling(convertConfig(cfg)); err != nil {
		return nodes.Result{}, err
	}
	return nodes.Out(m.WithSampling(cfg))
}

func convertConfig(c models.SamplingConfig) isampling.Config {
	return isampling.Config{Type: c.Type, ZSNR: c.ZSNR, LinearStart: c.LinearStart, LinearEnd: c.LinearEnd, Timesteps: c.Timesteps}
}

func modelInput(in nodes.Inputs) (models.Model, error) {
	m, ok := in["model"].(models.Model)
	if !ok || m == nil {
		return nil, fmt.Errorf("input \"model\" is not a MODEL (got %T)", in["model"])
	}
	return m, nil
}

// ---- KSampler ----------------------------------------------------------------------------

func executeKSampler(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	return commonKSampler(ctx, in, isampling.Request{
		Seed: in.Uint64("seed"), Denoise: in.Float("denoise"), StartStep: -1, LastStep: -1,
	})
}

func executeKSamplerAdvanced(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	return commonKSampler(ctx, in, isampling.Request{
		Seed:             in.Uint64("noise_seed"),
		Denoise:          1.0,
		DisableNoise:     in.String("add_noise") == "disable",
		ForceFullDenoise: in.String("return_with_leftover_noise") != "enable",
		StartStep:        int(in.Int("start_at_step")),
		LastStep:         int(in.Int("end_at_step")),
	})
}

// Sample runs one KSampler request against a MODEL and conditionings and returns the output
// LATENT (other node packs may reuse it, e.g. for custom samplers).
func Sample(ctx *nodes.Context, model models.Model, positive, negative nodes.Conditioning, latent *nodes.Latent, cfg float64, req isampling.Request) (*nodes.Latent, error) {
	if latent == nil || latent.Samples == nil {
		return nil, errors.New("ksampler: latent_image has no samples")
	}
	fam := model.Family()
	if fam == nil {
		return nil, errors.New("ksampler: model has no family")
	}
	if ch := fam.LatentChannels; ch > 0 && len(latent.Samples.Shape) == 4 && latent.Samples.Shape[1] != ch {
		return nil, fmt.Errorf("ksampler: latent has %d channels but %s models use %d", latent.Samples.Shape[1], fam.Name, ch)
	}
	ms, err := isampling.NewModelSampling(convertConfig(model.Sampling()))
	if err != nil {
		return nil, fmt.Errorf("ksampler: %w", err)
	}
	if _, err := isampling.Sampler(req.Sampler); err != nil {
		return nil, fmt.Errorf("ksampler: %w", err)
	}
	samples := latent.Samples
	pos, err := convertConds(positive, fam, samples.Shape, ms, "positive")
	if err != nil {
		return nil, err
	}
	neg, err := convertConds(negative, fam, samples.Shape, ms, "negative")
	if err != nil {
		return nil, err
	}
	pos, neg = isampling.PairAreas(pos, neg)
	unet := func(c context.Context, call isampling.UNetCall) (*tensor.Tensor, error) {
		if err := c.Err(); err != nil {
			return nil, err
		}
		return model.Apply(c, models.UNetInput{X: call.X, Timesteps: call.Timesteps, Context: call.Context, Y: call.Y})
	}
	g := &isampling.Guider{MS: ms, UNet: unet, Positive: pos, Negative: neg, CFG: cfg}
	req.Guider = g
	req.Latent = samples
	req.BatchIndex = latent.BatchIndex
	req.NoiseMask = latent.NoiseMask
	req.LatentScale = fam.LatentScale
	req.Callback = func(step, total int, x, denoised *tensor.Tensor) error {
		return ctx.Progress(float64(step+1), float64(total), Preview(fam, denoised))
	}
	out, err := isampling.Run(ctx, ms, g.Denoise, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("ksampler: %w", err)
	}
	return &nodes.Latent{Samples: out, NoiseMask: latent.NoiseMask, BatchIndex: latent.BatchIndex}, nil
}

func commonKSampler(ctx *nodes.Context, in nodes.Inputs, req isampling.Request) (nodes.Result, error) {
	m, err := modelInput(in)
	if err != nil {
		return nodes.Result{}, err
	}
	pos, ok := in["positive"].(nodes.Conditioning)
	if !ok {
		return nodes.Result{}, fmt.Errorf("input \"positive\" is not CONDITIONING (got %T)", in["positive"])
	}
	neg, ok := in["negative"].(nodes.Conditioning)
	if !ok {
		return nodes.Result{}, fmt.Errorf("input \"negative\" is not CONDITIONING (got %T)", in["negative"])
	}
	lat := in.Latent("latent_image")
	if lat == nil {
		return nodes.Result{}, fmt.Errorf("input \"latent_image\" is not a LATENT (got %T)", in["latent_image"])
	}
	req.Sampler = in.String("sampler_name")
	req.Scheduler = in.String("scheduler")
	req.Steps = int(in.Int("steps"))
	out, err := Sample(ctx, m, pos, neg, lat, in.Float("cfg"), req)
	if err != nil {
		return nodes.Result{}, err
	}
	return nodes.Out(out)
}

func optFloat(o map[string]any, key string, def float64) float64 {
	switch v := o[key].(type) {
	case float64:
		return v
	case float32:
		return float64(v)
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case uint64:
		return float64(v)
	}
	return def
}

// convertConds turns CONDITIONING entries into the sampler's form: cross-attention, the SDXL
// ADM vector, area, strength, mask and timestep range.
func convertConds(c nodes.Conditioning, fam *models.Family, shape []int, ms *isampling.ModelSampling, promptType string) ([]isampling.Cond, error) {
	out := make([]isampling.Cond, 0, len(c))
	H, W := shape[2], shape[3]
	for i, e := range c {
		if e.Cond == nil {
			return nil, fmt.Errorf("%s conditioning entry %d has no tensor", promptType, i)
		}
		if fam.ContextDim > 0 && e.Cond.Shape[len(e.Cond.Shape)-1] != fam.ContextDim {
			return nil, fmt.Errorf("%s conditioning has width %d but this %s model expects %d (wrong CLIP for the model?)",
				promptType, e.Cond.Shape[len(e.Cond.Shape)-1], fam.Name, fam.ContextDim)
		}
		o := e.Options
		x := isampling.Cond{Cross: e.Cond}
		if s, ok := o["strength"]; ok && s != nil {
			x.Strength, x.HasStrength = optFloat(o, "strength", 1), true
		}
		switch a := o["area"].(type) {
		case [4]int:
			x.Area = &a
		case []any: // ("percentage", h, w, y, x) from ConditioningSetAreaPercentage
			if len(a) == 5 && a[0] == "percentage" {
				f := func(i int) float64 { return optFloat(map[string]any{"v": a[i]}, "v", 0) }
				r := [4]int{max(1, int(math.RoundToEven(f(1)*float64(H)))), max(1, int(math.RoundToEven(f(2)*float64(W)))),
					int(math.RoundToEven(f(3) * float64(H))), int(math.RoundToEven(f(4) * float64(W)))}
				x.Area = &r
			}
		}
		if m, ok := o["mask"].(*tensor.Tensor); ok && m != nil {
			mh, mw := m.Shape[len(m.Shape)-2], m.Shape[len(m.Shape)-1]
			mb := len(m.Data) / (mh * mw)
			pm, err := isampling.PrepareMask(m, []int{mb, 1, H, W})
			if err != nil {
				return nil, err
			}
			x.Mask = tensor.FromData(pm.Data, mb, H, W)
			x.MaskStrength = optFloat(o, "mask_strength", 1)
			if b, _ := o["set_area_to_bounds"].(bool); b {
				a := maskBounds(x.Mask)
				x.Area = &a
			}
		}
		if _, ok := o["start_percent"]; ok {
			x.SigmaStart = ms.PercentToSigma(optFloat(o, "start_percent", 0))
			x.SigmaEnd = ms.PercentToSigma(optFloat(o, "end_percent", 1))
			x.HasRange = true
		}
		if fam.AdmChannels > 0 {
			y, err := admVector(fam, e, H, W, promptType)
			if err != nil {
				return nil, err
			}
			x.Y = y
		}
		out = append(out, x)
	}
	return out, nil
}

// maskBounds is resolve_areas_and_cond_masks' set_area_to_bounds: the bounding box (h, w, y, x)
// of the mask's non-zero latent pixels over the batch, at least 8x8; (8, 8, 0, 0) when empty.
func maskBounds(m *tensor.Tensor) [4]int {
	B, H, W := m.Shape[0], m.Shape[1], m.Shape[2]
	x0, y0, x1, y1 := W, H, -1, -1
	for b := 0; b < B; b++ {
		for y := 0; y < H; y++ {
			for x := 0; x < W; x++ {
				if m.Data[(b*H+y)*W+x] != 0 {
					x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
				}
			}
		}
	}
	if x1 < 0 {
		return [4]int{8, 8, 0, 0}
	}
	return [4]int{max(8, y1-y0+1), max(8, x1-x0+1), y0, x0}
}

// admVector is SDXL's / the refiner's encode_adm: pooled output followed by 256-wide
// sinusoidal embeddings of the size (and aesthetic score) conditioning.
func admVector(fam *models.Family, e nodes.CondEntry, H, W int, promptType string) (*tensor.Tensor, error) {
	if e.Pooled == nil {
		return nil, fmt.Errorf("%s conditioning has no pooled output, which %s models need", promptType, fam.Name)
	}
	o := e.Options
	width := optFloat(o, "width", float64(W*8))
	height := optFloat(o, "height", float64(H*8))
	vals := []float64{height, width, optFloat(o, "crop_h", 0), optFloat(o, "crop_w", 0)}
	if fam.Name == "SDXLRefiner" {
		def := 6.0
		if promptType == "negative" {
			def = 2.5
		}
		vals = append(vals, optFloat(o, "aesthetic_score", def))
	} else {
		vals = append(vals, optFloat(o, "target_height", height), optFloat(o, "target_width", width))
	}
	P := e.Pooled.Shape[len(e.Pooled.Shape)-1]
	rows := len(e.Pooled.Data) / P
	total := P + 256*len(vals)
	if total != fam.AdmChannels {
		return nil, fmt.Errorf("%s conditioning: pooled width %d gives a %d-wide ADM vector, the model needs %d", promptType, P, total, fam.AdmChannels)
	}
	flat := make([]float32, 0, 256*len(vals))
	for _, v := range vals {
		flat = append(flat, models.TimestepEmbedding([]float32{float32(v)}, 256)...)
	}
	y := tensor.New(rows, total)
	for r := 0; r < rows; r++ {
		copy(y.Data[r*total:], e.Pooled.Data[r*P:(r+1)*P])
		copy(y.Data[r*total+P:], flat)
	}
	return y, nil
}

// Preview is ComfyUI's Latent2RGB previewer: the first batch row of a model-space latent
// projected with the family's latent_rgb_factors, mapped from [-1,1] to 8-bit RGB.
func Preview(fam *models.Family, x *tensor.Tensor) image.Image {
	if fam == nil || len(fam.LatentRGB) == 0 || x == nil || len(x.Shape) != 4 || x.Shape[1] != len(fam.LatentRGB) {
		return nil
	}
	C, H, W := x.Shape[1], x.Shape[2], x.Shape[3]
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	for y := 0; y < H; y++ {
		for xx := 0; xx < W; xx++ {
			var rgb [3]float32
			for k := 0; k < 3; k++ {
				s := fam.LatentRGBBias[k]
				for c := 0; c < C; c++ {
					s += x.Data[(c*H+y)*W+xx] * fam.LatentRGB[c][k]
				}
				v := (s + 1) / 2
				if v < 0 {
					v = 0
				}
				if v > 1 {
					v = 1
				}
				rgb[k] = v
			}
			img.SetRGBA(xx, y, color.RGBA{uint8(rgb[0] * 255), uint8(rgb[1] * 255), uint8(rgb[2] * 255), 255})
		}
	}
	return img
}
