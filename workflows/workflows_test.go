package workflows

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/comfygo/comfygo/executor"
	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/nodes"
	_ "github.com/comfygo/comfygo/nodes/conditioning"
	_ "github.com/comfygo/comfygo/nodes/core"
	_ "github.com/comfygo/comfygo/nodes/sampling"
	_ "github.com/comfygo/comfygo/nodes/sd"
)

var (
	tinyOnce sync.Once
	tinyDir  string
	tinyErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if tinyDir != "" {
		os.RemoveAll(tinyDir)
	}
	os.Exit(code)
}

// tinyModels writes the gen-tiny models once per test binary.
func tinyModels(t *testing.T) string {
	tinyOnce.Do(func() {
		d, err := os.MkdirTemp("", "comfygo-wf-models")
		if err != nil {
			tinyErr = err
			return
		}
		tinyDir = d
		_, tinyErr = models.GenerateTiny(d, models.GenOptions{})
	})
	if tinyErr != nil {
		t.Fatalf("gen-tiny: %v", tinyErr)
	}
	return tinyDir
}

type sink struct {
	mu       sync.Mutex
	executed []string
	previews int
	errs     []string
}

func (s *sink) Event(name string, data any, _ string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch d := data.(type) {
	case executor.Executing:
		if name == "executing" && d.Node != nil {
			s.executed = append(s.executed, *d.Node)
		}
	}
	if name == "execution_error" {
		b, _ := json.Marshal(data)
		s.errs = append(s.errs, string(b))
	}
}

func (s *sink) Preview(string, executor.PreviewMeta, image.Image) {
	s.mu.Lock()
	s.previews++
	s.mu.Unlock()
}

type harness struct {
	env *nodes.Env
	ex  *executor.Executor
	out string
}

func newHarness(t *testing.T) *harness {
	root := t.TempDir()
	in := filepath.Join(root, "input")
	os.MkdirAll(in, 0o755)
	// img2img input: a 64x64 gradient
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			img.Set(x, y, color.RGBA{uint8(4 * x), uint8(4 * y), 128, 255})
		}
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	os.WriteFile(filepath.Join(in, "example.png"), buf.Bytes(), 0o644)
	out := filepath.Join(root, "output")
	env := &nodes.Env{
		Folders: nodes.NewFolders(tinyModels(t), in, out, filepath.Join(root, "temp"), filepath.Join(root, "user")),
		Options: map[string]string{"threads": "2"},
	}
	return &harness{env: env, ex: executor.New(executor.Config{Env: env}), out: out}
}

// load converts a bundled workflow to an API prompt, shrinking the image size for tests.
func (h *harness) load(t *testing.T, name string) *graph.Prompt {
	data, err := Read(name)
	if err != nil {
		t.Fatal(err)
	}
	wf, err := graph.ParseWorkflow(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p, err := graph.ConvertWorkflow(wf, nodes.Schema(h.env))
	if err != nil {
		t.Fatalf("%s: convert: %v", name, err)
	}
	for _, id := range p.IDs {
		n := p.Nodes[id]
		if n.ClassType == "EmptyLatentImage" {
			n.Inputs.Set("width", json.Number("64"))
			n.Inputs.Set("height", json.Number("64"))
		}
		if n.ClassType == "KSampler" {
			n.Inputs.Set("steps", json.Number("2"))
		}
	}
	return p
}

func (h *harness) run(t *testing.T, id string, p *graph.Prompt) *sink {
	outs, nodeErrs, verr := h.ex.Validate(p, nil)
	if verr != nil {
		b, _ := json.Marshal(nodeErrs)
		t.Fatalf("validate: %v %s", verr, b)
	}
	s := &sink{}
	hist := h.ex.Execute(context.Background(), executor.Job{PromptID: id, Prompt: p, Outputs: outs, ClientID: "c"}, s)
	if !hist.Status.Completed || len(s.errs) > 0 {
		t.Fatalf("%s failed: %v %v", id, s.errs, hist.Status.Messages)
	}
	return s
}

func classes(p *graph.Prompt, ids []string) []string {
	var out []string
	for _, id := range ids {
		out = append(out, p.Nodes[id].ClassType)
	}
	sort.Strings(out)
	return out
}

// TestBundledWorkflowsRun converts every bundled workflow and runs it on the tiny models.
func TestBundledWorkflowsRun(t *testing.T) {
	names := Names()
	if len(names) != 4 {
		t.Fatalf("bundled workflows: %v", names)
	}
	h := newHarness(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			p := h.load(t, name)
			h.run(t, name, p)
			for _, id := range p.IDs {
				n := p.Nodes[id]
				if n.ClassType != "CheckpointLoaderSimple" {
					continue
				}
				v, _ := n.Inputs.Get("ckpt_name")
				if _, err := h.env.Folders.Find("checkpoints", v.(string)); err != nil {
					t.Errorf("%s references %v, which gen-tiny does not write", name, v)
				}
			}
		})
	}
	// every run saved an image
	var pngs []string
	filepath.Walk(h.out, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".png") {
			pngs = append(pngs, p)
		}
		return nil
	})
	if len(pngs) != len(names) {
		t.Errorf("saved images %v, want %d", pngs, len(names))
	}
}

// TestRequeueNewSeed re-queues the reference LCM workflow with only a new seed: exactly
// KSampler, VAEDecode and SaveImage must execute again.
func TestRequeueNewSeed(t *testing.T) {
	h := newHarness(t)
	p := h.load(t, "lcm-lora-sd15-768x512.json")
	s1 := h.run(t, "first", p)
	if len(s1.executed) != len(p.IDs) {
		t.Errorf("first run executed %v of %d nodes", classes(p, s1.executed), len(p.IDs))
	}
	if s1.previews == 0 {
		t.Error("no latent previews were sent")
	}
	p2 := h.load(t, "lcm-lora-sd15-768x512.json")
	for _, id := range p2.IDs {
		if p2.Nodes[id].ClassType == "KSampler" {
			p2.Nodes[id].Inputs.Set("seed", json.Number("12345"))
		}
	}
	s2 := h.run(t, "second", p2)
	got := strings.Join(classes(p2, s2.executed), ",")
	if got != "KSampler,SaveImage,VAEDecode" {
		t.Errorf("re-queue with a new seed executed %s, want KSampler, VAEDecode, SaveImage", got)
	}
}
