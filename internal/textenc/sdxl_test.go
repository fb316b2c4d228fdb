package textenc

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/internal/tokenizer"
)

const (
	xlLPrefix = "conditioner.embedders.0.transformer.text_model."
	xlGPrefix = "conditioner.embedders.1.model."
)

func bpe(t testing.TB) *tokenizer.BPE {
	t.Helper()
	b, err := tokenizer.Default()
	if err != nil {
		t.Skipf("CLIP vocabulary absent (run scripts/setup.sh): %v", err)
	}
	return b
}

type tinyXL struct {
	path   string
	f      *safetensors.File
	fam    *models.Family
	refL   refModel
	refG   refModel
	embDir string
}

func newTinyXL(t *testing.T) *tinyXL { return newTinyXLAs(t, safetensors.F32) }

func newTinyXLAs(t *testing.T, dt safetensors.DType) *tinyXL {
	t.Helper()
	dir := t.TempDir()
	x := &tinyXL{path: filepath.Join(dir, "tiny-sdxl-clip.safetensors")}
	writeTinyCLIPAs(t, x.path, map[string]*models.CLIPConfig{xlLPrefix: &models.TinyCLIPL, xlGPrefix: &models.TinyCLIPG}, 1, dt)
	x.f = open(t, x.path)
	x.fam = &models.Family{Name: "SDXL", TextEncoders: []models.TextEncoderSpec{
		{Name: "clip_l", Prefix: xlLPrefix, Heads: 3, Layout: "hf"},
		{Name: "clip_g", Prefix: xlGPrefix, Heads: 4, Layout: "openclip"}}}
	x.refL = refModel{f: x.f, prefix: xlLPrefix, layout: LayoutHF, heads: 3, act: "quick_gelu"}
	x.refG = refModel{f: x.f, prefix: xlGPrefix, layout: LayoutOpenCLIP, heads: 4, act: "gelu"}
	x.embDir = filepath.Join(dir, "embeddings")
	if err := os.MkdirAll(x.embDir, 0o755); err != nil {
		t.Fatal(err)
	}
	emb := map[string]*tensor.Tensor{"clip_l": tensor.New(2, 48), "clip_g": tensor.New(1, 64)}
	for i := range emb["clip_l"].Data {
		emb["clip_l"].Data[i] = float32(i%7) * 0.1
	}
	for i := range emb["clip_g"].Data {
		emb["clip_g"].Data[i] = -float32(i%5) * 0.2
	}
	if err := safetensors.WriteFloat32(filepath.Join(x.embDir, "xl.safetensors"), emb, safetensors.F32, nil); err != nil {
		t.Fatal(err)
	}
	return x
}

// chunkIDs builds a 77-token chunk: BOS ids EOS pad….
func chunkIDs(ids []int, pad int) []int {
	c := append([]int{tokenizer.BOS}, ids...)
	c = append(c, tokenizer.EOS)
	for len(c) < 77 {
		c = append(c, pad)
	}
	return c
}

// refPooled is final LN of the last layer at pos, times the OpenCLIP projection.
func (m refModel) pooled(t testing.TB, layers [][]float32, pos int) []float32 {
	D := len(layers[0]) / 77
	last := layers[len(layers)-1][pos*D : (pos+1)*D]
	x := layerNorm(last, m.w(t, "ln_final.weight"), m.w(t, "ln_final.bias"), D)
	P := m.w(t, "text_projection")
	out := make([]float32, D)
	for o := 0; o < D; o++ {
		var s float64
		for i := 0; i < D; i++ {
			s += float64(x[i]) * float64(P[i*D+o])
		}
		out[o] = float32(s)
	}
	return out
}

// features extracts [T,D] columns off..off+D of a [1,T,W] tensor.
func features(c *tensor.Tensor, off, D int) []float32 {
	T, W := c.Shape[1], c.Shape[2]
	out := make([]float32, 0, T*D)
	for t := 0; t < T; t++ {
		out = append(out, c.Data[t*W+off:t*W+off+D]...)
	}
	return out
}

