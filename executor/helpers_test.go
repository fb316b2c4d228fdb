package executor

import (
	"context"
	"encoding/json"
	"image"
	"math"
	"sync"
	"testing"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
	"github.com/comfygo/comfygo/nodes/testpack"
)

func TestMain(m *testing.M) {
	testpack.Register()
	testpack.Register() // idempotent
	nodes.Register(testNodes()...)
	m.Run()
}

// pixelByte is SaveImage's conversion: clip(255*v, 0, 255) truncated, in float32.
func pixelByte(v float32) int {
	x := float32(255) * v
	if x < 0 {
		x = 0
	}
	if x > 255 {
		x = 255
	}
	return int(x)
}

// testNodes are output nodes standing in for SaveImage/PreviewImage and a RebatchImages.
func testNodes() []*nodes.Def {
	save := func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
		t := in.Tensor("images")
		if t == nil {
			return nodes.Result{}, nodes.Errorf("TypeError", "images is not an image")
		}
		b := t.Shape[0]
		per := len(t.Data) / b
		var items []any
		for i := 0; i < b; i++ {
			mn, mx, sum := 255, 0, 0
			for _, v := range t.Data[i*per : (i+1)*per] {
				p := pixelByte(v)
				mn, mx, sum = min(mn, p), max(mx, p), sum+p
			}
			items = append(items, map[string]any{"min": mn, "max": mx, "mean": float64(sum) / float64(per)})
		}
		return nodes.Result{UI: map[string][]any{"images": items}}, nil
	}
	return []*nodes.Def{
		{Name: "XSave", OutputNode: true, Category: "image",
			Required: []nodes.Input{{Name: "images", Type: nodes.TypeImage}},
			Optional: []nodes.Input{{Name: "filename_prefix", Type: nodes.TypeString, Default: "ComfyUI"}},
			Hidden:   []nodes.Hidden{{Name: "prompt", Marker: "PROMPT"}, {Name: "extra_pnginfo", Marker: "EXTRA_PNGINFO"}},
			Execute:  save},
		{Name: "XPreview", OutputNode: true, Category: "image",
			Required: []nodes.Input{{Name: "images", Type: nodes.TypeImage}},
			Execute:  save},
		{Name: "XRebatch", InputIsList: true, Category: "image/batch",
			Required: []nodes.Input{{Name: "images", Type: nodes.TypeImage}, {Name: "batch_size", Type: nodes.TypeInt, Default: 1, Min: 1, Max: 4096}},
			Outputs:  []nodes.Output{{Type: nodes.TypeImage, IsList: true}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				var singles []*tensor.Tensor
				for _, v := range in["images"].([]any) {
					t := v.(*tensor.Tensor)
					per := len(t.Data) / t.Shape[0]
					for i := 0; i < t.Shape[0]; i++ {
						shape := append([]int{1}, t.Shape[1:]...)
						singles = append(singles, tensor.FromData(append([]float32(nil), t.Data[i*per:(i+1)*per]...), shape...))
					}
				}
				bs := int(nodes.Inputs{"b": in["batch_size"].([]any)[0]}.Int("b"))
				var out []any
				for i := 0; i < len(singles); i += bs {
					j := min(i+bs, len(singles))
					shape := append([]int{j - i}, singles[i].Shape[1:]...)
					var data []float32
					for _, s := range singles[i:j] {
						data = append(data, s.Data...)
					}
					out = append(out, tensor.FromData(data, shape...))
				}
				return nodes.Out(out)
			}},
		{Name: "XCount", Category: "test", // counts its executions (a cheap node for benchmarks)
			Required: []nodes.Input{{Name: "value", Type: nodes.TypeInt, Min: 0, Max: math.MaxInt32}},
			Optional: []nodes.Input{{Name: "a", Type: "*"}, {Name: "b", Type: "*"}},
			Outputs:  []nodes.Output{{Type: nodes.TypeInt}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Out(in["value"])
			}},
		{Name: "XSink", OutputNode: true, Category: "test", // variadic output sink
			Required: []nodes.Input{{Name: "in0", Type: "*"}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Result{UI: map[string][]any{"n": {len(in)}}}, nil
			}},
		{Name: "XFail", Category: "test",
			Required: []nodes.Input{{Name: "value", Type: "*"}},
			Outputs:  []nodes.Output{{Type: "*"}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				panic("boom")
			}},
		{Name: "XWaitInterrupt", Category: "test",
			Required: []nodes.Input{{Name: "value", Type: "*"}},
			Outputs:  []nodes.Output{{Type: "*"}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				if ch, ok := ctx.Env.Service("started", func() (any, error) { return nil, errNoService }); ok == nil {
					close(ch.(chan struct{}))
				}
				for {
					if err := ctx.Progress(0, 1, nil); err != nil {
						return nodes.Result{}, err
					}
					<-ctx.Done()
				}
			}},
	}
}

type rec struct {
	name   string
	data   any
	client string
}

