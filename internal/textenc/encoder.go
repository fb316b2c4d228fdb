// Package textenc runs the CLIP text encoders of SD1 (CLIP-L), SD2 (OpenCLIP ViT-H), SDXL
// (CLIP-L + OpenCLIP bigG) and the SDXL refiner (bigG) as ONNX graphs whose weights stay in the
// safetensors files, and implements models.CLIP on top of them with ComfyUI's prompt handling
// (upstream comfy/sd1_clip.py, sdxl_clip.py, text_encoders/sd2_clip.py, clip_model.py).
//
// The graph of one encoder takes the input embeddings of one 77-token chunk ([77,D]: token
// embedding rows, or textual-inversion vectors, plus position embeddings, assembled in Go) and
// returns the output of every layer ([L,77,D]). Hidden-layer selection (CLIPSetLastLayer), the
// final LayerNorm, the pooled output and its projection, and prompt weighting are done in Go, so
// one session per encoder serves every clip-skip setting.
package textenc

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/ort"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/internal/tokenizer"
)

// Layouts of the text-encoder tensors in a file (spec §2.2).
const (
	LayoutHF       = "hf"       // HF CLIPTextModel names (CLIP-L; standalone clip_g files)
	LayoutOpenCLIP = "openclip" // OpenCLIP names (packed in_proj, text_projection as x·P)
)

// Role is a text encoder's part in a family: it fixes the activation, pad id, default hidden
// layer and the embedding key (none of which the weights reveal).
type Role struct {
	Name       string // ComfyUI's clip name: "clip_l", "clip_h" or "clip_g"
	Activation string // "quick_gelu" (CLIP-L) or "gelu" (OpenCLIP)
	Pad        int    // pad token: EOS for CLIP-L, 0 for OpenCLIP
	// DefaultLayer is the hidden layer used without CLIPSetLastLayer: 0 = "last" (final LN of
	// the last layer), -2 = penultimate, ...
	DefaultLayer int
	// LNHidden applies the final LayerNorm to an intermediate layer (layer_norm_hidden_state).
	LNHidden bool
	// ProjectPooled multiplies the pooled output by the text projection when the file has one.
	ProjectPooled bool
}

// Roles as ComfyUI configures them.
var (
	RoleSD1L    = Role{Name: "clip_l", Activation: "quick_gelu", Pad: tokenizer.EOS, DefaultLayer: 0, LNHidden: true, ProjectPooled: false}
	RoleSD2H    = Role{Name: "clip_h", Activation: "gelu", Pad: 0, DefaultLayer: -2, LNHidden: true, ProjectPooled: true}
	RoleSDXLL   = Role{Name: "clip_l", Activation: "quick_gelu", Pad: tokenizer.EOS, DefaultLayer: -2, LNHidden: false, ProjectPooled: false}
	RoleSDXLG   = Role{Name: "clip_g", Activation: "gelu", Pad: 0, DefaultLayer: -2, LNHidden: false, ProjectPooled: true}
	RoleRefiner = RoleSDXLG
)

// target is the checkpoint tensor behind one ComfyUI-internal (HF-style) weight name.
type target struct {
	key        string // checkpoint key
	rows       [2]int // row range inside key for packed q/k/v; {0,0} = whole tensor
	transposed bool   // the internal weight is the transpose of the stored one (text_projection)
}

// Encoder is one CLIP text transformer stored in a safetensors file. It is immutable after
// creation except for its session cache, and safe for concurrent use.
type Encoder struct {
	Role   Role
	file   *safetensors.File
	prefix string // key prefix of the encoder (ends with "text_model." for HF, "model." etc.)
	layout string
	rt     *ort.Runtime

	D, Layers, Heads, MLP int
	projKey               string // "" when the file has no text projection
	projHF                bool   // projection stored as a Linear weight [P,D] (HF layout)

	internal map[string]target // ComfyUI-internal name -> checkpoint tensor
	names    []string          // internal names, sorted

	mu       sync.Mutex
	sessions map[string]*variant // by patch fingerprint
	order    []string            // LRU order of sessions keys
}

