package core

import (
	"fmt"
	"math"

	"github.com/comfygo/comfygo/internal/imageops"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

var latentUpscaleMethods = []string{"nearest-exact", "bilinear", "area", "bicubic", "bislerp"}
var cropMethods = []string{"disabled", "center"}

func init() {
	nodes.Register(
		&nodes.Def{
			Name: "EmptyLatentImage", DisplayName: "Empty Latent Image", Category: "latent",
			Description: "Create a new batch of empty latent images to be denoised via sampling.",
			Required: []nodes.Input{
				{Name: "width", Type: nodes.TypeInt, Default: 512, Min: 16, Max: maxResolution, Step: 8},
				{Name: "height", Type: nodes.TypeInt, Default: 512, Min: 16, Max: maxResolution, Step: 8},
				{Name: "batch_size", Type: nodes.TypeInt, Default: 1, Min: 1, Max: 4096},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeLatent}},
			Execute: emptyLatent,
		},
		&nodes.Def{
			Name: "LatentUpscale", DisplayName: "Upscale Latent", Category: "latent",
			Required: []nodes.Input{
				{Name: "samples", Type: nodes.TypeLatent},
				{Name: "upscale_method", Type: nodes.TypeCombo, Options: latentUpscaleMethods},
				{Name: "width", Type: nodes.TypeInt, Default: 512, Min: 0, Max: maxResolution, Step: 8},
				{Name: "height", Type: nodes.TypeInt, Default: 512, Min: 0, Max: maxResolution, Step: 8},
				{Name: "crop", Type: nodes.TypeCombo, Options: cropMethods},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeLatent}},
			Execute: latentUpscale,
		},
		&nodes.Def{
			Name: "LatentUpscaleBy", DisplayName: "Upscale Latent By", Category: "latent",
			Required: []nodes.Input{
				{Name: "samples", Type: nodes.TypeLatent},
				{Name: "upscale_method", Type: nodes.TypeCombo, Options: latentUpscaleMethods},
				{Name: "scale_by", Type: nodes.TypeFloat, Default: 1.5, Min: 0.01, Max: 8.0, Step: 0.01},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeLatent}},
			Execute: latentUpscaleBy,
		},
		&nodes.Def{
			Name: "LatentFromBatch", DisplayName: "Latent From Batch", Category: "latent/batch",
			Required: []nodes.Input{
				{Name: "samples", Type: nodes.TypeLatent},
				{Name: "batch_index", Type: nodes.TypeInt, Default: 0, Min: 0, Max: 63},
				{Name: "length", Type: nodes.TypeInt, Default: 1, Min: 1, Max: 64},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeLatent}},
			Execute: latentFromBatch,
		},
		&nodes.Def{
			Name: "RepeatLatentBatch", DisplayName: "Repeat Latent Batch", Category: "latent/batch",
			Required: []nodes.Input{
				{Name: "samples", Type: nodes.TypeLatent},
				{Name: "amount", Type: nodes.TypeInt, Default: 1, Min: 1, Max: 64},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeLatent}},
			Execute: repeatLatentBatch,
		},
	)
}

func emptyLatent(_ *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	w, h, b := int(in.Int("width")), int(in.Int("height")), int(in.Int("batch_size"))
	return nodes.Out(&nodes.Latent{Samples: tensor.New(b, 4, h/8, w/8)})
}

func latentInput(in nodes.Inputs, name string) (*nodes.Latent, error) {
	l := in.Latent(name)
	if l == nil || l.Samples == nil || len(l.Samples.Shape) != 4 {
		return nil, fmt.Errorf("input %q is not a latent [B,C,H,W]", name)
	}
	return l, nil
}

