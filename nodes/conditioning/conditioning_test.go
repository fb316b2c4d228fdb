package conditioning

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/internal/tokenizer"
	"github.com/comfygo/comfygo/nodes"
)

// fakeCLIP records what the nodes ask of it.
type fakeCLIP struct {
	layer    int
	lastText string
	lastOpts map[string]string
}

func (f *fakeCLIP) Family() *models.Family                 { return &models.Family{Name: "SDXL"} }
func (f *fakeCLIP) Keys() []string                         { return nil }
func (f *fakeCLIP) WithPatches(models.Patches) models.CLIP { return f }
func (f *fakeCLIP) WithLastLayer(l int) models.CLIP {
	n := *f
	n.layer = l
	return &n
}
func (f *fakeCLIP) Encode(ctx context.Context, text string, opts map[string]string) (models.Encoded, error) {
	f.lastText, f.lastOpts = text, opts
	c := tensor.New(1, 77, 4)
	for i := range c.Data {
		c.Data[i] = float32(len(text)) + float32(i)*0.001
	}
	return models.Encoded{Cond: c, Pooled: tensor.FromData([]float32{1, 2}, 1, 2)}, nil
}

func run(t *testing.T, name string, in nodes.Inputs) nodes.Result {
	t.Helper()
	d, ok := nodes.Lookup(name)
	if !ok {
		t.Fatalf("%s not registered", name)
	}
	ctx := &nodes.Context{Context: context.Background(), Env: &nodes.Env{}}
	r, err := d.Execute(ctx, in)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

func TestDefinitions(t *testing.T) {
	order := map[string][]string{
		"CLIPTextEncode":            {"text", "clip"},
		"CLIPSetLastLayer":          {"clip", "stop_at_clip_layer"},
		"CLIPTextEncodeSDXL":        {"clip", "width", "height", "crop_w", "crop_h", "target_width", "target_height", "text_g", "text_l"},
		"CLIPTextEncodeSDXLRefiner": {"ascore", "width", "height", "text", "clip"},
		"ConditioningCombine":       {"conditioning_1", "conditioning_2"},
		"ConditioningConcat":        {"conditioning_to", "conditioning_from"},
		"ConditioningSetArea":       {"conditioning", "width", "height", "x", "y", "strength"},
		"ConditioningZeroOut":       {"conditioning"},
		"ConditioningAverage":       {"conditioning_to", "conditioning_from", "conditioning_to_strength"},
		"CLIPLoader":                {"clip_name", "type"},
		"DualCLIPLoader":            {"clip_name1", "clip_name2", "type"},
	}
	for name, want := range order {
		d, ok := nodes.Lookup(name)
		if !ok {
			t.Fatalf("%s not registered", name)
		}
		var got []string
		for _, in := range d.Required {
			got = append(got, in.Name)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s inputs %v, want %v", name, got, want)
		}
	}
	d, _ := nodes.Lookup("CLIPSetLastLayer")
	if in, _, _ := d.Input("stop_at_clip_layer"); in.Default != -1 || in.Min != -24 || in.Max != -1 {
		t.Errorf("stop_at_clip_layer %+v", in)
	}
	d, _ = nodes.Lookup("CLIPLoader")
	if in, _, _ := d.Input("type"); in.Options[0] != "stable_diffusion" {
		t.Errorf("CLIPLoader types %v", in.Options)
	}
}

func TestEncodeNodes(t *testing.T) {
	fc := &fakeCLIP{}
	r := run(t, "CLIPTextEncode", nodes.Inputs{"clip": models.CLIP(fc), "text": "a cat"})
	c := r.Outputs[0].(nodes.Conditioning)
	if len(c) != 1 || c[0].Cond.Shape[1] != 77 || c[0].Pooled == nil || fc.lastText != "a cat" || fc.lastOpts != nil {
		t.Fatalf("CLIPTextEncode: %+v", c)
	}
	r = run(t, "CLIPTextEncodeSDXL", nodes.Inputs{"clip": models.CLIP(fc), "width": int64(1024), "height": int64(768),
		"crop_w": int64(0), "crop_h": int64(8), "target_width": int64(2048), "target_height": int64(1536), "text_g": "global", "text_l": "local"})
	c = r.Outputs[0].(nodes.Conditioning)
	if fc.lastOpts["clip_g"] != "global" || fc.lastOpts["clip_l"] != "local" {
		t.Errorf("SDXL opts %v", fc.lastOpts)
	}
	want := map[string]any{"width": 1024, "height": 768, "crop_w": 0, "crop_h": 8, "target_width": 2048, "target_height": 1536}
	if !reflect.DeepEqual(c[0].Options, want) {
		t.Errorf("SDXL options %v", c[0].Options)
	}
	r = run(t, "CLIPTextEncodeSDXLRefiner", nodes.Inputs{"clip": models.CLIP(fc), "ascore": 6.0, "width": int64(1024), "height": int64(1024), "text": "x"})
	c = r.Outputs[0].(nodes.Conditioning)
	if c[0].Options["aesthetic_score"] != 6.0 || c[0].Options["width"] != 1024 {
		t.Errorf("refiner options %v", c[0].Options)
	}
	r = run(t, "CLIPSetLastLayer", nodes.Inputs{"clip": models.CLIP(fc), "stop_at_clip_layer": int64(-2)})
	if r.Outputs[0].(*fakeCLIP).layer != -2 || fc.layer != 0 {
		t.Error("CLIPSetLastLayer did not set the layer on a copy")
	}
	d, _ := nodes.Lookup("CLIPTextEncode")
	if _, err := d.Execute(&nodes.Context{Context: context.Background(), Env: &nodes.Env{}}, nodes.Inputs{"text": "x"}); err == nil || !strings.Contains(err.Error(), "clip input is invalid") {
		t.Errorf("missing clip: %v", err)
	}
}

func TestConditioningOps(t *testing.T) {
	a := nodes.Conditioning{{Cond: tensor.FromData([]float32{1, 2, 3, 4}, 1, 2, 2), Pooled: tensor.FromData([]float32{5}, 1, 1), Options: map[string]any{"strength": 0.5}}}
	b := nodes.Conditioning{{Cond: tensor.FromData([]float32{7, 8}, 1, 1, 2)}, {Cond: tensor.FromData([]float32{9, 9}, 1, 1, 2)}}
	c := run(t, "ConditioningCombine", nodes.Inputs{"conditioning_1": a, "conditioning_2": b}).Outputs[0].(nodes.Conditioning)
	if len(c) != 3 || c[0].Cond != a[0].Cond || c[2].Cond != b[1].Cond {
		t.Errorf("combine %v", c)
	}
	c = run(t, "ConditioningConcat", nodes.Inputs{"conditioning_to": a, "conditioning_from": b}).Outputs[0].(nodes.Conditioning)
	if len(c) != 1 || !reflect.DeepEqual(c[0].Cond.Shape, []int{1, 3, 2}) || !reflect.DeepEqual(c[0].Cond.Data, []float32{1, 2, 3, 4, 7, 8}) || c[0].Options["strength"] != 0.5 {
		t.Errorf("concat %+v", c[0])
	}
	c = run(t, "ConditioningSetArea", nodes.Inputs{"conditioning": a, "width": int64(64), "height": int64(72), "x": int64(16), "y": int64(8), "strength": 1.5}).Outputs[0].(nodes.Conditioning)
	if c[0].Options["area"] != [4]int{9, 8, 1, 2} || c[0].Options["strength"] != 1.5 || c[0].Options["set_area_to_bounds"] != false {
		t.Errorf("set area %v", c[0].Options)
	}
	if a[0].Options["strength"] != 0.5 || a[0].Options["area"] != nil {
		t.Error("set area mutated its input")
	}
	// Average: from is cut/zero-padded to to's length; pooled mixed.
	long := nodes.Conditioning{{Cond: tensor.FromData([]float32{10, 20, 30, 40, 50, 60}, 1, 3, 2), Pooled: tensor.FromData([]float32{1}, 1, 1)}}
	c = run(t, "ConditioningAverage", nodes.Inputs{"conditioning_to": a, "conditioning_from": long, "conditioning_to_strength": 0.25}).Outputs[0].(nodes.Conditioning)
	if !reflect.DeepEqual(c[0].Cond.Data, []float32{7.75, 15.5, 23.25, 31}) || c[0].Pooled.Data[0] != 5*0.25+1*0.75 {
		t.Errorf("average %v %v", c[0].Cond.Data, c[0].Pooled.Data)
	}
	c = run(t, "ConditioningAverage", nodes.Inputs{"conditioning_to": long, "conditioning_from": a, "conditioning_to_strength": 0.5}).Outputs[0].(nodes.Conditioning)
	if !reflect.DeepEqual(c[0].Cond.Data, []float32{5.5, 11, 16.5, 22, 25, 30}) {
		t.Errorf("average padded %v", c[0].Cond.Data)
	}
	c = run(t, "ConditioningZeroOut", nodes.Inputs{"conditioning": a}).Outputs[0].(nodes.Conditioning)
	if !reflect.DeepEqual(c[0].Cond.Data, []float32{0, 0, 0, 0}) || !reflect.DeepEqual(c[0].Pooled.Data, []float32{0}) || a[0].Cond.Data[0] != 1 || a[0].Pooled.Data[0] != 5 {
		t.Errorf("zero out %+v", c[0])
	}
}

// writeCLIP writes a random tiny text encoder with a real key layout.
func writeCLIP(t *testing.T, path, prefix string, c *models.CLIPConfig, seed uint64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	ts := map[string]*tensor.Tensor{}
	for _, p := range models.CLIPParams(c) {
		x := tensor.New(p.Shape...)
		for i := range x.Data {
			switch p.Kind {
			case models.KindNormW:
				x.Data[i] = 1
			case models.KindNormB:
			case models.KindEmbed:
				x.Data[i] = float32(r.NormFloat64()) * 0.5
			default:
				x.Data[i] = float32(r.NormFloat64()) * 0.05
			}
		}
		ts[prefix+p.Name] = x
	}
	if err := safetensors.WriteFloat32(path, ts, safetensors.F16, nil); err != nil {
		t.Fatal(err)
	}
}

// TestLoaders loads standalone tiny encoders through CLIPLoader / DualCLIPLoader (ONNX Runtime)
// and encodes with the SDXL node.
func TestLoaders(t *testing.T) {
	if _, err := tokenizer.Default(); err != nil {
		t.Skipf("CLIP vocabulary absent: %v", err)
	}
	dir := t.TempDir()
	te := filepath.Join(dir, "text_encoders")
	if err := os.MkdirAll(te, 0o755); err != nil {
		t.Fatal(err)
	}
	writeCLIP(t, filepath.Join(te, "tiny_l.safetensors"), "text_model.", &models.TinyCLIPL, 1)
	writeCLIP(t, filepath.Join(te, "tiny_g.safetensors"), "", &models.TinyCLIPG, 2)
	env := &nodes.Env{Folders: nodes.NewFolders(dir, dir, dir, dir, dir), Options: map[string]string{"provider": "cpu", "threads": "2"}}
	if _, err := Runtime(env); err != nil {
		t.Skipf("ONNX Runtime unavailable: %v", err)
	}
	ctx := &nodes.Context{Context: context.Background(), Env: env}
	exec := func(name string, in nodes.Inputs) (nodes.Result, error) {
		d, _ := nodes.Lookup(name)
		return d.Execute(ctx, in)
	}
	if got := textEncoderFiles(env); !reflect.DeepEqual(got, []string{"tiny_g.safetensors", "tiny_l.safetensors"}) {
		t.Fatalf("text encoder list %v", got)
	}
	r, err := exec("DualCLIPLoader", nodes.Inputs{"clip_name1": "tiny_l.safetensors", "clip_name2": "tiny_g.safetensors", "type": "sdxl"})
	if err != nil {
		t.Fatal(err)
	}
	clip := r.Outputs[0].(models.CLIP)
	r2, _ := exec("DualCLIPLoader", nodes.Inputs{"clip_name1": "tiny_l.safetensors", "clip_name2": "tiny_g.safetensors", "type": "sdxl"})
	if r2.Outputs[0] != r.Outputs[0] {
		t.Error("DualCLIPLoader did not reuse the loaded CLIP")
	}
	r, err = exec("CLIPTextEncodeSDXL", nodes.Inputs{"clip": clip, "width": int64(1024), "height": int64(1024), "crop_w": int64(0), "crop_h": int64(0),
		"target_width": int64(1024), "target_height": int64(1024), "text_g": "a photo of a cat", "text_l": strings.Repeat("dog ", 80)})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Outputs[0].(nodes.Conditioning)
	if fmt.Sprint(c[0].Cond.Shape) != "[1 154 112]" || fmt.Sprint(c[0].Pooled.Shape) != "[1 64]" {
		t.Fatalf("SDXL shapes %v %v", c[0].Cond.Shape, c[0].Pooled.Shape)
	}
	r, err = exec("CLIPLoader", nodes.Inputs{"clip_name": "tiny_l.safetensors", "type": "stable_diffusion"})
	if err != nil {
		t.Fatal(err)
	}
	r, err = exec("CLIPTextEncode", nodes.Inputs{"clip": r.Outputs[0], "text": "a photo of a cat"})
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Outputs[0].(nodes.Conditioning); fmt.Sprint(c[0].Cond.Shape) != "[1 77 48]" {
		t.Fatalf("SD1 shape %v", c[0].Cond.Shape)
	}
	if _, err := exec("CLIPLoader", nodes.Inputs{"clip_name": "tiny_l.safetensors", "type": "sd3"}); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("sd3: %v", err)
	}
	if _, err := exec("CLIPLoader", nodes.Inputs{"clip_name": "missing.safetensors", "type": "stable_diffusion"}); err == nil {
		t.Error("missing file loaded")
	}
}