// variant is an encoder with one set of patches: its ONNX session and its Go-side tensors.
type variant struct {
	users   int  // Encode calls holding the variant (guarded by Encoder.mu)
	evicted bool // dropped from the cache: the session closes when users reaches 0
	once    sync.Once
	err     error
	sess    *ort.Session
	tokEmb  func(id int, dst []float32) error
	posEmb  []float32 // [77*D]
	lnW     []float32
	lnB     []float32
	proj    []float32 // [D*P] as x·P, or nil
	projOut int
	empty   sync.Map // layer selection -> *tensor.Tensor (empty chunk hidden state)
}

// maxSessions bounds the sessions kept per encoder (one per distinct LoRA set).
const maxSessions = 3

var layerRe = regexp.MustCompile(`^(?:encoder\.layers|transformer\.resblocks)\.(\d+)\.`)

// NewEncoder describes the encoder under prefix in f with the given layout and role. heads <= 0
// derives the head count (D/64 for real widths, D/16 for tiny test models).
func NewEncoder(f *safetensors.File, prefix, layout string, role Role, heads int, rt *ort.Runtime) (*Encoder, error) {
	e := &Encoder{Role: role, file: f, prefix: prefix, layout: layout, rt: rt, sessions: map[string]*variant{}}
	tok, pos, fc1 := "embeddings.token_embedding.weight", "embeddings.position_embedding.weight", "encoder.layers.0.mlp.fc1.weight"
	if layout == LayoutOpenCLIP {
		tok, pos, fc1 = "token_embedding.weight", "positional_embedding", "transformer.resblocks.0.mlp.c_fc.weight"
	} else if layout != LayoutHF {
		return nil, fmt.Errorf("text encoder %s: unknown layout %q", role.Name, layout)
	}
	ti, ok := f.Info(prefix + tok)
	if !ok || len(ti.Shape) != 2 {
		return nil, fmt.Errorf("text encoder %s: no token embedding %q in %s", role.Name, prefix+tok, f.Path())
	}
	e.D = ti.Shape[1]
	if ti.Shape[0] != tokenizer.VocabSize {
		return nil, fmt.Errorf("text encoder %s: token embedding has %d rows, want %d", role.Name, ti.Shape[0], tokenizer.VocabSize)
	}
	if pi, ok := f.Info(prefix + pos); !ok || len(pi.Shape) != 2 || pi.Shape[0] < tokenizer.ChunkLen || pi.Shape[1] != e.D {
		return nil, fmt.Errorf("text encoder %s: missing or malformed position embedding %q", role.Name, prefix+pos)
	}
	if fi, ok := f.Info(prefix + fc1); ok && len(fi.Shape) == 2 {
		e.MLP = fi.Shape[0]
	} else {
		return nil, fmt.Errorf("text encoder %s: no %q", role.Name, prefix+fc1)
	}
	e.Layers = countLayers(f, prefix)
	if e.Layers == 0 {
		return nil, fmt.Errorf("text encoder %s: no layers under %q", role.Name, prefix)
	}
	e.Heads = heads
	if e.Heads <= 0 || e.D%e.Heads != 0 {
		switch {
		case e.D >= 512 && e.D%64 == 0:
			e.Heads = e.D / 64
		case e.D%16 == 0:
			e.Heads = e.D / 16
		default:
			return nil, fmt.Errorf("text encoder %s: cannot derive the head count for width %d", role.Name, e.D)
		}
	}
	// Projection: OpenCLIP "text_projection" [D,P] (x·P); HF "text_projection.weight" [P,D],
	// stored next to "text_model.".
	if layout == LayoutOpenCLIP {
		if _, ok := f.Info(prefix + "text_projection"); ok {
			e.projKey = prefix + "text_projection"
		}
	} else {
		parent := strings.TrimSuffix(prefix, "text_model.")
		if _, ok := f.Info(parent + "text_projection.weight"); ok && parent != prefix {
			e.projKey, e.projHF = parent+"text_projection.weight", true
		}
	}
	e.buildNames()
	for _, n := range e.names {
		tg := e.internal[n]
		if _, ok := f.Info(tg.key); !ok {
			return nil, fmt.Errorf("text encoder %s: checkpoint lacks %q (for %s)", role.Name, tg.key, n)
		}
	}
	return e, nil
}