type recSink struct {
	mu       sync.Mutex
	ev       []rec
	previews int
}

func (s *recSink) Event(name string, data any, clientID string) {
	s.mu.Lock()
	s.ev = append(s.ev, rec{name, data, clientID})
	s.mu.Unlock()
}

func (s *recSink) Preview(clientID string, meta PreviewMeta, img image.Image) {
	s.mu.Lock()
	s.previews++
	s.mu.Unlock()
}

type result struct {
	h          *History
	ev         []rec
	ran        map[string]bool
	cached     map[string]bool
	err        *ExecutionError
	nodeErrors NodeErrors
}

func (r *result) didRun(id string) bool    { return r.ran[id] }
func (r *result) wasCached(id string) bool { return r.cached[id] }
func (r *result) nRan() int                { return len(r.ran) }

// images returns the UI image items of output node id.
func (r *result) images(id string) []map[string]any {
	v, ok := r.h.Outputs.Get(id)
	if !ok {
		return nil
	}
	var out []map[string]any
	for _, it := range v.(map[string][]any)["images"] {
		out = append(out, it.(map[string]any))
	}
	return out
}

func (r *result) count(name string) int {
	n := 0
	for _, e := range r.ev {
		if e.name == name {
			n++
		}
	}
	return n
}

// runB validates and executes the builder's prompt with client id "c1".
func runB(t *testing.T, ex *Executor, b *nodes.GraphBuilder, targets []string) (*result, *ValidationError) {
	t.Helper()
	return runP(t, ex, b.Finalize(), targets, "c1")
}

var promptSeq int

func runP(t *testing.T, ex *Executor, p *graph.Prompt, targets []string, client string) (*result, *ValidationError) {
	t.Helper()
	outs, nodeErrors, verr := ex.Validate(p, targets)
	if verr != nil {
		// the 400 body must marshal
		if _, err := json.Marshal(verr); err != nil {
			t.Fatalf("marshal validation error: %v", err)
		}
		return nil, verr
	}
	promptSeq++
	sink := &recSink{}
	pid := "p" + string(rune('A'+promptSeq%26)) + string(rune('0'+promptSeq%10))
	h := ex.Execute(context.Background(), Job{PromptID: pid, Prompt: p, Outputs: outs, ClientID: client}, sink)
	if _, err := json.Marshal(h); err != nil {
		t.Fatalf("marshal history: %v", err)
	}
	res := &result{h: h, ev: sink.ev, ran: map[string]bool{}, cached: map[string]bool{}, nodeErrors: nodeErrors}
	for _, e := range sink.ev {
		if _, err := json.Marshal(e.data); err != nil {
			t.Fatalf("marshal %s: %v", e.name, err)
		}
		switch d := e.data.(type) {
		case Executing:
			if d.Node != nil {
				res.ran[*d.Node] = true
			}
		case ExecutionCached:
			for _, n := range d.Nodes {
				res.cached[n] = true
			}
		case ExecutionError:
			if d.ExceptionType != "ExecutionBlocked" {
				dd := d
				res.err = &dd
			}
		}
	}
	return res, nil
}

func mustRun(t *testing.T, ex *Executor, b *nodes.GraphBuilder, targets ...string) *result {
	t.Helper()
	var tg []string
	if len(targets) > 0 {
		tg = targets
	}
	r, verr := runB(t, ex, b, tg)
	if verr != nil {
		js, _ := json.MarshalIndent(verr, "", " ")
		t.Fatalf("validation failed: %s", js)
	}
	if r.err != nil {
		t.Fatalf("execution error: %+v", *r.err)
	}
	return r
}

// modes are the four server configurations test_execution.py runs under.
var modes = []struct {
	name  string
	cfg   Config
	cache bool
}{
	{"classic", Config{Cache: CacheClassic}, true},
	{"lru0", Config{Cache: CacheLRU, LRUSize: 0}, true},
	{"lru100", Config{Cache: CacheLRU, LRUSize: 100}, true},
	{"none", Config{Cache: CacheNone}, false},
}

func forModes(t *testing.T, f func(t *testing.T, ex *Executor, cache bool)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { f(t, New(m.cfg), m.cache) })
	}
}

func img(b *nodes.GraphBuilder, content string, size int64) *nodes.BuilderNode {
	return b.Node("StubImage", "", "content", content, "height", size, "width", size, "batch_size", int64(1))
}

func mask(b *nodes.GraphBuilder, v float64, size int64) *nodes.BuilderNode {
	return b.Node("StubMask", "", "value", v, "height", size, "width", size, "batch_size", int64(1))
}

func checkPixel(t *testing.T, items []map[string]any, i, want int) {
	t.Helper()
	if i >= len(items) {
		t.Fatalf("image %d missing (have %d)", i, len(items))
	}
	if items[i]["min"] != want || items[i]["max"] != want {
		t.Fatalf("image %d: min %v max %v, want %d", i, items[i]["min"], items[i]["max"], want)
	}
}
