package models

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// Tiny model configurations (spec models.md §7).
var (
	// TinyUNetSD15 is "tiny UNet A": SD1-like, conv proj, fixed 2 heads, context 48.
	TinyUNetSD15 = UNetConfig{InChannels: 4, OutChannels: 4, ModelChannels: 32, ChannelMult: []int{1, 2},
		NumResBlocks: []int{2, 2}, TransformerDepth: []int{1, 1, 0, 0}, TransformerDepthOutput: []int{1, 1, 1, 0, 0, 0},
		TransformerDepthMiddle: 1, ContextDim: 48, NumHeads: 2, NumHeadChannels: -1}
	// TinyUNetSDXL is "tiny UNet B": SDXL-like, linear proj, 16-channel heads, context 112, adm 1600.
	TinyUNetSDXL = UNetConfig{InChannels: 4, OutChannels: 4, ModelChannels: 32, ChannelMult: []int{1, 2},
		NumResBlocks: []int{2, 2}, TransformerDepth: []int{0, 0, 2, 2}, TransformerDepthOutput: []int{0, 0, 0, 2, 2, 2},
		TransformerDepthMiddle: 2, ContextDim: 112, UseLinear: true, AdmInChannels: 64 + 6*256, NumHeads: -1, NumHeadChannels: 16}
	// TinyCLIPL is tiny-L (HF keys, quick_gelu): width 48, 3 layers, 3 heads.
	TinyCLIPL = CLIPConfig{Width: 48, Layers: 3, Heads: 3, MLP: 192, Vocab: 49408, Positions: 77}
	// TinyCLIPG is tiny-G (OpenCLIP keys, gelu): width 64, 3 layers, 4 heads.
	TinyCLIPG = CLIPConfig{Width: 64, Layers: 3, Heads: 4, MLP: 256, Vocab: 49408, Positions: 77, OpenCLIP: true}
	// TinyVAE is a 4-level (factor 8) VAE with ch 32.
	TinyVAE = VAEConfig{Ch: 32, ChMult: []int{1, 1, 2, 2}, NumResBlocks: 1, ZChannels: 4, EmbedDim: 4, InChannels: 3, OutCh: 3, HasQuantConv: true}

	// Full-size configurations, for gen-full benchmarks.
	FullUNetSD15 = UNetConfig{InChannels: 4, OutChannels: 4, ModelChannels: 320, ChannelMult: []int{1, 2, 4, 4},
		NumResBlocks: []int{2, 2, 2, 2}, TransformerDepth: []int{1, 1, 1, 1, 1, 1, 0, 0},
		TransformerDepthOutput: []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0}, TransformerDepthMiddle: 1, ContextDim: 768,
		NumHeads: 8, NumHeadChannels: -1}
	FullUNetSDXL = UNetConfig{InChannels: 4, OutChannels: 4, ModelChannels: 320, ChannelMult: []int{1, 2, 4},
		NumResBlocks: []int{2, 2, 2}, TransformerDepth: []int{0, 0, 2, 2, 10, 10},
		TransformerDepthOutput: []int{0, 0, 0, 2, 2, 2, 10, 10, 10}, TransformerDepthMiddle: 10, ContextDim: 2048,
		UseLinear: true, AdmInChannels: 2816, NumHeads: -1, NumHeadChannels: 64}
	FullCLIPL = CLIPConfig{Width: 768, Layers: 12, Heads: 12, MLP: 3072, Vocab: 49408, Positions: 77}
	FullCLIPG = CLIPConfig{Width: 1280, Layers: 32, Heads: 20, MLP: 5120, Vocab: 49408, Positions: 77, OpenCLIP: true}
	FullVAE   = VAEConfig{Ch: 128, ChMult: []int{1, 2, 4, 4}, NumResBlocks: 2, ZChannels: 4, EmbedDim: 4, InChannels: 3, OutCh: 3, HasQuantConv: true}
)

