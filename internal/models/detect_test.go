package models

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/comfygo/comfygo/internal/safetensors"
)

func count(ps []Param) (n, params int) {
	for _, p := range ps {
		k := 1
		for _, d := range p.Shape {
			k *= d
		}
		n++
		params += k
	}
	return
}

// Spec §3.9, §5.1, §7 sanity numbers.
func TestParamCounts(t *testing.T) {
	cases := []struct {
		name      string
		ps        []Param
		n, params int
	}{
		{"SD15 UNet", UNetParams(&FullUNetSD15), 686, 859520964},
		{"SDXL UNet", UNetParams(&FullUNetSDXL), 1680, 2567463684},
		{"full VAE", VAEParams(&FullVAE), 248, 83653863},
		{"tiny UNet A", UNetParams(&TinyUNetSD15), 304, 1113380},
		{"tiny UNet B", UNetParams(&TinyUNetSDXL), 428, 2244804},
		{"tiny-L", CLIPParams(&TinyCLIPL), 52, 2460192},
		{"tiny-G", CLIPParams(&TinyCLIPG), 42, 3321217},
		{"tiny VAE", VAEParams(&TinyVAE), 180, 1028935},
	}
	for _, c := range cases {
		n, p := count(c.ps)
		if n != c.n || p != c.params {
			t.Errorf("%s: %d tensors / %d params, want %d / %d", c.name, n, p, c.n, c.params)
		}
	}
}

func TestLoRASizes(t *testing.T) {
	for _, c := range []struct {
		cfg            *UNetConfig
		modules, param int
	}{{&FullUNetSD15, 278, 67252224}, {&FullUNetSDXL, 788, 196751360}} {
		specs := loraSpecs(c.cfg, 64, 64)
		mods, params := 0, 0
		for _, s := range specs {
			if strings.HasSuffix(s.name, ".alpha") {
				mods++
				continue
			}
			k := 1
			for _, d := range s.shape {
				k *= d
			}
			params += k
		}
		if mods != c.modules || params != c.param {
			t.Errorf("LCM-LoRA: %d modules / %d params, want %d / %d", mods, params, c.modules, c.param)
		}
	}
}

func headerOf(t *testing.T, path string) *Header {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return HeaderFromFile(f)
}

