package sd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

var sharedEnv *nodes.Env

// testEnv generates the tiny models once per test binary into a temp models folder.
func testEnv(t *testing.T) *nodes.Env {
	t.Helper()
	if sharedEnv != nil {
		return sharedEnv
	}
	dir, err := os.MkdirTemp("", "comfygo-sd-test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := models.GenerateTiny(filepath.Join(dir, "models"), models.GenOptions{}); err != nil {
		t.Fatal(err)
	}
	// a truncated copy of a checkpoint, and a file that is not a checkpoint
	b, err := os.ReadFile(filepath.Join(dir, "models", models.TinySD15File))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "models/checkpoints/truncated.safetensors"), b[:len(b)/2], 0o644)
	os.WriteFile(filepath.Join(dir, "models/checkpoints/garbage.safetensors"), []byte("not a safetensors file at all"), 0o644)
	lb, _ := os.ReadFile(filepath.Join(dir, "models", models.TinyLoRASD15File))
	os.WriteFile(filepath.Join(dir, "models/checkpoints/a-lora.safetensors"), lb, 0o644)
	f := nodes.NewFolders(filepath.Join(dir, "models"), dir+"/in", dir+"/out", dir+"/tmp", dir+"/user")
	sharedEnv = &nodes.Env{Folders: f, Options: map[string]string{"provider": "cpu", "threads": "2"}}
	return sharedEnv
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedEnv != nil {
		if mgr, err := Manager(sharedEnv); err == nil {
			mgr.Close()
		}
		os.RemoveAll(filepath.Dir(sharedEnv.Folders.Models["checkpoints"][0]))
		os.RemoveAll(filepath.Dir(filepath.Dir(sharedEnv.Folders.Models["checkpoints"][0])))
	}
	os.Exit(code)
}

func run(t *testing.T, env *nodes.Env, name string, in nodes.Inputs) ([]any, error) {
	t.Helper()
	d, ok := nodes.Lookup(name)
	if !ok {
		t.Fatalf("node %s not registered", name)
	}
	ctx := &nodes.Context{Context: context.Background(), NodeID: "1", Env: env}
	r, err := d.Execute(ctx, in)
	if err != nil {
		return nil, err
	}
	if len(r.Outputs) != len(d.Outputs) {
		t.Fatalf("%s: %d outputs, declared %d", name, len(r.Outputs), len(d.Outputs))
	}
	return r.Outputs, nil
}

