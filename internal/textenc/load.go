package textenc

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/safetensors"
)

// Checkpoint key prefixes of the text encoders (spec §2.1/§2.2), used when the family carries no
// TextEncoders list.
var checkpointPrefixes = map[string][]models.TextEncoderSpec{
	KindSD1:     {{Name: "clip_l", Prefix: "cond_stage_model.transformer.text_model.", Layout: LayoutHF}},
	KindSD2:     {{Name: "clip_h", Prefix: "cond_stage_model.model.", Layout: LayoutOpenCLIP}},
	KindSDXL:    {{Name: "clip_l", Prefix: "conditioner.embedders.0.transformer.text_model.", Layout: LayoutHF}, {Name: "clip_g", Prefix: "conditioner.embedders.1.model.", Layout: LayoutOpenCLIP}},
	KindRefiner: {{Name: "clip_g", Prefix: "conditioner.embedders.0.model.", Layout: LayoutOpenCLIP}},
}

// kindOf maps a family to a CLIP kind from its text encoders (or its name).
func kindOf(fam *models.Family) (string, error) {
	names := make([]string, 0, len(fam.TextEncoders))
	for _, te := range fam.TextEncoders {
		names = append(names, te.Name)
	}
	switch strings.Join(names, ",") {
	case "clip_l":
		return KindSD1, nil
	case "clip_h":
		return KindSD2, nil
	case "clip_l,clip_g":
		return KindSDXL, nil
	case "clip_g":
		return KindRefiner, nil
	case "":
	default:
		return "", fmt.Errorf("clip: family %s has unsupported text encoders %v", fam.Name, names)
	}
	n := strings.ToUpper(fam.Name)
	switch {
	case strings.HasPrefix(n, "SDXLREFINER"):
		return KindRefiner, nil
	case strings.HasPrefix(n, "SDXL"):
		return KindSDXL, nil
	case strings.HasPrefix(n, "SD2"):
		return KindSD2, nil
	case strings.HasPrefix(n, "SD1"):
		return KindSD1, nil
	}
	return "", fmt.Errorf("clip: family %q has no text encoders comfygo supports", fam.Name)
}

func roleFor(kind, name string) Role {
	switch {
	case kind == KindSD1:
		return RoleSD1L
	case kind == KindSD2:
		return RoleSD2H
	case kind == KindSDXL && name == "clip_l":
		return RoleSDXLL
	default:
		return RoleSDXLG
	}
}

// FromCheckpoint builds the CLIP of a checkpoint (CheckpointLoaderSimple) from its open file and
// detected family. f must stay open while the CLIP is used.
func FromCheckpoint(f *safetensors.File, fam *models.Family, opts Options) (*CLIP, error) {
	if fam == nil {
		return nil, fmt.Errorf("clip: no model family")
	}
	kind, err := kindOf(fam)
	if err != nil {
		return nil, err
	}
	specs := fam.TextEncoders
	if len(specs) == 0 {
		specs = checkpointPrefixes[kind]
	}
	var encs []*Encoder
	for _, s := range specs {
		layout := s.Layout
		if layout == "" {
			layout = LayoutHF
			if s.Name != "clip_l" {
				layout = LayoutOpenCLIP
			}
		}
		prefix, err := locatePrefix(f, s.Prefix, layout)
		if err != nil {
			return nil, fmt.Errorf("clip: %s: %w", s.Name, err)
		}
		role := roleFor(kind, s.Name)
		role.Name = s.Name
		heads := s.Heads
		if v, err := strconv.Atoi(fam.Hints["tiny."+s.Name+".heads"]); err == nil && v > 0 {
			heads = v
		}
		e, err := NewEncoder(f, prefix, layout, role, heads, opts.Runtime)
		if err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
		encs = append(encs, e)
	}
	return newCLIP(fam, kind, encs, opts)
}

// locatePrefix checks the expected prefix and the variants ComfyUI accepts (SD1 keys without
// "text_model.", SD2 in the sgm "conditioner.embedders.0.model." layout).
func locatePrefix(f *safetensors.File, prefix, layout string) (string, error) {
	probe := "embeddings.token_embedding.weight"
	if layout == LayoutOpenCLIP {
		probe = "token_embedding.weight"
	}
	cands := []string{prefix}
	if layout == LayoutHF && strings.HasSuffix(prefix, "text_model.") {
		cands = append(cands, strings.TrimSuffix(prefix, "text_model."))
	}
	if prefix == "cond_stage_model.model." {
		cands = append(cands, "conditioner.embedders.0.model.")
	}
	for _, p := range cands {
		if f.Has(p + probe) {
			return p, nil
		}
	}
	return "", fmt.Errorf("no text encoder tensors under %q in %s", prefix, f.Path())
}

