package lora

import (
	"fmt"
	"hash/fnv"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// File is a LoRA file read into memory (all tensors as float32; LoRA files are small).
type File struct {
	Name     string
	Tensors  map[string]*tensor.Tensor
	Metadata map[string]string

	mu   sync.Mutex
	memo map[uint64]matchResult // per key map: the same Patch values on every Apply
}

type matchResult struct {
	mods []Module
	used map[string]bool
}

// Open reads the adapter file at path.
func Open(path string) (*File, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load lora %q: %w", filepath.Base(path), err)
	}
	defer f.Close()
	lf := &File{Name: filepath.Base(path), Tensors: map[string]*tensor.Tensor{}, Metadata: map[string]string{}}
	for k, v := range f.Metadata() {
		lf.Metadata[k] = v
	}
	for _, k := range f.Keys() {
		t, err := f.Float32(k)
		if err != nil {
			return nil, fmt.Errorf("load lora %q: %w", lf.Name, err)
		}
		lf.Tensors[k] = t
	}
	return lf, nil
}

// Module is one adapter found in a file: its patch and the target weight key.
type Module struct {
	Key    string // module key in the file
	Target string // model weight key (checkpoint key for the UNet, internal name for CLIP)
	Patch  models.Patch
}

// Match finds the adapters of f whose module keys appear in keyMap (module key → target) and
// marks the consumed tensor keys in used. Modules are returned sorted by module key.
func (f *File) Match(keyMap map[string]string, used map[string]bool) ([]Module, error) {
	fp := fingerprint(keyMap)
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.memo[fp]; ok {
		for k := range r.used {
			used[k] = true
		}
		return r.mods, nil
	}
	own := map[string]bool{}
	out, err := f.match(keyMap, own)
	if err != nil {
		return nil, err
	}
	if f.memo == nil {
		f.memo = map[uint64]matchResult{}
	}
	f.memo[fp] = matchResult{mods: out, used: own}
	for k := range own {
		used[k] = true
	}
	return out, nil
}

func fingerprint(m map[string]string) uint64 {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := fnv.New64a()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(m[k]))
		h.Write([]byte{1})
	}
	return h.Sum64()
}

func (f *File) match(keyMap map[string]string, used map[string]bool) ([]Module, error) {
	mods := make([]string, 0, len(keyMap))
	for k := range keyMap {
		mods = append(mods, k)
	}
	sort.Strings(mods)
	var out []Module
	for _, x := range mods {
		target := keyMap[x]
		ms, err := f.module(x, target, used)
		if err != nil {
			return nil, fmt.Errorf("lora %q module %q: %w", f.Name, x, err)
		}
		out = append(out, ms...)
	}
	return out, nil
}

func (f *File) get(name string, used map[string]bool) *tensor.Tensor {
	t := f.Tensors[name]
	if t != nil {
		used[name] = true
	}
	return t
}

func (f *File) has(name string) bool { return f.Tensors[name] != nil }