func TestSDXLDualEncoder(t *testing.T) {
	rt := runtime(t)
	b := bpe(t)
	x := newTinyXL(t)
	clip, err := FromCheckpoint(x.f, x.fam, Options{Runtime: rt, Embeddings: tokenizer.NewEmbeddings([]string{x.embDir})})
	if err != nil {
		t.Fatal(err)
	}
	if clip.Kind() != KindSDXL || len(clip.Encoders()) != 2 {
		t.Fatalf("kind %s", clip.Kind())
	}
	ctx := context.Background()
	ids := b.Encode("a photo of a cat")
	lIDs, gIDs := chunkIDs(ids, tokenizer.EOS), chunkIDs(ids, 0)
	refL, refG := x.refL.forward(t, lIDs, nil), x.refG.forward(t, gIDs, nil)
	eos := len(ids) + 1

	enc, err := clip.Encode(ctx, "a photo of a cat", nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(enc.Cond.Shape) != "[1 77 112]" || fmt.Sprint(enc.Pooled.Shape) != "[1 64]" {
		t.Fatalf("shapes %v %v", enc.Cond.Shape, enc.Pooled.Shape)
	}
	// Default: penultimate layer (index 1 of 3) without final LN, l first.
	closeTo(t, "l penultimate", features(enc.Cond, 0, 48), refL[1], 1e-4, 1e-4)
	closeTo(t, "g penultimate", features(enc.Cond, 48, 64), refG[1], 1e-4, 1e-4)
	closeTo(t, "g pooled (projected)", enc.Pooled.Data, x.refG.pooled(t, refG, eos), 1e-4, 1e-4)

	// CLIPSetLastLayer(-1): raw last layer, no LN, on both encoders; pooled unchanged.
	enc1, err := clip.WithLastLayer(-1).Encode(ctx, "a photo of a cat", nil)
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "l last raw", features(enc1.Cond, 0, 48), refL[2], 1e-4, 1e-4)
	closeTo(t, "g last raw", features(enc1.Cond, 48, 64), refG[2], 1e-4, 1e-4)
	closeTo(t, "pooled with clip skip", enc1.Pooled.Data, enc.Pooled.Data, 0, 0)

	// Weighting: (cat:1.5) -> z = (z - z_empty)·1.5 + z_empty at the cat position.
	encW, err := clip.Encode(ctx, "a photo of a (cat:1.5)", nil)
	if err != nil {
		t.Fatal(err)
	}
	emptyL := x.refL.forward(t, chunkIDs(nil, tokenizer.EOS), nil)[1]
	emptyG := x.refG.forward(t, chunkIDs(nil, 0), nil)[1]
	wantL, wantG := append([]float32(nil), refL[1]...), append([]float32(nil), refG[1]...)
	catPos := len(ids) // BOS + 4 tokens before cat
	for i := 0; i < 48; i++ {
		j := catPos*48 + i
		wantL[j] = (wantL[j]-emptyL[j])*1.5 + emptyL[j]
	}
	for i := 0; i < 64; i++ {
		j := catPos*64 + i
		wantG[j] = (wantG[j]-emptyG[j])*1.5 + emptyG[j]
	}
	closeTo(t, "l weighted", features(encW.Cond, 0, 48), wantL, 1e-4, 1e-4)
	closeTo(t, "g weighted", features(encW.Cond, 48, 64), wantG, 1e-4, 1e-4)
	closeTo(t, "weighted pooled untouched", encW.Pooled.Data, enc.Pooled.Data, 1e-6, 0)
	if d := maxDiff(encW.Cond.Data, enc.Cond.Data); d < 1e-3 {
		t.Errorf("weighting changed the conditioning by only %g", d)
	}

	// Textual inversion: clip_l has 2 vectors, clip_g 1; g's chunk is refilled with pad.
	encE, err := clip.Encode(ctx, "embedding:xl cat", nil)
	if err != nil {
		t.Fatal(err)
	}
	cat := b.Encode("cat")[0]
	embL := tensorRows(t, x.embDir, "clip_l")
	embG := tensorRows(t, x.embDir, "clip_g")
	eL := x.refL.forward(t, chunkIDs([]int{0, 0, cat}, tokenizer.EOS), map[int][]float32{1: embL[0], 2: embL[1]})
	eG := x.refG.forward(t, chunkIDs([]int{0, cat}, 0), map[int][]float32{1: embG[0]})
	closeTo(t, "l embedding", features(encE.Cond, 0, 48), eL[1], 1e-4, 1e-4)
	closeTo(t, "g embedding", features(encE.Cond, 48, 64), eG[1], 1e-4, 1e-4)

	// CLIPTextEncodeSDXL with different texts: g is padded with an empty chunk.
	long := strings.TrimSpace(strings.Repeat("cat ", 100))
	encS, err := clip.Encode(ctx, "", map[string]string{"clip_l": long, "clip_g": "a photo of a cat"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(encS.Cond.Shape) != "[1 154 112]" {
		t.Fatalf("split texts: shape %v", encS.Cond.Shape)
	}
	g := features(encS.Cond, 48, 64)
	closeTo(t, "g chunk 1", g[:77*64], refG[1], 1e-4, 1e-4)
	closeTo(t, "g padding chunk = empty prompt", g[77*64:], emptyG, 1e-4, 1e-4)
	closeTo(t, "split pooled from g", encS.Pooled.Data, enc.Pooled.Data, 1e-6, 0)

	// Plain CLIPTextEncode with a long prompt: both encoders chunk the same way.
	encL, err := clip.Encode(ctx, long, nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(encL.Cond.Shape) != "[1 154 112]" {
		t.Fatalf("long: shape %v", encL.Cond.Shape)
	}
}

func tensorRows(t *testing.T, dir, key string) [][]float32 {
	t.Helper()
	f := open(t, filepath.Join(dir, "xl.safetensors"))
	x, err := f.Float32(key)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]float32
	for i := 0; i < x.Shape[0]; i++ {
		out = append(out, row(x, i))
	}
	return out
}

// constPatch is a Patch whose delta is a fixed pattern of the requested shape.
type constPatch struct{ scale float32 }

func (p constPatch) Delta(shape []int) (*tensor.Tensor, error) {
	d := tensor.New(shape...)
	for i := range d.Data {
		d.Data[i] = p.scale * float32(i%11-5)
	}
	return d, nil
}

// TestPatches applies text-encoder patches by ComfyUI-internal name (OpenCLIP k_proj rows, the
// transposed projection, a HF fc1) and compares with a file holding the merged weights.
func TestPatches(t *testing.T) {
	for _, dt := range []safetensors.DType{safetensors.F32, safetensors.F16} {
		t.Run(string(dt), func(t *testing.T) { testPatches(t, dt) })
	}
}

func testPatches(t *testing.T, dt safetensors.DType) {
	rt := runtime(t)
	b := bpe(t)
	x := newTinyXLAs(t, dt)
	clip, err := FromCheckpoint(x.f, x.fam, Options{Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	keys := clip.Keys()
	for _, want := range []string{"clip_g.transformer.text_model.encoder.layers.0.self_attn.k_proj.weight",
		"clip_g.transformer.text_projection.weight", "clip_l.transformer.text_model.encoder.layers.2.mlp.fc1.weight"} {
		found := false
		for _, k := range keys {
			found = found || k == want
		}
		if !found {
			t.Fatalf("Keys() lacks %s", want)
		}
	}
	p := models.Patches{
		"clip_g.transformer.text_model.encoder.layers.0.self_attn.k_proj.weight": {{Patch: constPatch{0.01}, Strength: 0.5, Source: "a"}},
		"clip_g.transformer.text_projection.weight":                              {{Patch: constPatch{0.02}, Strength: 1, Source: "a"}},
		"clip_l.transformer.text_model.encoder.layers.0.mlp.fc1.weight":          {{Patch: constPatch{0.01}, Strength: -1, Source: "a"}},
	}
	pc := clip.WithPatches(p)
	ctx := context.Background()
	enc, err := pc.Encode(ctx, "a photo of a cat", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Merged reference file.
	ts := map[string]*tensor.Tensor{}
	for _, k := range x.f.Keys() {
		v, _ := x.f.Float32(k)
		ts[k] = v
	}
	D := 64
	kp := ts[xlGPrefix+"transformer.resblocks.0.attn.in_proj_weight"]
	dk, _ := constPatch{0.01}.Delta([]int{D, D})
	for i, v := range dk.Data {
		kp.Data[D*D+i] += 0.5 * v
	}
	pr := ts[xlGPrefix+"text_projection"]
	dp, _ := constPatch{0.02}.Delta([]int{D, D}) // Linear form [out,in] = Pᵀ
	for o := 0; o < D; o++ {
		for i := 0; i < D; i++ {
			pr.Data[i*D+o] += dp.Data[o*D+i]
		}
	}
	fc := ts[xlLPrefix+"encoder.layers.0.mlp.fc1.weight"]
	df, _ := constPatch{0.01}.Delta(fc.Shape)
	for i, v := range df.Data {
		fc.Data[i] -= v
	}
	mpath := filepath.Join(t.TempDir(), "merged.safetensors")
	if err := safetensors.WriteFloat32(mpath, ts, dt, nil); err != nil {
		t.Fatal(err)
	}
	mf := open(t, mpath)
	ids := b.Encode("a photo of a cat")
	rl := refModel{f: mf, prefix: xlLPrefix, layout: LayoutHF, heads: 3, act: "quick_gelu"}
	rg := refModel{f: mf, prefix: xlGPrefix, layout: LayoutOpenCLIP, heads: 4, act: "gelu"}
	refL, refG := rl.forward(t, chunkIDs(ids, tokenizer.EOS), nil), rg.forward(t, chunkIDs(ids, 0), nil)
	closeTo(t, "patched l", features(enc.Cond, 0, 48), refL[1], 1e-4, 1e-4)
	closeTo(t, "patched g", features(enc.Cond, 48, 64), refG[1], 1e-4, 1e-4)
	closeTo(t, "patched pooled", enc.Pooled.Data, rg.pooled(t, refG, len(ids)+1), 1e-4, 1e-4)
	// The unpatched value is unaffected (separate session).
	enc0, err := clip.Encode(ctx, "a photo of a cat", nil)
	if err != nil {
		t.Fatal(err)
	}
	ref0 := x.refG.forward(t, chunkIDs(ids, 0), nil)
	closeTo(t, "unpatched g", features(enc0.Cond, 48, 64), ref0[1], 1e-4, 1e-4)
	if d := maxDiff(enc0.Cond.Data, enc.Cond.Data); d < 1e-3 {
		t.Errorf("patches changed the conditioning by only %g", d)
	}
	if d := maxDiff(enc0.Pooled.Data, enc.Pooled.Data); d < 1e-3 {
		t.Errorf("projection patch changed pooled by only %g", d)
	}
}

// TestFromFiles loads standalone text-encoder files (CLIPLoader / DualCLIPLoader layouts).
func TestFromFiles(t *testing.T) {
	rt := runtime(t)
	b := bpe(t)
	dir := t.TempDir()
	lp, gp := filepath.Join(dir, "clip_l.safetensors"), filepath.Join(dir, "clip_g.safetensors")
	writeTinyCLIP(t, lp, map[string]*models.CLIPConfig{"text_model.": &models.TinyCLIPL}, 3)
	writeTinyCLIP(t, gp, map[string]*models.CLIPConfig{"": &models.TinyCLIPG}, 4)
	lf, gf := open(t, lp), open(t, gp)
	ctx := context.Background()
	ids := b.Encode("a red car")

	// DualCLIPLoader sdxl, files in either order.
	for _, files := range [][]*safetensors.File{{lf, gf}, {gf, lf}} {
		c, err := FromFiles(files, "sdxl", Options{Runtime: rt})
		if err != nil {
			t.Fatal(err)
		}
		if c.Kind() != KindSDXL || c.Family().Name != "SDXL" || c.Family().ContextDim != 112 {
			t.Fatalf("dual: kind %s family %+v", c.Kind(), c.Family())
		}
		enc, err := c.Encode(ctx, "a red car", nil)
		if err != nil {
			t.Fatal(err)
		}
		rl := refModel{f: lf, prefix: "text_model.", layout: LayoutHF, heads: 3, act: "quick_gelu"}
		rg := refModel{f: gf, prefix: "", layout: LayoutOpenCLIP, heads: 4, act: "gelu"}
		closeTo(t, "dual l", features(enc.Cond, 0, 48), rl.forward(t, chunkIDs(ids, tokenizer.EOS), nil)[1], 1e-4, 1e-4)
		closeTo(t, "dual g", features(enc.Cond, 48, 64), rg.forward(t, chunkIDs(ids, 0), nil)[1], 1e-4, 1e-4)
	}
	// CLIPLoader stable_diffusion with a CLIP-L file: SD1 rules (last layer with final LN).
	c, err := FromFiles([]*safetensors.File{lf}, "stable_diffusion", Options{Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := c.Encode(ctx, "a red car", nil)
	if err != nil {
		t.Fatal(err)
	}
	rl := refModel{f: lf, prefix: "text_model.", layout: LayoutHF, heads: 3, act: "quick_gelu"}
	last := rl.forward(t, chunkIDs(ids, tokenizer.EOS), nil)[2]
	want := layerNorm(last, rl.w(t, "final_layer_norm.weight"), rl.w(t, "final_layer_norm.bias"), 48)
	closeTo(t, "single l", enc.Cond.Data, want, 1e-4, 1e-4)
	if _, err := FromFiles([]*safetensors.File{lf}, "flux", Options{Runtime: rt}); err == nil {
		t.Error("unsupported type accepted")
	}
}

func maxDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

// TestSessionCache encodes with more patch sets than the cache holds, concurrently, and checks
// every result against a sequential run and that evicted sessions are dropped.
func TestSessionCache(t *testing.T) {
	rt := runtime(t)
	bpe(t)
	x := newTinyXL(t)
	clip, err := FromCheckpoint(x.f, x.fam, Options{Runtime: rt})
	if err != nil {
		t.Fatal(err)
	}
	const n = maxSessions + 2
	variants := make([]models.CLIP, n)
	for i := range variants {
		variants[i] = clip.WithPatches(models.Patches{"clip_g.transformer.text_model.encoder.layers.1.mlp.fc2.weight": {{Patch: constPatch{0.01}, Strength: float64(i + 1), Source: "s"}}})
	}
	ctx := context.Background()
	want := make([][]float32, n)
	for i, v := range variants {
		enc, err := v.Encode(ctx, "a cat", nil)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = enc.Cond.Data
	}
	errs := make(chan error, 4*n)
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		for i := range variants {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				enc, err := variants[i].Encode(ctx, "a cat", nil)
				if err == nil && maxDiff(enc.Cond.Data, want[i]) > 1e-5 {
					err = fmt.Errorf("variant %d differs by %g", i, maxDiff(enc.Cond.Data, want[i]))
				}
				errs <- err
			}(i)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	g := clip.Encoders()[1]
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.sessions) > maxSessions || len(g.order) != len(g.sessions) {
		t.Errorf("%d sessions cached (order %d), max %d", len(g.sessions), len(g.order), maxSessions)
	}
}