// countLayers is one more than the highest layer index under prefix.
func countLayers(f *safetensors.File, prefix string) int {
	n := 0
	for _, k := range f.Keys() {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if m := layerRe.FindStringSubmatch(k[len(prefix):]); m != nil {
			if i, _ := strconv.Atoi(m[1]); i+1 > n {
				n = i + 1
			}
		}
	}
	return n
}

// buildNames fills the ComfyUI-internal names ("clip_l.transformer.text_model.encoder.layers.0.
// self_attn.q_proj.weight", ...) and the checkpoint tensor behind each.
func (e *Encoder) buildNames() {
	e.internal = map[string]target{}
	in := e.Role.Name + ".transformer.text_model."
	add := func(name, key string, rows [2]int) {
		e.internal[name] = target{key: e.prefix + key, rows: rows}
	}
	whole := [2]int{}
	if e.layout == LayoutHF {
		add(in+"embeddings.token_embedding.weight", "embeddings.token_embedding.weight", whole)
		add(in+"embeddings.position_embedding.weight", "embeddings.position_embedding.weight", whole)
		for i := 0; i < e.Layers; i++ {
			b := fmt.Sprintf("encoder.layers.%d.", i)
			for _, s := range []string{"layer_norm1", "layer_norm2", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "mlp.fc1", "mlp.fc2"} {
				add(in+b+s+".weight", b+s+".weight", whole)
				add(in+b+s+".bias", b+s+".bias", whole)
			}
		}
		add(in+"final_layer_norm.weight", "final_layer_norm.weight", whole)
		add(in+"final_layer_norm.bias", "final_layer_norm.bias", whole)
		if e.projKey != "" {
			e.internal[e.Role.Name+".transformer.text_projection.weight"] = target{key: e.projKey}
		}
	} else {
		add(in+"embeddings.token_embedding.weight", "token_embedding.weight", whole)
		add(in+"embeddings.position_embedding.weight", "positional_embedding", whole)
		d := e.D
		for i := 0; i < e.Layers; i++ {
			b := fmt.Sprintf("encoder.layers.%d.", i)
			r := fmt.Sprintf("transformer.resblocks.%d.", i)
			for hf, oc := range map[string]string{"layer_norm1": "ln_1", "layer_norm2": "ln_2", "self_attn.out_proj": "attn.out_proj", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"} {
				add(in+b+hf+".weight", r+oc+".weight", whole)
				add(in+b+hf+".bias", r+oc+".bias", whole)
			}
			for j, p := range []string{"q_proj", "k_proj", "v_proj"} {
				rows := [2]int{j * d, (j + 1) * d}
				add(in+b+"self_attn."+p+".weight", r+"attn.in_proj_weight", rows)
				add(in+b+"self_attn."+p+".bias", r+"attn.in_proj_bias", rows)
			}
		}
		add(in+"final_layer_norm.weight", "ln_final.weight", whole)
		add(in+"final_layer_norm.bias", "ln_final.bias", whole)
		if e.projKey != "" {
			e.internal[e.Role.Name+".transformer.text_projection.weight"] = target{key: e.projKey, transposed: true}
		}
	}
	e.names = make([]string, 0, len(e.internal))
	for n := range e.internal {
		e.names = append(e.names, n)
	}
	sort.Strings(e.names)
}

// Keys lists the encoder's ComfyUI-internal weight names (what upstream's LoRA key map
// enumerates: "clip_l.transformer.text_model.encoder.layers.0.mlp.fc1.weight", ...).
func (e *Encoder) Keys() []string { return append([]string(nil), e.names...) }

// Target returns the checkpoint key behind an internal name, the row range for packed q/k/v
// ([0,0] = whole tensor) and whether the internal weight is the stored tensor transposed.
func (e *Encoder) Target(name string) (key string, rows [2]int, transposed bool, ok bool) {
	t, ok := e.internal[name]
	return t.key, t.rows, t.transposed, ok
}

