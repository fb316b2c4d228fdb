package example_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	json "github.com/goccy/go-json"

	"github.com/comfygo/comfygo/executor"
	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/nodes"
	_ "github.com/comfygo/comfygo/nodes/core"
	_ "github.com/comfygo/comfygo/nodes/example"
)

type nopSink struct{}

func (nopSink) Event(string, any, string)                         {}
func (nopSink) Preview(string, executor.PreviewMeta, image.Image) {}

// The README's example node, registered by importing its package, shows in /object_info and
// runs in a prompt: LoadImage -> ExampleBrightness -> SaveImage.
func TestExampleNodeRuns(t *testing.T) {
	root := t.TempDir()
	env := &nodes.Env{Folders: nodes.NewFolders(filepath.Join(root, "models"), filepath.Join(root, "input"), filepath.Join(root, "output"), filepath.Join(root, "temp"), filepath.Join(root, "user"))}
	os.MkdirAll(env.Folders.Input, 0o755)
	src := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range src.Pix {
		src.Pix[i] = 100
	}
	var buf bytes.Buffer
	png.Encode(&buf, src)
	os.WriteFile(filepath.Join(env.Folders.Input, "in.png"), buf.Bytes(), 0o644)

	d, ok := nodes.Lookup("ExampleBrightness")
	if !ok {
		t.Fatal("ExampleBrightness not registered")
	}
	info, err := json.Marshal(nodes.ObjectInfo(d, env))
	if err != nil || !bytes.Contains(info, []byte(`"factor":["FLOAT",{"default":1.2`)) || !bytes.Contains(info, []byte(`"category":"image/adjust"`)) {
		t.Errorf("object_info: %s (%v)", info, err)
	}

	p, err := graph.ParsePrompt([]byte(`{
	  "1": {"class_type": "LoadImage", "inputs": {"image": "in.png"}},
	  "2": {"class_type": "ExampleBrightness", "inputs": {"image": ["1", 0], "factor": 2.0}},
	  "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "bright"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	ex := executor.New(executor.Config{Env: env})
	outputs, _, verr := ex.Validate(p, nil)
	if verr != nil {
		t.Fatalf("validate: %v", verr)
	}
	h := ex.Execute(context.Background(), executor.Job{PromptID: "p", Prompt: p, Outputs: outputs}, nopSink{})
	if h.Status.StatusStr != "success" {
		t.Fatalf("status %+v", h.Status)
	}
	data, err := os.ReadFile(filepath.Join(env.Folders.Output, "bright_00001_.png"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// 100/255 doubled is 200/255 (SaveImage truncates 255·v)
	if g := color.GrayModel.Convert(img.At(1, 1)).(color.Gray).Y; g != 199 && g != 200 {
		t.Errorf("brightened pixel %d, want 200", g)
	}

	// out-of-range factor fails validation with ComfyUI's error
	bad, _ := graph.ParsePrompt([]byte(`{
	  "1": {"class_type": "LoadImage", "inputs": {"image": "in.png"}},
	  "2": {"class_type": "ExampleBrightness", "inputs": {"image": ["1", 0], "factor": 11}},
	  "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "bright"}}}`))
	if _, ne, verr := ex.Validate(bad, nil); verr == nil || ne["2"] == nil || ne["2"].Errors[0].Type != "value_bigger_than_max" {
		t.Errorf("factor 11 accepted: %v %+v", verr, ne)
	}
}
