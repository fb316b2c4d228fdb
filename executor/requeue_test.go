package executor

import (
	"context"
	"encoding/json"
	"image"
	"math"
	"testing"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

// lcmStubs are free stand-ins for the reference LCM-LoRA workflow's nodes (same class names,
// inputs, outputs, combos and hidden inputs), so a run measures the executor alone.
func lcmStubs() map[string]*nodes.Def {
	ckpts := []string{"sd15.safetensors", "sdxl.safetensors"}
	out := func(vals ...any) func(*nodes.Context, nodes.Inputs) (nodes.Result, error) {
		return func(*nodes.Context, nodes.Inputs) (nodes.Result, error) { return nodes.Out(vals...) }
	}
	defs := []*nodes.Def{
		{Name: "CheckpointLoaderSimple",
			Required: []nodes.Input{{Name: "ckpt_name", Type: nodes.TypeCombo, Options: ckpts}},
			Outputs:  []nodes.Output{{Type: nodes.TypeModel}, {Type: nodes.TypeClip}, {Type: nodes.TypeVAE}},
			Execute:  out("model", "clip", "vae")},
		{Name: "LoraLoader",
			Required: []nodes.Input{{Name: "model", Type: nodes.TypeModel}, {Name: "clip", Type: nodes.TypeClip},
				{Name: "lora_name", Type: nodes.TypeCombo, Options: []string{"lcm-lora-sdv1-5.safetensors"}},
				{Name: "strength_model", Type: nodes.TypeFloat, Min: -100.0, Max: 100.0},
				{Name: "strength_clip", Type: nodes.TypeFloat, Min: -100.0, Max: 100.0}},
			Outputs: []nodes.Output{{Type: nodes.TypeModel}, {Type: nodes.TypeClip}},
			Execute: out("model+lora", "clip+lora")},
		{Name: "ModelSamplingDiscrete",
			Required: []nodes.Input{{Name: "model", Type: nodes.TypeModel},
				{Name: "sampling", Type: nodes.TypeCombo, Options: []string{"eps", "v_prediction", "lcm", "x0"}},
				{Name: "zsnr", Type: nodes.TypeBoolean}},
			Outputs: []nodes.Output{{Type: nodes.TypeModel}},
			Execute: out("model+lcm")},
		{Name: "CLIPTextEncode",
			Required: []nodes.Input{{Name: "text", Type: nodes.TypeString, Multiline: true}, {Name: "clip", Type: nodes.TypeClip}},
			Outputs:  []nodes.Output{{Type: nodes.TypeCond}},
			Execute:  out("cond")},
		{Name: "EmptyLatentImage",
			Required: []nodes.Input{{Name: "width", Type: nodes.TypeInt, Min: 16, Max: 16384},
				{Name: "height", Type: nodes.TypeInt, Min: 16, Max: 16384}, {Name: "batch_size", Type: nodes.TypeInt, Min: 1, Max: 4096}},
			Outputs: []nodes.Output{{Type: nodes.TypeLatent}},
			Execute: out(nodes.Latent{Samples: tensor.New(1, 4, 8, 8)})},
		{Name: "KSampler",
			Required: []nodes.Input{{Name: "model", Type: nodes.TypeModel},
				{Name: "seed", Type: nodes.TypeInt, Min: 0, Max: uint64(math.MaxUint64), ControlAfterGenerate: true},
				{Name: "steps", Type: nodes.TypeInt, Min: 1, Max: 10000}, {Name: "cfg", Type: nodes.TypeFloat, Min: 0.0, Max: 100.0},
				{Name: "sampler_name", Type: nodes.TypeCombo, Options: []string{"euler", "lcm"}},
				{Name: "scheduler", Type: nodes.TypeCombo, Options: []string{"normal", "sgm_uniform"}},
				{Name: "positive", Type: nodes.TypeCond}, {Name: "negative", Type: nodes.TypeCond},
				{Name: "latent_image", Type: nodes.TypeLatent}, {Name: "denoise", Type: nodes.TypeFloat, Min: 0.0, Max: 1.0}},
			Outputs: []nodes.Output{{Type: nodes.TypeLatent}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				steps := int(in.Int("steps"))
				for i := 1; i <= steps; i++ {
					ctx.Reporter.Progress(ctx.NodeID, float64(i), float64(steps), nil)
				}
				return nodes.Out(nodes.Latent{Samples: tensor.New(1, 4, 8, 8)})
			}},
		{Name: "VAEDecode",
			Required: []nodes.Input{{Name: "samples", Type: nodes.TypeLatent}, {Name: "vae", Type: nodes.TypeVAE}},
			Outputs:  []nodes.Output{{Type: nodes.TypeImage}},
			Execute:  out(tensor.New(1, 64, 64, 3))},
		{Name: "SaveImage", OutputNode: true,
			Required: []nodes.Input{{Name: "images", Type: nodes.TypeImage}, {Name: "filename_prefix", Type: nodes.TypeString}},
			Hidden:   []nodes.Hidden{{Name: "prompt", Marker: "PROMPT"}, {Name: "extra_pnginfo", Marker: "EXTRA_PNGINFO"}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Result{UI: map[string][]any{"images": {map[string]any{
					"filename": "ComfyUI_00001_.png", "subfolder": "", "type": "output"}}}}, nil
			}},
	}
	m := map[string]*nodes.Def{}
	for _, d := range defs {
		m[d.Name] = d
	}
	return m
}

// lcmPrompt is the reference LCM-LoRA workflow in API form (9 nodes) with the given seed.
func lcmPrompt(seed int64) *graph.Prompt {
	p := graph.NewPrompt()
	add := func(id, class string, kv ...any) {
		n := &graph.Node{ClassType: class}
		for i := 0; i < len(kv); i += 2 {
			n.Inputs.Set(kv[i].(string), kv[i+1])
		}
		p.Add(id, n)
	}
	l := func(id string, slot int) graph.Link { return graph.Link{NodeID: id, Slot: slot} }
	add("4", "CheckpointLoaderSimple", "ckpt_name", "sd15.safetensors")
	add("10", "LoraLoader", "model", l("4", 0), "clip", l("4", 1), "lora_name", "lcm-lora-sdv1-5.safetensors",
		"strength_model", json.Number("1.0"), "strength_clip", json.Number("1.0"))
	add("11", "ModelSamplingDiscrete", "model", l("10", 0), "sampling", "lcm", "zsnr", false)
	add("6", "CLIPTextEncode", "text", "a photo of a cat", "clip", l("10", 1))
	add("7", "CLIPTextEncode", "text", "blurry", "clip", l("10", 1))
	add("5", "EmptyLatentImage", "width", json.Number("512"), "height", json.Number("512"), "batch_size", json.Number("1"))
	add("3", "KSampler", "model", l("11", 0), "seed", seed, "steps", json.Number("4"), "cfg", json.Number("1.5"),
		"sampler_name", "lcm", "scheduler", "sgm_uniform", "positive", l("6", 0), "negative", l("7", 0),
		"latent_image", l("5", 0), "denoise", json.Number("1"))
	add("8", "VAEDecode", "samples", l("3", 0), "vae", l("4", 2))
	add("9", "SaveImage", "images", l("8", 0), "filename_prefix", "ComfyUI")
	return p
}

// jsonSink encodes every event the way the server frames it (the cost a real sink adds).
type jsonSink struct{ n int }

func (s *jsonSink) Event(name string, data any, clientID string) {
	b, _ := json.Marshal(map[string]any{"type": name, "data": data})
	s.n += len(b)
}
func (s *jsonSink) Preview(string, PreviewMeta, image.Image) {}

func lcmRun(tb testing.TB, ex *Executor, seed int64, sink Sink) *History {
	p := lcmPrompt(seed)
	outs, _, verr := ex.Validate(p, nil)
	if verr != nil {
		tb.Fatal(verr)
	}
	h := ex.Execute(context.Background(), Job{PromptID: "lcm", Prompt: p, Outputs: outs, ClientID: "c",
		ExtraData: map[string]any{"extra_pnginfo": map[string]any{"workflow": map[string]any{}}}}, sink)
	if !h.Status.Completed {
		tb.Fatalf("run failed: %+v", h.Status.Messages)
	}
	return h
}

// TestRequeueLCM: a seed change re-runs exactly KSampler, VAEDecode and SaveImage.
func TestRequeueLCM(t *testing.T) {
	stubs := lcmStubs()
	ex := New(Config{Lookup: func(n string) (*nodes.Def, bool) { d, ok := stubs[n]; return d, ok }})
	lcmRun(t, ex, 1, nopSink{})
	rec := &recSink{}
	lcmRun(t, ex, 2, rec)
	var ran []string
	for _, e := range rec.ev {
		if e.name == "executing" {
			ran = append(ran, *e.data.(Executing).Node)
		}
		if c, ok := e.data.(ExecutionCached); ok && len(c.Nodes) != 6 {
			t.Fatalf("cached %v, want the 6 nodes before KSampler", c.Nodes)
		}
	}
	if len(ran) != 3 || ran[0] != "3" || ran[1] != "8" || ran[2] != "9" {
		t.Fatalf("re-queue ran %v, want [3 8 9]", ran)
	}
}

// BenchmarkRequeueLCM is the warm re-queue of the reference workflow with a new seed (stub
// nodes: the figure is executor overhead): validation, keys, 6 cache hits, 3 executions and
// their events, to a no-op sink and to one that JSON-encodes every event like the server.
func BenchmarkRequeueLCM(b *testing.B) {
	stubs := lcmStubs()
	for _, sc := range []struct {
		name string
		sink Sink
	}{{"nopSink", nopSink{}}, {"jsonSink", &jsonSink{}}} {
		b.Run(sc.name, func(b *testing.B) {
			ex := New(Config{Lookup: func(n string) (*nodes.Def, bool) { d, ok := stubs[n]; return d, ok }})
			lcmRun(b, ex, 1, sc.sink)
			var m cpuMeter
			b.ResetTimer()
			m.begin()
			for i := 0; i < b.N; i++ {
				lcmRun(b, ex, int64(i+2), sc.sink)
			}
			m.end()
			m.report(b)
		})
	}
}