// appliedPatch is one patch with the checkpoint tensor region it targets.
type appliedPatch struct {
	wp models.WeightPatch
	tg target
}

// patchesFor collects the patches that apply to this encoder, by checkpoint key. Patches may be
// keyed by internal names (delta shaped like the internal weight) or by checkpoint keys (delta
// shaped like the stored tensor).
func (e *Encoder) patchesFor(p models.Patches) map[string][]appliedPatch {
	out := map[string][]appliedPatch{}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var tg target
		if t, ok := e.internal[k]; ok {
			tg = t
		} else if strings.HasPrefix(k, e.prefix) {
			if _, ok := e.file.Info(k); !ok {
				continue
			}
			tg = target{key: k}
		} else {
			continue
		}
		for _, wp := range p[k] {
			out[tg.key] = append(out[tg.key], appliedPatch{wp: wp, tg: tg})
		}
	}
	return out
}

// fingerprint identifies a patch set for the session cache.
func fingerprint(ps map[string][]appliedPatch) string {
	if len(ps) == 0 {
		return ""
	}
	keys := make([]string, 0, len(ps))
	for k := range ps {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		for _, a := range ps[k] {
			fmt.Fprintf(&sb, "%s|%v|%v|%s|%p|%v\n", k, a.tg.rows, a.tg.transposed, a.wp.Source, a.wp.Patch, a.wp.Strength)
		}
	}
	return sb.String()
}

// merged returns checkpoint tensor key with its patches applied (float32).
func (e *Encoder) merged(key string, ps []appliedPatch) (*tensor.Tensor, error) {
	w, err := e.file.Float32(key)
	if err != nil {
		return nil, fmt.Errorf("text encoder %s: %w", e.Role.Name, err)
	}
	for _, a := range ps {
		if a.wp.Patch == nil || a.wp.Strength == 0 {
			continue
		}
		if err := applyPatch(w, a); err != nil {
			return nil, fmt.Errorf("text encoder %s: patch %s on %s: %w", e.Role.Name, a.wp.Source, key, err)
		}
	}
	// Round back to the stored dtype, as upstream stores patched weights.
	if info, _ := e.file.Info(key); info.DType == safetensors.F16 {
		for i, x := range w.Data {
			w.Data[i] = tensor.F16ToF32(tensor.F32ToF16(x))
		}
	} else if info.DType == safetensors.BF16 {
		for i, x := range w.Data {
			w.Data[i] = tensor.BF16ToF32(tensor.F32ToBF16(x))
		}
	}
	return w, nil
}

// applyPatch adds strength·delta to w (whole tensor, a row range, or transposed).
func applyPatch(w *tensor.Tensor, a appliedPatch) error {
	s := float32(a.wp.Strength)
	shape := append([]int(nil), w.Shape...)
	r0, r1 := a.tg.rows[0], a.tg.rows[1]
	sliced := r1 > r0
	if sliced {
		shape[0] = r1 - r0
	}
	if a.tg.transposed && len(shape) == 2 {
		shape[0], shape[1] = shape[1], shape[0]
	}
	d, err := a.wp.Patch.Delta(shape)
	if err != nil {
		return err
	}
	if d.Len() != tensor.Numel(shape) {
		return fmt.Errorf("delta has %d values for shape %v", d.Len(), shape)
	}
	switch {
	case a.tg.transposed && len(shape) == 2:
		rows, cols := shape[0], shape[1] // delta [rows,cols] = stored [cols,rows]ᵀ
		for i := 0; i < rows; i++ {
			for j := 0; j < cols; j++ {
				w.Data[j*rows+i] += s * d.Data[i*cols+j]
			}
		}
	default:
		off := 0
		if sliced {
			off = r0 * tensor.Numel(w.Shape[1:])
		}
		for i, x := range d.Data {
			w.Data[off+i] += s * x
		}
	}
	return nil
}