func mustRun(t *testing.T, env *nodes.Env, name string, in nodes.Inputs) []any {
	t.Helper()
	out, err := run(t, env, name, in)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

func TestDefinitions(t *testing.T) {
	want := map[string]string{
		"CheckpointLoaderSimple": "ckpt_name->MODEL,CLIP,VAE",
		"CheckpointLoader":       "config_name,ckpt_name->MODEL,CLIP,VAE",
		"VAELoader":              "vae_name->VAE",
		"VAEDecode":              "samples,vae->IMAGE",
		"VAEEncode":              "pixels,vae->LATENT",
		"VAEDecodeTiled":         "samples,vae,tile_size,overlap,temporal_size,temporal_overlap->IMAGE",
		"VAEEncodeForInpaint":    "pixels,vae,mask,grow_mask_by->LATENT",
		"LatentComposite":        "samples_to,samples_from,x,y,feather->LATENT",
	}
	for name, sig := range want {
		d, ok := nodes.Lookup(name)
		if !ok {
			t.Errorf("%s not registered", name)
			continue
		}
		var ins, outs []string
		for _, in := range d.Required {
			ins = append(ins, in.Name)
		}
		for _, o := range d.Outputs {
			outs = append(outs, o.Type)
		}
		if got := strings.Join(ins, ",") + "->" + strings.Join(outs, ","); got != sig {
			t.Errorf("%s: %s, want %s", name, got, sig)
		}
	}
	env := testEnv(t)
	d, _ := nodes.Lookup("CheckpointLoaderSimple")
	opts := d.Required[0].OptionsFunc(env)
	if !strings.Contains(strings.Join(opts, ","), "tiny-sd15.safetensors") {
		t.Errorf("ckpt_name options %v", opts)
	}
}

func TestCheckpointLoaders(t *testing.T) {
	env := testEnv(t)
	for _, c := range []struct{ file, fam string }{{"tiny-sd15.safetensors", "SD15"}, {"tiny-sdxl.safetensors", "SDXL"}} {
		out := mustRun(t, env, "CheckpointLoaderSimple", nodes.Inputs{"ckpt_name": c.file})
		m, ok := out[0].(models.Model)
		if !ok || m.Family().Name != c.fam {
			t.Fatalf("%s: MODEL %T", c.file, out[0])
		}
		if _, ok := out[1].(models.CLIP); !ok {
			t.Errorf("%s: CLIP %T", c.file, out[1])
		}
		if _, ok := out[2].(models.VAE); !ok {
			t.Errorf("%s: VAE %T", c.file, out[2])
		}
		enc, err := out[1].(models.CLIP).Encode(context.Background(), "a photo of a cat", nil)
		if err != nil {
			t.Fatalf("%s: encode: %v", c.file, err)
		}
		u := m.Family().UNet
		b := enc.Cond.Shape[0]
		in := models.UNetInput{X: tensor.New(b, 4, 4, 4), Timesteps: []float32{500}, Context: enc.Cond}
		if u.AdmInChannels > 0 {
			in.Y = tensor.New(b, u.AdmInChannels)
		}
		if _, err := m.Apply(context.Background(), in); err != nil {
			t.Fatalf("%s: apply with real conditioning: %v", c.file, err)
		}
		// same result through CheckpointLoader (config ignored)
		out2 := mustRun(t, env, "CheckpointLoader", nodes.Inputs{"config_name": "v1-inference.yaml", "ckpt_name": c.file})
		if out2[0].(models.Model).Family().Name != c.fam {
			t.Errorf("CheckpointLoader family")
		}
	}
	mgr, _ := Manager(env)
	before := mgr.Stats()
	mustRun(t, env, "CheckpointLoaderSimple", nodes.Inputs{"ckpt_name": "tiny-sd15.safetensors"})
	if after := mgr.Stats(); after.FilesOpened != before.FilesOpened {
		t.Errorf("reloading an unchanged checkpoint reopened it")
	}
}

func TestLoaderErrors(t *testing.T) {
	env := testEnv(t)
	cases := []struct{ node, file, want string }{
		{"CheckpointLoaderSimple", "missing.safetensors", "checkpoints folder"},
		{"CheckpointLoaderSimple", "truncated.safetensors", "truncated.safetensors"},
		{"CheckpointLoaderSimple", "garbage.safetensors", "garbage.safetensors"},
		{"CheckpointLoaderSimple", "a-lora.safetensors", "no UNet weights"},
		{"VAELoader", "missing.safetensors", "vae folder"},
	}
	for _, c := range cases {
		key := "ckpt_name"
		if c.node == "VAELoader" {
			key = "vae_name"
		}
		_, err := run(t, env, c.node, nodes.Inputs{key: c.file})
		t.Logf("%s(%s): %v", c.node, c.file, err)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s(%s): err %v, want it to mention %q", c.node, c.file, err, c.want)
		}
		if c.file == "missing.safetensors" && !errors.Is(err, nodes.ErrModelNotFound) {
			t.Errorf("missing file error does not wrap ErrModelNotFound: %v", err)
		}
	}
	if _, err := run(t, env, "VAEDecode", nodes.Inputs{"samples": &nodes.Latent{Samples: tensor.New(1, 4, 2, 2)}}); err == nil {
		t.Error("VAEDecode without a VAE should fail")
	}
}

func randImage(b, h, w, c int) *tensor.Tensor {
	t := tensor.New(b, h, w, c)
	s := uint32(7)
	for i := range t.Data {
		s = s*1664525 + 1013904223
		t.Data[i] = float32(s>>8) / float32(1<<24)
	}
	return t
}