func latentUpscale(_ *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	l, err := latentInput(in, "samples")
	if err != nil {
		return nodes.Result{}, err
	}
	w, h := int(in.Int("width")), int(in.Int("height"))
	if w == 0 && h == 0 {
		return nodes.Out(l)
	}
	lh, lw := l.Samples.Shape[2], l.Samples.Shape[3]
	switch {
	case w == 0:
		h = max(64, h)
		w = max(64, int(math.RoundToEven(float64(lw)*float64(h)/float64(lh))))
	case h == 0:
		w = max(64, w)
		h = max(64, int(math.RoundToEven(float64(lh)*float64(w)/float64(lw))))
	default:
		w, h = max(64, w), max(64, h)
	}
	s, err := imageops.Upscale(l.Samples, w/8, h/8, in.String("upscale_method"), in.String("crop"))
	if err != nil {
		return nodes.Result{}, err
	}
	out := *l
	out.Samples = s
	return nodes.Out(&out)
}

func latentUpscaleBy(_ *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	l, err := latentInput(in, "samples")
	if err != nil {
		return nodes.Result{}, err
	}
	f := in.Float("scale_by")
	w := int(math.RoundToEven(float64(l.Samples.Shape[3]) * f))
	h := int(math.RoundToEven(float64(l.Samples.Shape[2]) * f))
	s, err := imageops.Upscale(l.Samples, w, h, in.String("upscale_method"), "disabled")
	if err != nil {
		return nodes.Result{}, err
	}
	out := *l
	out.Samples = s
	return nodes.Out(&out)
}

// batchSlice returns items [from, from+n) of a batched tensor.
func batchSlice(t *tensor.Tensor, from, n int) *tensor.Tensor {
	per := tensor.Numel(t.Shape[1:])
	shape := append([]int{n}, t.Shape[1:]...)
	return tensor.FromData(append([]float32(nil), t.Data[from*per:(from+n)*per]...), shape...)
}

// repeatBatch repeats a batched tensor's items to n items (cycling), like torch's repeat then cut.
func repeatBatch(t *tensor.Tensor, n int) *tensor.Tensor {
	per := tensor.Numel(t.Shape[1:])
	shape := append([]int{n}, t.Shape[1:]...)
	out := tensor.New(shape...)
	for i := 0; i < n; i++ {
		j := i % t.Shape[0]
		copy(out.Data[i*per:(i+1)*per], t.Data[j*per:(j+1)*per])
	}
	return out
}

func latentFromBatch(_ *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	l, err := latentInput(in, "samples")
	if err != nil {
		return nodes.Result{}, err
	}
	b := l.Samples.Shape[0]
	idx := min(b-1, int(in.Int("batch_index")))
	n := min(b-idx, int(in.Int("length")))
	out := &nodes.Latent{Samples: batchSlice(l.Samples, idx, n)}
	if m := l.NoiseMask; m != nil {
		if m.Shape[0] == 1 {
			out.NoiseMask = m.Clone()
		} else {
			if m.Shape[0] < b {
				m = repeatBatch(m, b)
			}
			out.NoiseMask = batchSlice(m, idx, n)
		}
	}
	if l.BatchIndex == nil {
		for i := idx; i < idx+n; i++ {
			out.BatchIndex = append(out.BatchIndex, i)
		}
	} else {
		end := min(len(l.BatchIndex), idx+n)
		out.BatchIndex = append([]int(nil), l.BatchIndex[min(idx, end):end]...)
	}
	return nodes.Out(out)
}

func repeatLatentBatch(_ *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	l, err := latentInput(in, "samples")
	if err != nil {
		return nodes.Result{}, err
	}
	amount := int(in.Int("amount"))
	b := l.Samples.Shape[0]
	out := &nodes.Latent{Samples: repeatBatch(l.Samples, b*amount), NoiseMask: l.NoiseMask}
	if m := l.NoiseMask; m != nil && m.Shape[0] > 1 {
		out.NoiseMask = repeatBatch(m, m.Shape[0]*amount)
	}
	if len(l.BatchIndex) > 0 {
		lo, hi := l.BatchIndex[0], l.BatchIndex[0]
		for _, v := range l.BatchIndex {
			lo, hi = min(lo, v), max(hi, v)
		}
		offset := hi - lo + 1
		out.BatchIndex = append([]int(nil), l.BatchIndex...)
		for i := 1; i < amount; i++ {
			for _, v := range l.BatchIndex {
				out.BatchIndex = append(out.BatchIndex, v+i*offset)
			}
		}
	}
	return nodes.Out(out)
}