// variantFor returns (creating once) the session and tensors for a patch set; release it with
// e.release when done.
func (e *Encoder) variantFor(p models.Patches) (*variant, error) {
	ps := e.patchesFor(p)
	fp := fingerprint(ps)
	e.mu.Lock()
	v, ok := e.sessions[fp]
	if !ok {
		v = &variant{}
		e.sessions[fp] = v
		e.order = append(e.order, fp)
		for len(e.order) > maxSessions {
			old := e.order[0]
			e.order = e.order[1:]
			if ov := e.sessions[old]; ov != nil {
				ov.evicted = true
				if ov.users == 0 && ov.sess != nil {
					ov.sess.Close()
				}
			}
			delete(e.sessions, old)
		}
	} else {
		for i, k := range e.order {
			if k == fp {
				e.order = append(append(e.order[:i:i], e.order[i+1:]...), fp)
				break
			}
		}
	}
	v.users++
	e.mu.Unlock()
	v.once.Do(func() { v.err = e.build(v, ps) })
	if v.err != nil {
		e.mu.Lock()
		if e.sessions[fp] == v {
			delete(e.sessions, fp)
			for i, k := range e.order {
				if k == fp {
					e.order = append(e.order[:i:i], e.order[i+1:]...)
					break
				}
			}
		}
		e.mu.Unlock()
		e.release(v)
		return nil, v.err
	}
	return v, nil
}

// release ends one use of v, closing its session if it was evicted meanwhile.
func (e *Encoder) release(v *variant) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v.users--
	if v.users == 0 && v.evicted && v.sess != nil {
		v.sess.Close()
	}
}

// build creates the session and the Go-side tensors of a variant.
func (e *Encoder) build(v *variant, ps map[string][]appliedPatch) error {
	if e.rt == nil {
		return fmt.Errorf("text encoder %s: no ONNX Runtime", e.Role.Name)
	}
	// Go-side tensors: token and position embeddings, final LN, projection.
	get := func(name string) (*tensor.Tensor, error) {
		tg := e.internal[name]
		return e.merged(tg.key, ps[tg.key])
	}
	in := e.Role.Name + ".transformer.text_model."
	tokKey := e.internal[in+"embeddings.token_embedding.weight"].key
	if len(ps[tokKey]) > 0 {
		t, err := e.merged(tokKey, ps[tokKey])
		if err != nil {
			return err
		}
		v.tokEmb = func(id int, dst []float32) error { copy(dst, t.Data[id*e.D:(id+1)*e.D]); return nil }
	} else {
		raw, err := e.file.Bytes(tokKey)
		if err != nil {
			return err
		}
		info, _ := e.file.Info(tokKey)
		es := info.DType.Size()
		row := e.D * es
		v.tokEmb = func(id int, dst []float32) error {
			return safetensors.ToFloat32(dst[:e.D], info.DType, raw[id*row:(id+1)*row])
		}
	}
	pos, err := get(in + "embeddings.position_embedding.weight")
	if err != nil {
		return err
	}
	v.posEmb = pos.Data[:tokenizer.ChunkLen*e.D]
	lw, err := get(in + "final_layer_norm.weight")
	if err != nil {
		return err
	}
	lb, err := get(in + "final_layer_norm.bias")
	if err != nil {
		return err
	}
	v.lnW, v.lnB = lw.Data, lb.Data
	if e.projKey != "" && e.Role.ProjectPooled {
		p, err := e.merged(e.projKey, ps[e.projKey])
		if err != nil {
			return err
		}
		if len(p.Shape) != 2 {
			return fmt.Errorf("text encoder %s: projection shape %v", e.Role.Name, p.Shape)
		}
		if e.projHF { // Linear weight [P,D]: x·Wᵀ; store as [D,P]
			P := p.Shape[0]
			t := make([]float32, e.D*P)
			for o := 0; o < P; o++ {
				for i := 0; i < e.D; i++ {
					t[i*P+o] = p.Data[o*e.D+i]
				}
			}
			v.proj, v.projOut = t, P
		} else {
			v.proj, v.projOut = p.Data, p.Shape[1]
		}
	}
	m, err := e.graph(ps)
	if err != nil {
		return err
	}
	s, err := e.rt.NewSession(m)
	if err != nil {
		return fmt.Errorf("text encoder %s: %w", e.Role.Name, err)
	}
	v.sess = s
	return nil
}