func TestVAENodes(t *testing.T) {
	env := testEnv(t)
	vae := mustRun(t, env, "VAELoader", nodes.Inputs{"vae_name": "tiny-vae.safetensors"})[0]
	img := randImage(2, 44, 36, 3)
	lat := mustRun(t, env, "VAEEncode", nodes.Inputs{"pixels": img, "vae": vae})[0].(*nodes.Latent)
	if fmt.Sprint(lat.Samples.Shape) != "[2 4 5 4]" {
		t.Fatalf("VAEEncode shape %v (center crop 44x36 -> 40x32)", lat.Samples.Shape)
	}
	dec := mustRun(t, env, "VAEDecode", nodes.Inputs{"samples": lat, "vae": vae})[0].(*tensor.Tensor)
	if fmt.Sprint(dec.Shape) != "[2 40 32 3]" {
		t.Fatalf("VAEDecode shape %v", dec.Shape)
	}
	for _, v := range dec.Data {
		if v < 0 || v > 1 || math.IsNaN(float64(v)) {
			t.Fatalf("decoded value %v outside [0,1]", v)
		}
	}
	// tiled with one tile covering everything equals the plain decode
	tl := mustRun(t, env, "VAEDecodeTiled", nodes.Inputs{"samples": lat, "vae": vae, "tile_size": int64(512), "overlap": int64(64), "temporal_size": int64(64), "temporal_overlap": int64(8)})[0].(*tensor.Tensor)
	if d := maxAbs(tl, dec); d > 1e-5 {
		t.Errorf("single-tile tiled decode differs by %g", d)
	}
	// real tiling: 10x12 latent, tiles of 64px (8 latent) overlapping 16px (2)
	big := &nodes.Latent{Samples: tensor.New(1, 4, 10, 12)}
	for i := range big.Samples.Data {
		big.Samples.Data[i] = float32(math.Sin(float64(i) * 0.37))
	}
	full := mustRun(t, env, "VAEDecode", nodes.Inputs{"samples": big, "vae": vae})[0].(*tensor.Tensor)
	tiled := mustRun(t, env, "VAEDecodeTiled", nodes.Inputs{"samples": big, "vae": vae, "tile_size": int64(64), "overlap": int64(16), "temporal_size": int64(64), "temporal_overlap": int64(8)})[0].(*tensor.Tensor)
	if fmt.Sprint(tiled.Shape) != "[1 80 96 3]" {
		t.Fatalf("tiled shape %v", tiled.Shape)
	}
	// the tiny VAE's mid attention is global, so tiles differ from the full decode; they
	// must still be a plausible image of the same content.
	if d := meanAbs(tiled, full); d > 0.25 || d == 0 {
		t.Errorf("tiled decode mean abs diff to the full decode %g", d)
	}
}

func maxAbs(a, b *tensor.Tensor) float64 {
	var d float64
	for i := range a.Data {
		d = max(d, math.Abs(float64(a.Data[i]-b.Data[i])))
	}
	return d
}

func meanAbs(a, b *tensor.Tensor) float64 {
	var d float64
	for i := range a.Data {
		d += math.Abs(float64(a.Data[i] - b.Data[i]))
	}
	return d / float64(len(a.Data))
}

func TestVAEEncodeForInpaint(t *testing.T) {
	env := testEnv(t)
	vae := mustRun(t, env, "VAELoader", nodes.Inputs{"vae_name": "tiny-vae.safetensors"})[0].(models.VAE)
	img := randImage(1, 20, 17, 3)
	mask := tensor.New(1, 20, 17)
	mask.Data[5*17+9] = 1 // one masked pixel at (row 5, col 9)
	out := mustRun(t, env, "VAEEncodeForInpaint", nodes.Inputs{"pixels": img, "vae": vae, "mask": mask, "grow_mask_by": int64(3)})[0].(*nodes.Latent)
	if fmt.Sprint(out.Samples.Shape) != "[1 4 2 2]" || fmt.Sprint(out.NoiseMask.Shape) != "[1 1 16 16]" {
		t.Fatalf("shapes %v %v", out.Samples.Shape, out.NoiseMask.Shape)
	}
	// crop offsets (20%8)/2=2 rows, (17%8)/2=0 cols: the pixel lands at (3,9); grown by a 3x3 box.
	var ones []string
	for i, v := range out.NoiseMask.Data {
		if v == 1 {
			ones = append(ones, fmt.Sprintf("%d,%d", i/16, i%16))
		}
	}
	if got := strings.Join(ones, " "); got != "2,8 2,9 2,10 3,8 3,9 3,10 4,8 4,9 4,10" {
		t.Errorf("noise mask ones at %s", got)
	}
	// equals VAEEncode of the greyed, cropped image
	grey := tensor.New(1, 16, 16, 3)
	for y := 0; y < 16; y++ {
		for x := 0; x < 16; x++ {
			for c := 0; c < 3; c++ {
				v := img.Data[((y+2)*17+x)*3+c]
				if y == 3 && x == 9 {
					v = 0.5
				}
				grey.Data[(y*16+x)*3+c] = v
			}
		}
	}
	want, err := vae.Encode(context.Background(), grey)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbs(out.Samples, want); d > 1e-5 {
		t.Errorf("inpaint latent differs from encoding the greyed image by %g", d)
	}
	// grow 0 keeps the (rounded) mask
	out0 := mustRun(t, env, "VAEEncodeForInpaint", nodes.Inputs{"pixels": img, "vae": vae, "mask": mask, "grow_mask_by": int64(0)})[0].(*nodes.Latent)
	if out0.NoiseMask.Data[3*16+9] != 1 || sum(out0.NoiseMask) != 1 {
		t.Errorf("grow 0 mask sum %g", sum(out0.NoiseMask))
	}
}

