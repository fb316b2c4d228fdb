package sampling

import (
	"context"
	"fmt"
	"math"

	"github.com/comfygo/comfygo/internal/tensor"
)

// Request is one KSampler / KSamplerAdvanced run (nodes.py common_ksampler).
type Request struct {
	Sampler, Scheduler string
	Steps              int
	Denoise            float64 // KSamplerAdvanced: 1
	Seed               uint64
	DisableNoise       bool
	// StartStep and LastStep are KSamplerAdvanced's start_at_step / end_at_step (-1: unset).
	StartStep, LastStep int
	ForceFullDenoise    bool
	// LatentScale is the family's latent scale factor (process_in multiplies, process_out divides).
	LatentScale float64
	// Latent holds the input samples in VAE space [B,C,H,W].
	Latent     *tensor.Tensor
	BatchIndex []int
	// NoiseMask (optional): 1 = repaint, 0 = keep; any spatial size, [H,W], [B,H,W] or [B,1,H,W].
	NoiseMask *tensor.Tensor
	// Guider (optional) is the CFG guider behind model; the *_cfg_pp samplers need it to see
	// the uncond prediction (they then evaluate it even at cfg 1, as ComfyUI does).
	Guider *Guider
	// Callback, if set, is called after each step's model evaluation with the step index, the
	// total step count, x and the denoised estimate (model space).
	Callback func(step, total int, x, denoised *tensor.Tensor) error
}

// Sigmas returns the request's final sigma schedule (after denoise and start/end truncation);
// ok is false when there is nothing to sample.
func (r *Request) Sigmas(ms *ModelSampling) (sig []float64, ok bool, err error) {
	sig, err = KSamplerSigmas(ms, r.Scheduler, r.Sampler, r.Steps, r.Denoise)
	if err != nil {
		return nil, false, err
	}
	if len(sig) == 0 {
		return nil, false, nil
	}
	last := r.LastStep
	if last < 0 {
		last = math.MaxInt32
	}
	sig, ok = TruncateSigmas(sig, max(r.StartStep, 0), last, r.ForceFullDenoise)
	return sig, ok, nil
}

// Run executes the request with model (the CFG denoiser) and returns the output latent in VAE
// space (ComfyUI's KSampler output).
func Run(ctx context.Context, ms *ModelSampling, model Denoiser, r Request) (*tensor.Tensor, error) {
	if r.Latent == nil || len(r.Latent.Shape) != 4 {
		return nil, fmt.Errorf("ksampler: latent must be [B,C,H,W]")
	}
	if _, err := Sampler(r.Sampler); err != nil {
		return nil, err
	}
	scale := r.LatentScale
	if scale == 0 {
		scale = 1
	}
	sig, ok, err := r.Sigmas(ms)
	if err != nil {
		return nil, fmt.Errorf("ksampler: %w", err)
	}
	if !ok {
		return r.Latent.Clone(), nil
	}
	var noise *tensor.Tensor
	if r.DisableNoise {
		noise = tensor.New(r.Latent.Shape...)
	} else {
		noise = PrepareNoise(r.Latent.Shape, r.Seed, r.BatchIndex)
	}
	latent := r.Latent
	nonzero := false
	for _, v := range latent.Data {
		if v != 0 {
			nonzero = true
			break
		}
	}
	if nonzero {
		latent = comb(scale, latent)
	}
	var mask *tensor.Tensor
	if r.NoiseMask != nil {
		mask, err = PrepareMask(r.NoiseMask, latent.Shape)
		if err != nil {
			return nil, fmt.Errorf("ksampler: %w", err)
		}
		inpaintNoise := noise
		if r.Sampler == "ddim" {
			inpaintNoise = NewGenerator(r.Seed + 1).Randn(noise.Shape...)
		}
		model = InpaintDenoiser(ms, model, mask, latent, inpaintNoise)
	}
	x := ms.NoiseScaling(sig[0], noise, latent, ms.IsMaxDenoise(sig[0]))
	total := len(sig) - 1
	opt := Options{Seed: r.Seed, MS: ms}
	if needsUncond[r.Sampler] {
		if r.Guider == nil {
			return nil, fmt.Errorf("ksampler: sampler %q needs the CFG guider", r.Sampler)
		}
		g := *r.Guider
		var last *tensor.Tensor
		g.DisableCFG1 = true
		g.OnUncond = func(u *tensor.Tensor) { last = u }
		den := Denoiser(g.Denoise)
		if mask != nil {
			inpaintNoise := noise
			den = InpaintDenoiser(ms, den, mask, latent, inpaintNoise)
		}
		model = den
		opt.Uncond = func() *tensor.Tensor { return last }
	}
	if r.Callback != nil {
		opt.Callback = func(i int, x, d *tensor.Tensor) error { return r.Callback(i, total, x, d) }
	}
	out, err := Sample(ctx, r.Sampler, model, x, sig, opt)
	if err != nil {
		return nil, err
	}
	return comb(1/scale, out), nil
}