// graph builds the encoder's ONNX model: input "embeds" [77,D], output "hidden_states"
// [L,77,D]; patched weights are merged in.
func (e *Encoder) graph(ps map[string][]appliedPatch) (*onnx.Model, error) {
	g := onnx.NewGraph("clip_" + e.Role.Name)
	T, D, H := tokenizer.ChunkLen, e.D, e.Heads
	hd := D / H
	var mergeErr error
	wp := func(key string) onnx.Value {
		if mergeErr != nil {
			return onnx.Value{}
		}
		if len(ps[key]) > 0 {
			t, err := e.merged(key, ps[key])
			if err != nil {
				mergeErr = err
				return onnx.Value{}
			}
			return e.patchedInitializer(g, key, t)
		}
		return g.Weight(e.file, key)
	}
	x := g.Input("embeds", onnx.Float, T, D)
	mask := make([]float32, T*T)
	for i := 0; i < T; i++ {
		for j := i + 1; j < T; j++ {
			mask[i*T+j] = -math.MaxFloat32
		}
	}
	maskV := g.Const(tensor.FromData(mask, T, T))
	scale := g.Scalar(float32(1 / math.Sqrt(float64(hd))))
	heads := func(t onnx.Value) onnx.Value {
		return g.Transpose(g.Reshape(t, int64(T), int64(H), int64(hd)), 1, 0, 2)
	}
	var outs []onnx.Value
	for i := 0; i < e.Layers; i++ {
		// Weights by ComfyUI-internal name; OpenCLIP's q/k/v all name the packed in_proj tensor.
		b := fmt.Sprintf("%s.transformer.text_model.encoder.layers.%d.", e.Role.Name, i)
		w := func(n string) onnx.Value { return wp(e.internal[b+n].key) }
		h := g.LayerNorm(x, w("layer_norm1.weight"), w("layer_norm1.bias"), 1e-5)
		var qv, kv, vvv onnx.Value
		if e.layout == LayoutHF {
			qv = g.Linear(h, w("self_attn.q_proj.weight"), w("self_attn.q_proj.bias"))
			kv = g.Linear(h, w("self_attn.k_proj.weight"), w("self_attn.k_proj.bias"))
			vvv = g.Linear(h, w("self_attn.v_proj.weight"), w("self_attn.v_proj.bias"))
		} else {
			qkv := g.Linear(h, w("self_attn.q_proj.weight"), w("self_attn.q_proj.bias"))
			parts := g.Split(qkv, 1, int64(D), int64(D), int64(D))
			qv, kv, vvv = parts[0], parts[1], parts[2]
		}
		qh := heads(qv)                                                          // [H,T,hd]
		kh := g.Transpose(g.Reshape(kv, int64(T), int64(H), int64(hd)), 1, 2, 0) // [H,hd,T]
		vh := heads(vvv)                                                         // [H,T,hd]
		s := g.Add(g.Mul(g.MatMul(qh, kh), scale), maskV)
		a := g.MatMul(g.Softmax(s, -1), vh)                        // [H,T,hd]
		a = g.Reshape(g.Transpose(a, 1, 0, 2), int64(T), int64(D)) // [T,D]
		x = g.Add(x, g.Linear(a, w("self_attn.out_proj.weight"), w("self_attn.out_proj.bias")))
		h = g.LayerNorm(x, w("layer_norm2.weight"), w("layer_norm2.bias"), 1e-5)
		h = g.Linear(h, w("mlp.fc1.weight"), w("mlp.fc1.bias"))
		if e.Role.Activation == "quick_gelu" {
			h = g.QuickGelu(h)
		} else {
			h = g.Gelu(h)
		}
		x = g.Add(x, g.Linear(h, w("mlp.fc2.weight"), w("mlp.fc2.bias")))
		outs = append(outs, g.Unsqueeze(x, 0))
	}
	g.Output(g.Concat(0, outs...), "hidden_states")
	if mergeErr != nil {
		return nil, fmt.Errorf("text encoder %s: %w", e.Role.Name, mergeErr)
	}
	m, err := g.Model()
	if err != nil {
		return nil, fmt.Errorf("text encoder %s: build graph: %w", e.Role.Name, err)
	}
	return m, nil
}

