package textenc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// This file holds an independent, slow, pure-Go CLIP forward pass (written from the spec, reading
// checkpoint keys directly) used to check the ONNX graphs on random tiny encoders.

type refModel struct {
	f      *safetensors.File
	prefix string
	layout string
	heads  int
	act    string
}

func (m refModel) w(t testing.TB, key string) []float32 {
	t.Helper()
	x, err := m.f.Float32(m.prefix + key)
	if err != nil {
		t.Fatal(err)
	}
	return x.Data
}

// linear computes x[T,in]·W[out,in]ᵀ + b.
func linear(x []float32, T, in int, w, b []float32, out int) []float32 {
	y := make([]float32, T*out)
	for t := 0; t < T; t++ {
		for o := 0; o < out; o++ {
			s := float64(b[o])
			for i := 0; i < in; i++ {
				s += float64(x[t*in+i]) * float64(w[o*in+i])
			}
			y[t*out+o] = float32(s)
		}
	}
	return y
}

// forward returns the output of every layer for the 77 ids (embeds: optional replacement
// vectors per position).
func (m refModel) forward(t testing.TB, ids []int, embeds map[int][]float32) [][]float32 {
	const T = 77
	hf := m.layout == LayoutHF
	tokK, posK := "embeddings.token_embedding.weight", "embeddings.position_embedding.weight"
	if !hf {
		tokK, posK = "token_embedding.weight", "positional_embedding"
	}
	tok, pos := m.w(t, tokK), m.w(t, posK)
	D := len(pos) / 77
	x := make([]float32, T*D)
	for p := 0; p < T; p++ {
		src := tok[ids[p]*D : (ids[p]+1)*D]
		if v, ok := embeds[p]; ok {
			src = v
		}
		for i := 0; i < D; i++ {
			x[p*D+i] = src[i] + pos[p*D+i]
		}
	}
	H := m.heads
	hd := D / H
	var outs [][]float32
	for l := 0; ; l++ {
		var pre string
		if hf {
			pre = fmt.Sprintf("encoder.layers.%d.", l)
		} else {
			pre = fmt.Sprintf("transformer.resblocks.%d.", l)
		}
		if !m.f.Has(m.prefix + pre + map[bool]string{true: "layer_norm1.weight", false: "ln_1.weight"}[hf]) {
			break
		}
		var q, k, v, h []float32
		if hf {
			h = layerNorm(x, m.w(t, pre+"layer_norm1.weight"), m.w(t, pre+"layer_norm1.bias"), D)
			q = linear(h, T, D, m.w(t, pre+"self_attn.q_proj.weight"), m.w(t, pre+"self_attn.q_proj.bias"), D)
			k = linear(h, T, D, m.w(t, pre+"self_attn.k_proj.weight"), m.w(t, pre+"self_attn.k_proj.bias"), D)
			v = linear(h, T, D, m.w(t, pre+"self_attn.v_proj.weight"), m.w(t, pre+"self_attn.v_proj.bias"), D)
		} else {
			h = layerNorm(x, m.w(t, pre+"ln_1.weight"), m.w(t, pre+"ln_1.bias"), D)
			W, B := m.w(t, pre+"attn.in_proj_weight"), m.w(t, pre+"attn.in_proj_bias")
			q = linear(h, T, D, W[:D*D], B[:D], D)
			k = linear(h, T, D, W[D*D:2*D*D], B[D:2*D], D)
			v = linear(h, T, D, W[2*D*D:], B[2*D:], D)
		}
		att := make([]float32, T*D)
		for hh := 0; hh < H; hh++ {
			for i := 0; i < T; i++ {
				sc := make([]float64, i+1)
				mx := math.Inf(-1)
				for j := 0; j <= i; j++ {
					var s float64
					for d := 0; d < hd; d++ {
						s += float64(q[i*D+hh*hd+d]) * float64(k[j*D+hh*hd+d])
					}
					sc[j] = s / math.Sqrt(float64(hd))
					mx = math.Max(mx, sc[j])
				}
				var z float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					z += sc[j]
				}
				for d := 0; d < hd; d++ {
					var s float64
					for j := 0; j <= i; j++ {
						s += sc[j] / z * float64(v[j*D+hh*hd+d])
					}
					att[i*D+hh*hd+d] = float32(s)
				}
			}
		}
		var o, ln2w, ln2b, f1w, f1b, f2w, f2b []float32
		if hf {
			o = linear(att, T, D, m.w(t, pre+"self_attn.out_proj.weight"), m.w(t, pre+"self_attn.out_proj.bias"), D)
			ln2w, ln2b = m.w(t, pre+"layer_norm2.weight"), m.w(t, pre+"layer_norm2.bias")
			f1w, f1b, f2w, f2b = m.w(t, pre+"mlp.fc1.weight"), m.w(t, pre+"mlp.fc1.bias"), m.w(t, pre+"mlp.fc2.weight"), m.w(t, pre+"mlp.fc2.bias")
		} else {
			o = linear(att, T, D, m.w(t, pre+"attn.out_proj.weight"), m.w(t, pre+"attn.out_proj.bias"), D)
			ln2w, ln2b = m.w(t, pre+"ln_2.weight"), m.w(t, pre+"ln_2.bias")
			f1w, f1b, f2w, f2b = m.w(t, pre+"mlp.c_fc.weight"), m.w(t, pre+"mlp.c_fc.bias"), m.w(t, pre+"mlp.c_proj.weight"), m.w(t, pre+"mlp.c_proj.bias")
		}
		for i := range x {
			x[i] += o[i]
		}
		h = layerNorm(x, ln2w, ln2b, D)
		mlp := len(f1b)
		h = linear(h, T, D, f1w, f1b, mlp)
		for i, a := range h {
			if m.act == "quick_gelu" {
				h[i] = float32(float64(a) / (1 + math.Exp(-1.702*float64(a))))
			} else {
				h[i] = float32(0.5 * float64(a) * (1 + math.Erf(float64(a)/math.Sqrt2)))
			}
		}
		h = linear(h, T, mlp, f2w, f2b, D)
		for i := range x {
			x[i] += h[i]
		}
		outs = append(outs, append([]float32(nil), x...))
	}
	return outs
}

// writeTinyCLIP writes random tiny text encoders with real key layouts under the given prefixes
// (SDXL-shaped: tiny-L HF under the l prefix, tiny-G OpenCLIP under the g prefix).
func writeTinyCLIP(t testing.TB, path string, encs map[string]*models.CLIPConfig, seed uint64) {
	writeTinyCLIPAs(t, path, encs, seed, safetensors.F32)
}

func writeTinyCLIPAs(t testing.TB, path string, encs map[string]*models.CLIPConfig, seed uint64, dt safetensors.DType) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 7))
	ts := map[string]*tensor.Tensor{}
	prefixes := make([]string, 0, len(encs))
	for p := range encs {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	for _, prefix := range prefixes {
		c := encs[prefix]
		for _, p := range models.CLIPParams(c) {
			x := tensor.New(p.Shape...)
			for i := range x.Data {
				n := float32(r.NormFloat64())
				switch p.Kind {
				case models.KindWeight:
					x.Data[i] = 0.08 * n
				case models.KindBias:
					x.Data[i] = 0.05 * n
				case models.KindNormW:
					x.Data[i] = 1 + 0.1*n
				case models.KindNormB:
					x.Data[i] = 0.1 * n
				case models.KindEmbed:
					x.Data[i] = 0.5 * n
				default:
					x.Data[i] = 4.6
				}
			}
			ts[prefix+p.Name] = x
		}
	}
	if err := safetensors.WriteFloat32(path, ts, dt, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
}