// InpaintDenoiser is KSamplerX0Inpaint: the keep region (mask 0) of x is replaced by the
// re-noised original latent before each evaluation and by the latent itself afterwards.
func InpaintDenoiser(ms *ModelSampling, inner Denoiser, mask, latent, noise *tensor.Tensor) Denoiser {
	return func(ctx context.Context, x *tensor.Tensor, sigma float64) (*tensor.Tensor, error) {
		keep := ms.NoiseScaling(sigma, noise, latent, false)
		xi := tensor.New(x.Shape...)
		for i, m := range mask.Data {
			xi.Data[i] = x.Data[i]*m + keep.Data[i]*(1-m)
		}
		out, err := inner(ctx, xi, sigma)
		if err != nil {
			return nil, err
		}
		res := tensor.New(out.Shape...)
		for i, m := range mask.Data {
			res.Data[i] = out.Data[i]*m + latent.Data[i]*(1-m)
		}
		return res, nil
	}
}

// PrepareMask is comfy.sampler_helpers.prepare_mask: bilinear resize (align_corners=False) of
// the mask to the latent's H,W, repeated over channels and batch.
func PrepareMask(m *tensor.Tensor, shape []int) (*tensor.Tensor, error) {
	if len(m.Shape) < 2 {
		return nil, fmt.Errorf("noise mask must have at least 2 dims, got %v", m.Shape)
	}
	mh, mw := m.Shape[len(m.Shape)-2], m.Shape[len(m.Shape)-1]
	mb := len(m.Data) / (mh * mw)
	B, C, H, W := shape[0], shape[1], shape[2], shape[3]
	rs := make([]float32, mb*H*W)
	sy, sx := float64(mh)/float64(H), float64(mw)/float64(W)
	for b := 0; b < mb; b++ {
		src := m.Data[b*mh*mw : (b+1)*mh*mw]
		for y := 0; y < H; y++ {
			fy := math.Max((float64(y)+0.5)*sy-0.5, 0)
			y0 := int(fy)
			y1 := min(y0+1, mh-1)
			ly := float32(fy - float64(y0))
			for x := 0; x < W; x++ {
				fx := math.Max((float64(x)+0.5)*sx-0.5, 0)
				x0 := int(fx)
				x1 := min(x0+1, mw-1)
				lx := float32(fx - float64(x0))
				top := src[y0*mw+x0]*(1-lx) + src[y0*mw+x1]*lx
				bot := src[y1*mw+x0]*(1-lx) + src[y1*mw+x1]*lx
				rs[(b*H+y)*W+x] = top*(1-ly) + bot*ly
			}
		}
	}
	out := tensor.New(B, C, H, W)
	for b := 0; b < B; b++ {
		mi := b % mb
		for c := 0; c < C; c++ {
			copy(out.Data[(b*C+c)*H*W:(b*C+c+1)*H*W], rs[mi*H*W:(mi+1)*H*W])
		}
	}
	return out, nil
}