// patchedInitializer adds a merged weight to g, rounded to the stored tensor's dtype as upstream
// does (F16/BF16 checkpoints keep the proto at half size: a bigG patched on every layer stays
// under protobuf's 2 GiB), then cast to the compute type.
func (e *Encoder) patchedInitializer(g *onnx.Graph, key string, t *tensor.Tensor) onnx.Value {
	info, _ := e.file.Info(key)
	switch info.DType {
	case safetensors.F16:
		raw := make([]byte, 2*len(t.Data))
		tensor.F32SliceToF16(raw, t.Data)
		return g.Cast(g.InitializerRaw("", onnx.Float16, t.Shape, raw), g.ComputeType())
	case safetensors.BF16:
		raw := make([]byte, 2*len(t.Data))
		tensor.F32SliceToBF16(raw, t.Data)
		return g.Cast(g.InitializerRaw("", onnx.BFloat16, t.Shape, raw), g.ComputeType())
	}
	return g.InitializerFromTensor("", t)
}

// chunkOut is one encoded chunk.
type chunkOut struct {
	hidden *tensor.Tensor // [L,77,D]
	eos    int            // first EOS position
}

// run encodes one chunk: assemble the input embeddings (textual-inversion vectors of the
// wrong width are dropped and the chunk refilled with pad tokens, as upstream), run the graph.
func (e *Encoder) run(ctx context.Context, v *variant, c tokenizer.Chunk) (chunkOut, error) {
	T, D := tokenizer.ChunkLen, e.D
	emb := make([]float32, T*D)
	pos := 0
	eos := -1
	for _, tk := range c {
		if pos >= T {
			break
		}
		dst := emb[pos*D : (pos+1)*D]
		if tk.Embed != nil {
			if len(tk.Embed) != D {
				continue
			}
			copy(dst, tk.Embed)
		} else {
			id := tk.ID
			if id < 0 || id >= tokenizer.VocabSize {
				return chunkOut{}, fmt.Errorf("text encoder %s: token id %d out of range", e.Role.Name, id)
			}
			if err := v.tokEmb(id, dst); err != nil {
				return chunkOut{}, err
			}
			if id == tokenizer.EOS && eos < 0 {
				eos = pos
			}
		}
		pos++
	}
	for ; pos < T; pos++ {
		dst := emb[pos*D : (pos+1)*D]
		if err := v.tokEmb(e.Role.Pad, dst); err != nil {
			return chunkOut{}, err
		}
		if e.Role.Pad == tokenizer.EOS && eos < 0 {
			eos = pos
		}
	}
	if eos < 0 {
		eos = 0 // argmax of an all-false mask, as upstream
	}
	for i := range emb {
		emb[i] += v.posEmb[i]
	}
	out, err := v.sess.Run(ctx, map[string]*tensor.Tensor{"embeds": tensor.FromData(emb, T, D)})
	if err != nil {
		return chunkOut{}, fmt.Errorf("text encoder %s: %w", e.Role.Name, err)
	}
	h := out["hidden_states"]
	if h == nil || h.Len() != e.Layers*T*D {
		return chunkOut{}, fmt.Errorf("text encoder %s: unexpected output %v", e.Role.Name, h)
	}
	h.Shape = []int{e.Layers, T, D}
	return chunkOut{hidden: h, eos: eos}, nil
}

// selectLayer returns the hidden state [77,D] for layer selection sel (0 = last with final LN;
// n < 0 = output of layer L+n, with the final LN when the role says so).
func (e *Encoder) selectLayer(v *variant, h *tensor.Tensor, sel int) []float32 {
	T, D := tokenizer.ChunkLen, e.D
	if sel == 0 || -sel > e.Layers {
		return layerNorm(h.Data[(e.Layers-1)*T*D:e.Layers*T*D], v.lnW, v.lnB, D)
	}
	idx := e.Layers + sel
	x := h.Data[idx*T*D : (idx+1)*T*D]
	if e.Role.LNHidden {
		return layerNorm(x, v.lnW, v.lnB, D)
	}
	return append([]float32(nil), x...)
}