// Names of the files GenerateTiny writes, relative to the models directory.
const (
	TinySD15File       = "checkpoints/tiny-sd15.safetensors"
	TinySDXLFile       = "checkpoints/tiny-sdxl.safetensors"
	TinyLoRASD15File   = "loras/tiny-lcm-lora-sd15.safetensors"
	TinyLoRASDXLFile   = "loras/tiny-lcm-lora-sdxl.safetensors"
	TinyVAEFile        = "vae/tiny-vae.safetensors"
	TinyEmbeddingFile  = "embeddings/tiny-embedding.safetensors"
	TinyEmbeddingXL    = "embeddings/tiny-embedding-sdxl.safetensors"
	tinyLoRARank       = 4
	tinyLoRAAlpha      = 2
	fullLoRARank       = 64
	fullLoRAAlpha      = 64
	conditionerLPrefix = "conditioner.embedders.0.transformer.text_model."
	conditionerGPrefix = "conditioner.embedders.1.model."
	sd1ClipPrefix      = "cond_stage_model.transformer.text_model."
)

// GenOptions tune GenerateTiny / GenerateFull.
type GenOptions struct {
	// Seed changes every weight (default 0).
	Seed uint64
	// Only limits generation to the listed relative file names (nil = all).
	Only []string
}

func (o GenOptions) want(name string) bool {
	if len(o.Only) == 0 {
		return true
	}
	for _, n := range o.Only {
		if n == name {
			return true
		}
	}
	return false
}

// tensorSpec is one tensor to write with its generator.
type tensorSpec struct {
	name  string
	dtype safetensors.DType
	shape []int
	kind  ParamKind
	fanIn int
	std   float64 // overrides the kind's default when > 0
	// constant, when set, makes every element equal value (LoRA alphas).
	constant bool
	value    float64
}

func specsFrom(prefix string, ps []Param, dtype safetensors.DType) []tensorSpec {
	out := make([]tensorSpec, 0, len(ps))
	for _, p := range ps {
		fan := 1
		if len(p.Shape) >= 2 {
			for _, d := range p.Shape[1:] {
				fan *= d
			}
		}
		out = append(out, tensorSpec{name: prefix + p.Name, dtype: dtype, shape: p.Shape, kind: p.Kind, fanIn: fan})
	}
	return out
}

