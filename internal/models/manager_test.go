package models

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/comfygo/comfygo/internal/tensor"
)

func testManager(t *testing.T, opt ManagerOptions) *Manager {
	m := NewManager(testFactory(t), opt)
	t.Cleanup(func() { m.Close() })
	return m
}

// sd1Sigmas is ModelSamplingDiscrete's eps table for the SD1 linear schedule.
func sd1Sigmas() []float64 {
	s := make([]float64, 1000)
	a, b := math.Sqrt(0.00085), math.Sqrt(0.012)
	ac := 1.0
	for i := range s {
		beta := a + (b-a)*float64(i)/999
		beta *= beta
		ac *= 1 - beta
		s[i] = float64(float32(math.Sqrt((1 - ac) / ac)))
	}
	return s
}

func TestGoldenThroughManager(t *testing.T) {
	dir := GoldenDir(t)
	gf := openGolden(t, "unet_eps.safetensors")
	m := testManager(t, ManagerOptions{})
	ck, err := m.LoadCheckpoint(filepath.Join(dir, "tiny_sd15.safetensors"), DetectOptions{Family: "SD15", NumHeads: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []string{"a", "b", "c"} {
		xk := map[string]string{"a": "a", "b": "a", "c": "c"}[c]
		ts := get(t, gf, c+".timesteps")
		out, err := ck.Model.Apply(ctx, UNetInput{X: get(t, gf, xk+".x"), Timesteps: ts.Data, Context: get(t, gf, xk+".context")})
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, "unet_eps "+c, out, get(t, gf, c+".eps"), 1e-4, 1e-4)
	}
	if s := m.Stats(); s.SessionsBuilt != 2 {
		t.Errorf("a and b share a session, c needs its own: built %d", s.SessionsBuilt)
	}

	// apply_model: sigma -> t, c_in scaling, denoised = x - eps·sigma.
	x := get(t, gf, "a.x")
	sig := get(t, gf, "apply_model_eps.sigma").Data
	table := sd1Sigmas()
	b := x.Shape[0]
	per := len(x.Data) / b
	xin := x.Clone()
	tsteps := make([]float32, b)
	for i := 0; i < b; i++ {
		best := 0
		for j := range table {
			if math.Abs(math.Log(float64(sig[i]))-math.Log(table[j])) < math.Abs(math.Log(float64(sig[i]))-math.Log(table[best])) {
				best = j
			}
		}
		tsteps[i] = float32(best)
		for j := 0; j < per; j++ {
			xin.Data[i*per+j] /= float32(math.Sqrt(float64(sig[i])*float64(sig[i]) + 1))
		}
	}
	if want := get(t, gf, "apply_model_eps.timestep").Data; fmt.Sprint(want) != fmt.Sprint(tsteps) {
		t.Fatalf("timesteps %v, want %v", tsteps, want)
	}
	eps, err := ck.Model.Apply(ctx, UNetInput{X: xin, Timesteps: tsteps, Context: get(t, gf, "a.context")})
	if err != nil {
		t.Fatal(err)
	}
	den := x.Clone()
	for i := range den.Data {
		den.Data[i] = x.Data[i] - eps.Data[i]*sig[i/per]
	}
	closeTo(t, "apply_model_eps.denoised", den, get(t, gf, "apply_model_eps.denoised"), 2e-3, 1e-4)

	// VAE
	vf := openGolden(t, "vae.safetensors")
	img, err := ck.VAE.Decode(ctx, get(t, vf, "decode.latent"))
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "vae decode.image", img, get(t, vf, "decode.image"), 5e-4, 1e-4)
	lat, err := ck.VAE.Encode(ctx, get(t, vf, "encode.image"))
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "vae encode.latent", lat, get(t, vf, "encode.latent"), 5e-4, 1e-4)
	lat, err = ck.VAE.Encode(ctx, get(t, vf, "encode_crop.image"))
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "vae encode_crop.latent", lat, get(t, vf, "encode_crop.latent"), 5e-4, 1e-4)

	// Reloading the unchanged checkpoint reuses the open file and its sessions.
	before := m.Stats()
	ck2, err := m.LoadCheckpoint(filepath.Join(dir, "tiny_sd15.safetensors"), DetectOptions{Family: "SD15", NumHeads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ck2.Model.Apply(ctx, UNetInput{X: get(t, gf, "c.x"), Timesteps: []float32{1}, Context: get(t, gf, "c.context")}); err != nil {
		t.Fatal(err)
	}
	if after := m.Stats(); after.FilesOpened != before.FilesOpened || after.SessionsBuilt != before.SessionsBuilt {
		t.Errorf("reload rebuilt: %+v -> %+v", before, after)
	}
}

func tinyDir(t *testing.T) string {
	dir := t.TempDir()
	if _, err := GenerateTiny(dir, GenOptions{}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func randTensor(seed int, shape ...int) *tensor.Tensor {
	x := tensor.New(shape...)
	s := uint32(seed*2654435761 + 1)
	for i := range x.Data {
		s ^= s << 13
		s ^= s >> 17
		s ^= s << 5
		x.Data[i] = float32(s%2000)/1000 - 1
	}
	return x
}

func TestTinyModelsRun(t *testing.T) {
	dir := tinyDir(t)
	m := testManager(t, ManagerOptions{})
	ctx := context.Background()
	for _, c := range []struct {
		file string
		y    bool
	}{{TinySD15File, false}, {TinySDXLFile, true}} {
		ck, err := m.LoadCheckpoint(filepath.Join(dir, c.file), DetectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		u := ck.Family.UNet
		in := UNetInput{X: randTensor(1, 2, 4, 5, 7), Timesteps: []float32{999, 10}, Context: randTensor(2, 2, 77, u.ContextDim)}
		if c.y {
			in.Y = randTensor(3, 2, u.AdmInChannels)
			bad := in
			bad.Y = nil
			if _, err := ck.Model.Apply(ctx, bad); err == nil || !strings.Contains(err.Error(), "needs y") {
				t.Errorf("missing y: %v", err)
			}
		}
		out, err := ck.Model.Apply(ctx, in)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if fmt.Sprint(out.Shape) != "[2 4 5 7]" || !finite(out) || std(out) < 1e-3 {
			t.Errorf("%s: output %v std %g", c.file, out.Shape, std(out))
		}
		img, err := ck.VAE.Decode(ctx, randTensor(4, 1, 4, 3, 5))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(img.Shape) != "[1 24 40 3]" || !finite(img) {
			t.Errorf("decode shape %v", img.Shape)
		}
		lat, err := ck.VAE.Encode(ctx, img)
		if err != nil || fmt.Sprint(lat.Shape) != "[1 4 3 5]" {
			t.Errorf("encode %v %v", lat, err)
		}
	}
	vae, err := m.LoadVAE(filepath.Join(dir, TinyVAEFile))
	if err != nil {
		t.Fatal(err)
	}
	if img, err := vae.Decode(ctx, randTensor(4, 2, 4, 2, 2)); err != nil || fmt.Sprint(img.Shape) != "[2 16 16 3]" {
		t.Errorf("standalone VAE decode: %v %v", img, err)
	}
}

func finite(x *tensor.Tensor) bool {
	for _, v := range x.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

func std(x *tensor.Tensor) float64 {
	var m, s float64
	for _, v := range x.Data {
		m += float64(v)
	}
	m /= float64(len(x.Data))
	for _, v := range x.Data {
		s += (float64(v) - m) * (float64(v) - m)
	}
	return math.Sqrt(s / float64(len(x.Data)))
}

// lowRank is a test LoRA patch.
type lowRank struct {
	up, down *tensor.Tensor
	scale    float64
}

func (l lowRank) Factors() (*tensor.Tensor, *tensor.Tensor, float64) { return l.up, l.down, l.scale }
func (l lowRank) Delta(shape []int) (*tensor.Tensor, error) {
	out, r := l.up.Shape[0], l.up.Shape[1]
	in := len(l.down.Data) / r
	d := tensor.New(shape...)
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			var s float64
			for k := 0; k < r; k++ {
				s += float64(l.up.Data[o*r+k]) * float64(l.down.Data[k*in+i])
			}
			d.Data[o*in+i] = float32(s * l.scale)
		}
	}
	return d, nil
}

// fullDelta hides the LowRank interface so the dense path is used.
type fullDelta struct{ p lowRank }

func (f fullDelta) Delta(shape []int) (*tensor.Tensor, error) { return f.p.Delta(shape) }

func TestPatchesAndCache(t *testing.T) {
	dir := tinyDir(t)
	m := testManager(t, ManagerOptions{})
	ctx := context.Background()
	ck, err := m.LoadCheckpoint(filepath.Join(dir, TinySD15File), DetectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in := UNetInput{X: randTensor(1, 1, 4, 4, 4), Timesteps: []float32{500}, Context: randTensor(2, 1, 77, 48)}
	base, err := ck.Model.Apply(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	key := UNetPrefix + "input_blocks.1.0.in_layers.2.weight" // [32,32,3,3]
	lr := lowRank{up: randTensor(5, 32, 4, 1, 1), down: randTensor(6, 4, 32, 3, 3), scale: 0.5}
	pm := ck.Model.WithPatches(Patches{key: {{Patch: lr, Strength: 1, Source: "a"}}})
	pd := ck.Model.WithPatches(Patches{key: {{Patch: fullDelta{lr}, Strength: 1, Source: "b"}}})
	p0 := ck.Model.WithPatches(Patches{key: {{Patch: lr, Strength: 0, Source: "c"}}})
	o1, err := pm.Apply(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	o2, err := pd.Apply(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	o0, err := p0.Apply(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "low-rank vs dense patch", o1, o2, 1e-4, 1e-4)
	closeTo(t, "strength 0", o0, base, 1e-5, 0)
	if d := maxDiff(o1, base); d < 1e-3 {
		t.Errorf("patch had no effect (max diff %g)", d)
	}
	// the unpatched model is unaffected and still cached
	built := m.Stats().SessionsBuilt
	again, _ := ck.Model.Apply(ctx, in)
	closeTo(t, "unpatched again", again, base, 0, 0)
	if m.Stats().SessionsBuilt != built {
		t.Error("unpatched session rebuilt")
	}
	// a tiny budget evicts idle sessions
	m.opt.BudgetBytes = 1
	m.mu.Lock()
	m.evictLocked()
	m.mu.Unlock()
	if m.UsedBytes() != 0 || m.Stats().SessionsEvicted == 0 {
		t.Errorf("eviction: used %d stats %+v", m.UsedBytes(), m.Stats())
	}
	if _, err := ck.Model.Apply(ctx, in); err != nil {
		t.Fatal(err)
	}
}

func maxDiff(a, b *tensor.Tensor) float64 {
	var d float64
	for i := range a.Data {
		d = max(d, math.Abs(float64(a.Data[i]-b.Data[i])))
	}
	return d
}

// Concurrent evaluations of one shape share a single session build.
func TestConcurrentApply(t *testing.T) {
	dir := tinyDir(t)
	m := testManager(t, ManagerOptions{})
	ck, err := m.LoadCheckpoint(filepath.Join(dir, TinySD15File), DetectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	in := UNetInput{X: randTensor(1, 1, 4, 4, 4), Timesteps: []float32{10}, Context: randTensor(2, 1, 77, 48)}
	errs := make(chan error, 4)
	outs := make(chan *tensor.Tensor, 4)
	for i := 0; i < 4; i++ {
		go func() {
			o, err := ck.Model.Apply(context.Background(), in)
			outs <- o
			errs <- err
		}()
	}
	var first *tensor.Tensor
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		o := <-outs
		if first == nil {
			first = o
		} else if maxDiff(first, o) != 0 {
			t.Error("concurrent results differ")
		}
	}
	if s := m.Stats(); s.SessionsBuilt != 1 {
		t.Errorf("built %d sessions for one shape", s.SessionsBuilt)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ck.Model.Apply(ctx, in); err == nil {
		t.Error("cancelled context should fail the run")
	}
}