// pooled returns the final-LN last-layer state at the EOS position, projected when configured.
func (e *Encoder) pooled(v *variant, co chunkOut) []float32 {
	T, D := tokenizer.ChunkLen, e.D
	row := co.hidden.Data[(e.Layers-1)*T*D+co.eos*D : (e.Layers-1)*T*D+(co.eos+1)*D]
	x := layerNorm(row, v.lnW, v.lnB, D)
	if v.proj == nil {
		return x
	}
	P := v.projOut
	out := make([]float32, P)
	for o := 0; o < P; o++ {
		var s float64
		for i := 0; i < D; i++ {
			s += float64(x[i]) * float64(v.proj[i*P+o])
		}
		out[o] = float32(s)
	}
	return out
}

// layerNorm normalises each D-row of x (eps 1e-5).
func layerNorm(x, w, b []float32, D int) []float32 {
	out := make([]float32, len(x))
	for r := 0; r+D <= len(x); r += D {
		var mean float64
		for _, v := range x[r : r+D] {
			mean += float64(v)
		}
		mean /= float64(D)
		var vr float64
		for _, v := range x[r : r+D] {
			d := float64(v) - mean
			vr += d * d
		}
		vr /= float64(D)
		inv := 1 / math.Sqrt(vr+1e-5)
		for i := 0; i < D; i++ {
			out[r+i] = float32((float64(x[r+i])-mean)*inv*float64(w[i]) + float64(b[i]))
		}
	}
	return out
}

// EncodeChunks encodes tokenized chunks with the given layer selection (0 = the role default)
// and patches: cond [1,77·k,D] with ComfyUI's weighting, and the first chunk's pooled vector.
func (e *Encoder) EncodeChunks(ctx context.Context, chunks []tokenizer.Chunk, layer int, p models.Patches) (*tensor.Tensor, []float32, error) {
	v, err := e.variantFor(p)
	if err != nil {
		return nil, nil, err
	}
	defer e.release(v)
	sel := e.Role.DefaultLayer
	if layer != 0 {
		sel = layer
		if -layer > e.Layers {
			sel = 0
		}
	}
	T, D := tokenizer.ChunkLen, e.D
	cond := tensor.New(1, T*len(chunks), D)
	var pooled []float32
	var empty []float32
	weighted := anyWeighted(chunks)
	for k, c := range chunks {
		co, err := e.run(ctx, v, c)
		if err != nil {
			return nil, nil, err
		}
		if k == 0 {
			pooled = e.pooled(v, co)
		}
		z := e.selectLayer(v, co.hidden, sel)
		if weighted {
			if empty == nil {
				if empty, err = e.emptyState(ctx, v, sel); err != nil {
					return nil, nil, err
				}
			}
			for j, tk := range c {
				if j >= T {
					break
				}
				if w := float32(tk.Weight); tk.Weight != 1 {
					for i := 0; i < D; i++ {
						ze := empty[j*D+i]
						z[j*D+i] = (z[j*D+i]-ze)*w + ze
					}
				}
			}
		}
		copy(cond.Data[k*T*D:], z)
	}
	return cond, pooled, nil
}

func anyWeighted(chunks []tokenizer.Chunk) bool {
	for _, c := range chunks {
		if c.Weighted() {
			return true
		}
	}
	return false
}

// emptyState is the hidden state of the empty chunk [BOS, EOS, pad…] for a layer selection,
// cached per variant.
func (e *Encoder) emptyState(ctx context.Context, v *variant, sel int) ([]float32, error) {
	if z, ok := v.empty.Load(sel); ok {
		return z.([]float32), nil
	}
	co, err := e.run(ctx, v, tokenizer.Empty(e.Role.Pad))
	if err != nil {
		return nil, err
	}
	z := e.selectLayer(v, co.hidden, sel)
	v.empty.Store(sel, z)
	return z, nil
}