func sum(t *tensor.Tensor) float64 {
	var s float64
	for _, v := range t.Data {
		s += float64(v)
	}
	return s
}

func TestLatentComposite(t *testing.T) {
	to := &nodes.Latent{Samples: tensor.New(1, 1, 4, 5), BatchIndex: []int{3}}
	from := &nodes.Latent{Samples: tensor.New(1, 1, 3, 3)}
	for i := range from.Samples.Data {
		from.Samples.Data[i] = float32(i + 1)
	}
	env := testEnv(t)
	out := mustRun(t, env, "LatentComposite", nodes.Inputs{"samples_to": to, "samples_from": from, "x": int64(24), "y": int64(8), "feather": int64(0)})[0].(*nodes.Latent)
	want := []float32{
		0, 0, 0, 0, 0,
		0, 0, 0, 1, 2,
		0, 0, 0, 4, 5,
		0, 0, 0, 7, 8,
	}
	if fmt.Sprint(out.Samples.Data) != fmt.Sprint(want) || fmt.Sprint(out.BatchIndex) != "[3]" {
		t.Errorf("composite %v batch %v", out.Samples.Data, out.BatchIndex)
	}
	if sum(to.Samples) != 0 {
		t.Error("samples_to modified in place")
	}
	// feather 16px = 2 latent px, pasted at (8,8) into a 6x6 target: interior edges ramp 1/2, 1
	to6 := &nodes.Latent{Samples: tensor.New(1, 1, 6, 6)}
	ones := &nodes.Latent{Samples: tensor.New(1, 1, 3, 3)}
	for i := range ones.Samples.Data {
		ones.Samples.Data[i] = 1
	}
	out = mustRun(t, env, "LatentComposite", nodes.Inputs{"samples_to": to6, "samples_from": ones, "x": int64(8), "y": int64(8), "feather": int64(16)})[0].(*nodes.Latent)
	row := out.Samples.Data[1*6 : 2*6]
	if fmt.Sprint(row) != "[0 0.25 0.5 0.25 0 0]" {
		t.Errorf("feathered row %v", row)
	}
}

// The golden tiny SD1.5 checkpoint loads through CheckpointLoaderSimple when its config file
// (tiny_sd15.json, the sidecar) sits next to it, and its UNet reproduces ComfyUI's output.
func TestGoldenCheckpointWithSidecar(t *testing.T) {
	dir := os.Getenv("COMFYGO_GOLDEN")
	if dir == "" {
		root, _ := models.RepoRoot()
		dir = filepath.Join(root, "..", "shared", "golden")
	}
	if _, err := os.Stat(filepath.Join(dir, "golden.json")); err != nil {
		t.Skipf("golden fixtures not found at %s (set COMFYGO_GOLDEN)", dir)
	}
	ck := t.TempDir()
	for _, n := range []string{"tiny_sd15.safetensors", "tiny_sd15.json"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ck, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := testEnv(t)
	f := *base.Folders
	f.Models = map[string][]string{"checkpoints": {ck}}
	env := &nodes.Env{Folders: &f, Options: base.Options}
	out := mustRun(t, env, "CheckpointLoaderSimple", nodes.Inputs{"ckpt_name": "tiny_sd15.safetensors"})
	m := out[0].(models.Model)
	if u := m.Family().UNet; u.NumHeads != 2 || u.ContextDim != 32 {
		t.Fatalf("sidecar config not applied: %s heads %d", u, u.NumHeads)
	}
	if _, err := out[1].(models.CLIP).Encode(context.Background(), "a photo of a cat", nil); err != nil {
		t.Fatalf("CLIP with sidecar heads: %v", err)
	}
}