func TestDetectTiny(t *testing.T) {
	dir := t.TempDir()
	if _, err := GenerateTiny(dir, GenOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		file, fam string
		want      *UNetConfig
		scale     float64
		encs      int
	}{
		{TinySD15File, "SD15", &TinyUNetSD15, 0.18215, 1},
		{TinySDXLFile, "SDXL", &TinyUNetSDXL, 0.13025, 2},
	} {
		f, err := Detect(headerOf(t, filepath.Join(dir, c.file)), DetectOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if f.Name != c.fam || f.LatentScale != c.scale || len(f.TextEncoders) != c.encs || f.Prediction != "eps" {
			t.Errorf("%s: family %+v", c.file, f)
		}
		if f.UNet.String() != c.want.String() || f.UNet.NumHeads != c.want.NumHeads || f.UNet.NumHeadChannels != c.want.NumHeadChannels ||
			!equalInts(f.UNet.TransformerDepthOutput, c.want.TransformerDepthOutput) {
			t.Errorf("%s: detected %s heads %d/%d tdo %v, want %s", c.file, f.UNet, f.UNet.NumHeads, f.UNet.NumHeadChannels, f.UNet.TransformerDepthOutput, c.want)
		}
		if f.VAE == nil || f.VAE.String() != TinyVAE.String() {
			t.Errorf("%s: VAE %v", c.file, f.VAE)
		}
		if f.TextEncoders[0].Heads != 3 || (c.encs == 2 && f.TextEncoders[1].Heads != 4) {
			t.Errorf("%s: text encoders %+v", c.file, f.TextEncoders)
		}
	}
}

// Header-only fixtures of the real families (shapes from the full-size configs).
func fakeHeader(u *UNetConfig, extra map[string]TensorInfo) *Header {
	h := &Header{Tensors: map[string]TensorInfo{}}
	for _, p := range UNetParams(u) {
		h.Tensors[UNetPrefix+p.Name] = TensorInfo{DType: "F16", Shape: p.Shape}
	}
	for k, v := range extra {
		h.Tensors[k] = v
	}
	return h
}

func TestDetectFamilies(t *testing.T) {
	sd2 := FullUNetSD15
	sd2.ContextDim, sd2.UseLinear = 1024, true
	ref := UNetConfig{InChannels: 4, OutChannels: 4, ModelChannels: 384, ChannelMult: []int{1, 2, 4, 4}, NumResBlocks: []int{2, 2, 2, 2},
		TransformerDepth: []int{0, 0, 4, 4, 4, 4, 0, 0}, TransformerDepthOutput: []int{0, 0, 0, 4, 4, 4, 4, 4, 4, 0, 0, 0},
		TransformerDepthMiddle: 4, ContextDim: 1280, UseLinear: true, AdmInChannels: 2560}
	inpaint := FullUNetSD15
	inpaint.InChannels = 9
	odd := FullUNetSD15
	odd.ContextDim = 512
	cases := []struct {
		name   string
		h      *Header
		fam    string
		pred   string
		params int
		err    string
	}{
		{"sd15", fakeHeader(&FullUNetSD15, nil), "SD15", "eps", 859520964, ""},
		{"sd15 inpaint", fakeHeader(&inpaint, nil), "SD15", "eps", 0, ""},
		{"sd2", fakeHeader(&sd2, nil), "SD20", "eps", 865910724, ""},
		{"sdxl", fakeHeader(&FullUNetSDXL, nil), "SDXL", "eps", 2567463684, ""},
		{"sdxl vpred", fakeHeader(&FullUNetSDXL, map[string]TensorInfo{"v_pred": {DType: "F32", Shape: []int{0}}}), "SDXL", "v_prediction", 0, ""},
		{"refiner", fakeHeader(&ref, nil), "SDXLRefiner", "eps", 2259526660, ""},
		{"unknown", fakeHeader(&odd, nil), "", "", 0, "context_dim=512"},
		{"no unet", &Header{Tensors: map[string]TensorInfo{"foo": {DType: "F32", Shape: []int{1}}}}, "", "", 0, "no UNet weights"},
	}
	for _, c := range cases {
		f, err := Detect(c.h, DetectOptions{})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if f.Name != c.fam || f.Prediction != c.pred {
			t.Errorf("%s: got %s/%s", c.name, f.Name, f.Prediction)
		}
		if c.params > 0 {
			if _, p := count(UNetParams(f.UNet)); p != c.params {
				t.Errorf("%s: re-enumerated %d params, want %d", c.name, p, c.params)
			}
		}
	}
}

func TestSD2VPrediction(t *testing.T) {
	sd2 := FullUNetSD15
	sd2.ContextDim, sd2.UseLinear = 1024, true
	for _, c := range []struct {
		vals []float32
		want string
	}{{[]float32{0.2, -0.2, 0.2, -0.2}, "v_prediction"}, {[]float32{0.01, -0.01}, "eps"}} {
		h := fakeHeader(&sd2, nil)
		h.Read = func(string) ([]float32, error) { return c.vals, nil }
		f, err := Detect(h, DetectOptions{})
		if err != nil || f.Prediction != c.want {
			t.Errorf("vals %v: %v %v", c.vals, f, err)
		}
	}
}

func TestGoldenCheckpointDetect(t *testing.T) {
	dir := GoldenDir(t)
	h := headerOf(t, filepath.Join(dir, "tiny_sd15.safetensors"))
	if _, err := Detect(h, DetectOptions{}); err == nil || !strings.Contains(err.Error(), "model_channels=32") {
		t.Errorf("plain detect of the golden tiny model should fail naming its config, got %v", err)
	}
	f, err := Detect(h, DetectOptions{Family: "SD15", NumHeads: 2})
	if err != nil {
		t.Fatal(err)
	}
	u := f.UNet
	if u.ModelChannels != 32 || u.ContextDim != 32 || !equalInts(u.TransformerDepth, []int{1, 1, 1, 1}) ||
		!equalInts(u.TransformerDepthOutput, []int{1, 1, 1, 1, 1, 1}) || u.TransformerDepthMiddle != 1 || u.UseLinear {
		t.Errorf("golden unet config %s", u)
	}
	if f.VAE.Ch != 32 || !equalInts(f.VAE.ChMult, []int{1, 2, 2, 2}) || f.VAE.NumResBlocks != 1 {
		t.Errorf("golden VAE %s", f.VAE)
	}
}

// GoldenDir returns the golden fixture folder or skips the test.
func GoldenDir(t testing.TB) string {
	dir := os.Getenv("COMFYGO_GOLDEN")
	if dir == "" {
		root, err := RepoRoot()
		if err == nil {
			dir = filepath.Join(root, "..", "shared", "golden")
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "golden.json")); err != nil {
		t.Skipf("golden fixtures not found at %q (set COMFYGO_GOLDEN): %v", dir, err)
	}
	return dir
}

func TestGenerateTinyDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	pa, err := GenerateTiny(a, GenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateTiny(b, GenOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pa {
		rel, _ := filepath.Rel(a, p)
		x, _ := os.ReadFile(p)
		y, _ := os.ReadFile(filepath.Join(b, rel))
		if len(x) == 0 || string(x) != string(y) {
			t.Errorf("%s differs between runs", rel)
		}
	}
	if len(pa) != 7 {
		t.Errorf("wrote %d files", len(pa))
	}
}