// module builds the patches of module key x (ComfyUI load_lora).
func (f *File) module(x, target string, used map[string]bool) ([]Module, error) {
	var alpha *float64
	if a := f.Tensors[x+".alpha"]; a != nil && len(a.Data) > 0 {
		v := float64(a.Data[0])
		alpha = &v
	}
	if f.has(x + ".dora_scale") {
		// DoRA needs the base weight, which a models.Patch never sees: not supported.
		return nil, nil
	}
	var mods []Module
	add := func(p models.Patch, tgt string) {
		if alpha != nil {
			used[x+".alpha"] = true
		}
		mods = append(mods, Module{Key: x, Target: tgt, Patch: p})
	}
	// plain LoRA spellings, in ComfyUI's order
	pairs := [][3]string{
		{".lora_up.weight", ".lora_down.weight", ".lora_mid.weight"},
		{"_lora.up.weight", "_lora.down.weight", ""},
		{".lora_B.weight", ".lora_A.weight", ""},
		{".lora.up.weight", ".lora.down.weight", ""},
		{".lora_B", ".lora_A", ""},
		{".lora_linear_layer.up.weight", ".lora_linear_layer.down.weight", ""},
		{".lora_B.default.weight", ".lora_A.default.weight", ""},
	}
	for _, p := range pairs {
		if !f.has(x+p[0]) || !f.has(x+p[1]) {
			continue
		}
		up := f.get(x+p[0], used)
		down := f.get(x+p[1], used)
		r := down.Shape[0]
		if len(down.Shape) < 2 || len(up.Shape) < 2 {
			return nil, fmt.Errorf("lora factors must be at least 2-D: up %v, down %v", up.Shape, down.Shape)
		}
		scale := 1.0
		if alpha != nil {
			scale = *alpha / float64(r)
		}
		if p[2] != "" && f.has(x+p[2]) {
			mid := f.get(x+p[2], used)
			d, err := foldTucker(down, mid)
			if err != nil {
				return nil, err
			}
			down = d
		}
		if up.Shape[1] != down.Shape[0] {
			return nil, fmt.Errorf("lora up %v and down %v ranks differ", up.Shape, down.Shape)
		}
		add(&LoRA{Up: up, Down: down, Scale: scale}, target)
		break
	}
	if len(mods) == 0 && f.has(x+".hada_w1_a") && f.has(x+".hada_w1_b") && f.has(x+".hada_w2_a") && f.has(x+".hada_w2_b") {
		h := &LoHa{W1a: f.get(x+".hada_w1_a", used), W1b: f.get(x+".hada_w1_b", used),
			W2a: f.get(x+".hada_w2_a", used), W2b: f.get(x+".hada_w2_b", used),
			T1: f.get(x+".hada_t1", used), T2: f.get(x+".hada_t2", used), Scale: 1}
		if alpha != nil {
			h.Scale = *alpha / float64(h.W1b.Shape[0])
		}
		add(h, target)
	}
	if len(mods) == 0 {
		names := []string{".lokr_w1", ".lokr_w2", ".lokr_w1_a", ".lokr_w1_b", ".lokr_w2_a", ".lokr_w2_b", ".lokr_t2"}
		any := false
		for _, n := range names {
			any = any || f.has(x+n)
		}
		if any {
			k := &LoKr{W1: f.get(x+".lokr_w1", used), W2: f.get(x+".lokr_w2", used),
				W1a: f.get(x+".lokr_w1_a", used), W1b: f.get(x+".lokr_w1_b", used),
				W2a: f.get(x+".lokr_w2_a", used), W2b: f.get(x+".lokr_w2_b", used),
				T2: f.get(x+".lokr_t2", used), Scale: 1}
			dim := 0
			if k.W1 == nil && k.W1b != nil {
				dim = k.W1b.Shape[0]
			}
			if k.W2 == nil && k.W2b != nil {
				dim = k.W2b.Shape[0]
			}
			if alpha != nil && dim > 0 {
				k.Scale = *alpha / float64(dim)
			}
			add(k, target)
		}
	}
	// full deltas
	if d := f.get(x+".w_norm", used); d != nil {
		mods = append(mods, Module{Key: x, Target: target, Patch: &Diff{D: d}})
	}
	if d := f.get(x+".b_norm", used); d != nil {
		mods = append(mods, Module{Key: x, Target: strings.TrimSuffix(target, ".weight") + ".bias", Patch: &Diff{D: d}})
	}
	if d := f.get(x+".diff", used); d != nil {
		mods = append(mods, Module{Key: x, Target: target, Patch: &Diff{D: d}})
	}
	if d := f.get(x+".diff_b", used); d != nil {
		mods = append(mods, Module{Key: x, Target: strings.TrimSuffix(target, ".weight") + ".bias", Patch: &Diff{D: d}})
	}
	return mods, nil
}

// Loaded is the result of applying one LoRA file to a model and text encoder.
type Loaded struct {
	UNet, CLIP models.Patches
	// NotLoaded lists the file's tensor keys no target consumed (ComfyUI's "lora key not
	// loaded"), sorted.
	NotLoaded []string
	// Modules counts the patched weights per side.
	UNetModules, CLIPModules int
}

// Apply matches f against the UNet and text-encoder key maps (either may be nil) and returns the
// patches with the given strengths. A strength of 0 skips that side, as ComfyUI's LoraLoader does.
func (f *File) Apply(unetMap, clipMap map[string]string, strengthModel, strengthClip float64) (*Loaded, error) {
	used := map[string]bool{}
	res := &Loaded{UNet: models.Patches{}, CLIP: models.Patches{}}
	attach := func(km map[string]string, s float64, dst models.Patches) (int, error) {
		mods, err := f.Match(km, used)
		if err != nil {
			return 0, err
		}
		// One patch per target and file: a later module for the same target replaces an
		// earlier one, as in ComfyUI's patch dict.
		byTarget := map[string]Module{}
		var order []string
		for _, m := range mods {
			if _, ok := byTarget[m.Target]; !ok {
				order = append(order, m.Target)
			}
			byTarget[m.Target] = m
		}
		if s == 0 {
			return 0, nil
		}
		for _, t := range order {
			dst[t] = append(dst[t], models.WeightPatch{Patch: byTarget[t].Patch, Strength: s, Source: f.Name})
		}
		return len(order), nil
	}
	var err error
	if unetMap != nil {
		if res.UNetModules, err = attach(unetMap, strengthModel, res.UNet); err != nil {
			return nil, err
		}
	}
	if clipMap != nil {
		if res.CLIPModules, err = attach(clipMap, strengthClip, res.CLIP); err != nil {
			return nil, err
		}
	}
	for k := range f.Tensors {
		if !used[k] {
			res.NotLoaded = append(res.NotLoaded, k)
		}
	}
	sort.Strings(res.NotLoaded)
	return res, nil
}

// ModelKeyMap is UNetKeyMap for a loaded model (its checkpoint keys and UNet config).
func ModelKeyMap(m models.Model) map[string]string {
	var dm map[string]string
	if fam := m.Family(); fam != nil && fam.UNet != nil {
		dm = models.DiffusersUNetMap(fam.UNet)
	}
	return UNetKeyMap(m.Keys(), dm)
}