// Standalone files (CLIPLoader / DualCLIPLoader): find the encoder inside a file.
type found struct {
	f      *safetensors.File
	prefix string
	layout string
	layers int
	width  int
}

func detectFile(f *safetensors.File) (found, error) {
	keys := f.Keys()
	for _, k := range keys {
		if p, ok := strings.CutSuffix(k, "embeddings.token_embedding.weight"); ok {
			return describe(f, p, LayoutHF)
		}
	}
	for _, k := range keys {
		if p, ok := strings.CutSuffix(k, "transformer.resblocks.0.ln_1.weight"); ok && f.Has(p+"token_embedding.weight") {
			return describe(f, p, LayoutOpenCLIP)
		}
	}
	return found{}, fmt.Errorf("clip: %s holds no CLIP text encoder (no token embedding)", f.Path())
}

func describe(f *safetensors.File, prefix, layout string) (found, error) {
	fd := found{f: f, prefix: prefix, layout: layout}
	tok := "embeddings.token_embedding.weight"
	if layout == LayoutOpenCLIP {
		tok = "token_embedding.weight"
	}
	if info, ok := f.Info(prefix + tok); ok && len(info.Shape) == 2 {
		fd.width = info.Shape[1]
	}
	fd.layers = countLayers(f, prefix)
	return fd, nil
}

// role of a standalone encoder, as upstream's detect_te_model: 32 layers = bigG, 24 = ViT-H,
// else CLIP-L (tiny test files: OpenCLIP layout counts as bigG).
func (fd found) clipName() string {
	switch {
	case fd.layers > 30:
		return "clip_g"
	case fd.layers > 22:
		return "clip_h"
	case fd.layout == LayoutOpenCLIP:
		return "clip_g"
	}
	return "clip_l"
}

// FromFiles builds the CLIP of standalone text-encoder files (CLIPLoader: one file, type
// "stable_diffusion" — CLIP-L gives SD1, ViT-H SD2, bigG the refiner's; DualCLIPLoader: two
// files, type "sdxl" — CLIP-L and bigG in either order). Files must stay open while used.
func FromFiles(files []*safetensors.File, typ string, opts Options) (*CLIP, error) {
	var fds []found
	for _, f := range files {
		fd, err := detectFile(f)
		if err != nil {
			return nil, err
		}
		fds = append(fds, fd)
	}
	heads := func(fd found, name string) int {
		if v, err := strconv.Atoi(fd.f.Metadata()["tiny."+name+".heads"]); err == nil && v > 0 {
			return v
		}
		return 0
	}
	mk := func(fd found, kind, name string) (*Encoder, error) {
		role := roleFor(kind, name)
		role.Name = name
		return NewEncoder(fd.f, fd.prefix, fd.layout, role, heads(fd, name), opts.Runtime)
	}
	switch {
	case len(fds) == 1 && (typ == "stable_diffusion" || typ == "sd1" || typ == ""):
		fd := fds[0]
		name := fd.clipName()
		kind := map[string]string{"clip_l": KindSD1, "clip_h": KindSD2, "clip_g": KindRefiner}[name]
		e, err := mk(fd, kind, name)
		if err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
		fam := standaloneFamily(kind, []*Encoder{e})
		return newCLIP(fam, kind, []*Encoder{e}, opts)
	case len(fds) == 2 && typ == "sdxl":
		a, b := fds[0], fds[1]
		// bigG by layer count, else by layout, else the wider one.
		isG := func(x, y found) bool {
			if x.clipName() != y.clipName() {
				return x.clipName() == "clip_g"
			}
			return x.width > y.width
		}
		if isG(a, b) {
			a, b = b, a
		}
		el, err := mk(a, KindSDXL, "clip_l")
		if err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
		eg, err := mk(b, KindSDXL, "clip_g")
		if err != nil {
			return nil, fmt.Errorf("clip: %w", err)
		}
		encs := []*Encoder{el, eg}
		return newCLIP(standaloneFamily(KindSDXL, encs), KindSDXL, encs, opts)
	}
	return nil, fmt.Errorf("clip: type %q with %d file(s) is not supported (comfygo supports stable_diffusion with one file and sdxl with two)", typ, len(fds))
}

// standaloneFamily describes the family a standalone CLIP conditions.
func standaloneFamily(kind string, encs []*Encoder) *models.Family {
	name := map[string]string{KindSD1: "SD15", KindSD2: "SD20", KindSDXL: "SDXL", KindRefiner: "SDXLRefiner"}[kind]
	fam := &models.Family{Name: name}
	for _, e := range encs {
		fam.ContextDim += e.D
		fam.TextEncoders = append(fam.TextEncoders, models.TextEncoderSpec{Name: e.Role.Name, Prefix: e.prefix, Heads: e.Heads, Layout: e.layout})
	}
	return fam
}