// fill writes the deterministic values of s (seeded by seed and the tensor name).
func (s tensorSpec) fill(seed uint64, w io.Writer) error {
	h := fnv.New64a()
	h.Write([]byte(s.name))
	rng := rand.New(rand.NewPCG(seed, h.Sum64()))
	n := tensor.Numel(s.shape)
	var std, mean float64
	switch s.kind {
	case KindWeight:
		std = 1 / math.Sqrt(float64(max(s.fanIn, 1)))
	case KindBias:
		std = 0.02
	case KindNormW:
		mean, std = 1, 0.05
	case KindNormB:
		std = 0.02
	case KindEmbed:
		std = 0.3
	case KindConstant:
		mean = 4.6052
	}
	if s.std > 0 {
		std = s.std
	}
	if s.constant {
		mean, std = s.value, 0
	}
	const chunk = 1 << 16
	buf := make([]byte, 0, chunk*4)
	for i := 0; i < n; {
		buf = buf[:0]
		for j := 0; j < chunk && i < n; j, i = j+1, i+1 {
			v := float32(mean + std*rng.NormFloat64())
			switch s.dtype {
			case safetensors.F32:
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			case safetensors.F16:
				buf = binary.LittleEndian.AppendUint16(buf, tensor.F32ToF16(v))
			default:
				return fmt.Errorf("unsupported dtype %s", s.dtype)
			}
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

func writeSpecs(path string, specs []tensorSpec, meta map[string]string, seed uint64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	raws := make([]safetensors.RawTensor, len(specs))
	byName := make(map[string]tensorSpec, len(specs))
	for i, s := range specs {
		raws[i] = safetensors.RawTensor{Name: s.name, DType: s.dtype, Shape: s.shape}
		byName[s.name] = s
	}
	return safetensors.WriteStream(path, raws, meta, safetensors.WriteOptions{}, func(t safetensors.RawTensor, w io.Writer) error {
		return byName[t.Name].fill(seed, w)
	})
}

// checkpointSpecs assembles a full checkpoint: UNet, VAE and text encoders under their prefixes.
func checkpointSpecs(u *UNetConfig, v *VAEConfig, l, g *CLIPConfig, xl bool, dt safetensors.DType) []tensorSpec {
	var s []tensorSpec
	s = append(s, specsFrom(UNetPrefix, UNetParams(u), dt)...)
	s = append(s, specsFrom(VAEPrefix, VAEParams(v), dt)...)
	if xl {
		s = append(s, specsFrom(conditionerLPrefix, CLIPParams(l), dt)...)
		s = append(s, specsFrom(conditionerGPrefix, CLIPParams(g), dt)...)
	} else {
		s = append(s, specsFrom(sd1ClipPrefix, CLIPParams(l), dt)...)
	}
	return s
}

// GenerateTiny writes the tiny test models (spec §7) under dir: tiny SD1.5- and SDXL-shaped
// checkpoints, LCM-LoRA-style LoRAs for both, a standalone VAE and embeddings. Weights are
// deterministic. It returns the paths written.
func GenerateTiny(dir string, opt GenOptions) ([]string, error) {
	type job struct {
		rel   string
		specs func() []tensorSpec
		meta  map[string]string
	}
	sd15Meta := map[string]string{"tiny.family": "SD15", "tiny.num_heads": strconv.Itoa(TinyUNetSD15.NumHeads),
		"tiny.clip_l.heads": strconv.Itoa(TinyCLIPL.Heads), "modelspec.architecture": "stable-diffusion-v1",
		"comment": "comfygo tiny SD1.5-shaped test checkpoint (random weights)"}
	sdxlMeta := map[string]string{"tiny.family": "SDXL", "tiny.num_head_channels": strconv.Itoa(TinyUNetSDXL.NumHeadChannels),
		"tiny.clip_l.heads": strconv.Itoa(TinyCLIPL.Heads), "tiny.clip_g.heads": strconv.Itoa(TinyCLIPG.Heads),
		"modelspec.architecture": "stable-diffusion-xl-v1-base",
		"comment":                "comfygo tiny SDXL-shaped test checkpoint (random weights)"}
	jobs := []job{
		{TinySD15File, func() []tensorSpec {
			return checkpointSpecs(&TinyUNetSD15, &TinyVAE, &TinyCLIPL, nil, false, safetensors.F16)
		}, sd15Meta},
		{TinySDXLFile, func() []tensorSpec {
			s := specsFrom(UNetPrefix, UNetParams(&TinyUNetSDXL), safetensors.F16)
			s = append(s, specsFrom(VAEPrefix, VAEParams(&TinyVAE), safetensors.F32)...)
			s = append(s, specsFrom(conditionerLPrefix, CLIPParams(&TinyCLIPL), safetensors.F16)...)
			s = append(s, specsFrom(conditionerGPrefix, CLIPParams(&TinyCLIPG), safetensors.F16)...)
			return s
		}, sdxlMeta},
		{TinyLoRASD15File, func() []tensorSpec {
			return loraSpecs(&TinyUNetSD15, tinyLoRARank, tinyLoRAAlpha)
		}, map[string]string{"ss_network_dim": "4", "ss_network_alpha": "2", "ss_base_model_version": "sd_v1"}},
		{TinyLoRASDXLFile, func() []tensorSpec {
			return loraSpecs(&TinyUNetSDXL, tinyLoRARank, tinyLoRAAlpha)
		}, map[string]string{"ss_network_dim": "4", "ss_network_alpha": "2", "ss_base_model_version": "sdxl_base_v1-0"}},
		{TinyVAEFile, func() []tensorSpec { return specsFrom("", VAEParams(&TinyVAE), safetensors.F32) }, nil},
		{TinyEmbeddingFile, func() []tensorSpec {
			return []tensorSpec{{name: "emb_params", dtype: safetensors.F32, shape: []int{2, TinyCLIPL.Width}, kind: KindEmbed}}
		}, nil},
		{TinyEmbeddingXL, func() []tensorSpec {
			return []tensorSpec{
				{name: "clip_l", dtype: safetensors.F32, shape: []int{2, TinyCLIPL.Width}, kind: KindEmbed},
				{name: "clip_g", dtype: safetensors.F32, shape: []int{2, TinyCLIPG.Width}, kind: KindEmbed},
			}
		}, nil},
	}
	var out []string
	for _, j := range jobs {
		if !opt.want(j.rel) {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(j.rel))
		if err := writeSpecs(p, j.specs(), j.meta, opt.Seed); err != nil {
			return out, fmt.Errorf("gen-tiny %s: %w", j.rel, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Names of the full-size random files GenerateFull writes under its directory.
const (
	FullSD15File     = "checkpoints/full-sd15-random.safetensors"
	FullSDXLFile     = "checkpoints/full-sdxl-random.safetensors"
	FullLoRASD15File = "loras/full-lcm-lora-sd15-random.safetensors"
	FullLoRASDXLFile = "loras/full-lcm-lora-sdxl-random.safetensors"
)

// GenerateFull writes SD1.5- and SDXL-sized random fp16 checkpoints and LCM-LoRA-sized LoRAs
// under dir (for benchmarks; several GB). Use opt.Only to pick files.
func GenerateFull(dir string, opt GenOptions) ([]string, error) {
	jobs := []struct {
		rel   string
		specs func() []tensorSpec
	}{
		{FullSD15File, func() []tensorSpec {
			return checkpointSpecs(&FullUNetSD15, &FullVAE, &FullCLIPL, nil, false, safetensors.F16)
		}},
		{FullSDXLFile, func() []tensorSpec {
			return checkpointSpecs(&FullUNetSDXL, &FullVAE, &FullCLIPL, &FullCLIPG, true, safetensors.F16)
		}},
		{FullLoRASD15File, func() []tensorSpec { return loraSpecs(&FullUNetSD15, fullLoRARank, fullLoRAAlpha) }},
		{FullLoRASDXLFile, func() []tensorSpec { return loraSpecs(&FullUNetSDXL, fullLoRARank, fullLoRAAlpha) }},
	}
	var out []string
	for _, j := range jobs {
		if !opt.want(j.rel) {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(j.rel))
		if err := writeSpecs(p, j.specs(), map[string]string{"comment": "comfygo random-weight benchmark model"}, opt.Seed); err != nil {
			return out, fmt.Errorf("gen-full %s: %w", j.rel, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// loraSpecs builds an LCM-LoRA-style file for UNet c: kohya names over diffusers module paths
// (lora_unet_<diffusers path>.lora_down.weight / .lora_up.weight / .alpha), covering every
// attention projection, proj_in/out, feed-forward, ResNet conv/time-emb/shortcut and
// down/upsampler conv, all F16 (spec §6.6).
func loraSpecs(c *UNetConfig, rank int, alpha float64) []tensorSpec {
	d2l := DiffusersUNetMap(c)
	shapes := map[string][]int{}
	for _, p := range UNetParams(c) {
		shapes[p.Name] = p.Shape
	}
	var s []tensorSpec
	for _, dn := range sortedKeys(d2l) {
		ldm := d2l[dn]
		if !loraTarget(dn) {
			continue
		}
		ws, ok := shapes[ldm+".weight"]
		if !ok {
			continue
		}
		key := "lora_unet_" + strings.ReplaceAll(dn, ".", "_")
		var down, up []int
		if len(ws) == 4 {
			down = []int{rank, ws[1], ws[2], ws[3]}
			up = []int{ws[0], rank, 1, 1}
		} else {
			down = []int{rank, ws[1]}
			up = []int{ws[0], rank}
		}
		fan := 1
		for _, x := range down[1:] {
			fan *= x
		}
		s = append(s,
			tensorSpec{name: key + ".lora_down.weight", dtype: safetensors.F16, shape: down, kind: KindWeight, fanIn: fan},
			tensorSpec{name: key + ".lora_up.weight", dtype: safetensors.F16, shape: up, kind: KindWeight, std: 0.05},
			tensorSpec{name: key + ".alpha", dtype: safetensors.F16, shape: []int{}, constant: true, value: alpha},
		)
	}
	return s
}

// loraTarget reports whether an LCM-LoRA covers diffusers module dn.
func loraTarget(dn string) bool {
	for _, suf := range []string{".to_q", ".to_k", ".to_v", ".to_out.0", ".proj_in", ".proj_out", ".ff.net.0.proj", ".ff.net.2",
		".conv1", ".conv2", ".conv_shortcut", ".time_emb_proj", ".conv"} {
		if strings.HasSuffix(dn, suf) {
			return !strings.HasPrefix(dn, "conv_in") && !strings.HasPrefix(dn, "conv_out")
		}
	}
	return false
}
