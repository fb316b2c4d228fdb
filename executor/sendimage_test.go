package executor

import (
	"context"
	"image"
	"image/color"
	"reflect"
	"sync"
	"testing"

	"github.com/comfygo/comfygo/nodes"
)

func init() {
	nodes.Register(&nodes.Def{Name: "XSendImage", OutputNode: true, Category: "test",
		Required: []nodes.Input{{Name: "n", Type: nodes.TypeInt, Default: 2, Min: 1, Max: 8}},
		Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
			n := int(in.Int("n"))
			ctx.ProgressText("sending")
			for i := 0; i < n; i++ {
				im := image.NewGray(image.Rect(0, 0, 600+i, 3))
				im.SetGray(0, 0, color.Gray{Y: uint8(i)})
				if err := ctx.SendImage(float64(i), float64(n), im); err != nil {
					return nodes.Result{}, err
				}
			}
			return nodes.Result{}, nil
		}})
}

// fullSink records events, previews, full-size images and progress text in one ordered list.
type fullSink struct {
	mu  sync.Mutex
	seq []string
	img []image.Image
	txt []string // client|node|text
}

func (s *fullSink) add(v string) { s.mu.Lock(); s.seq = append(s.seq, v); s.mu.Unlock() }
func (s *fullSink) Event(name string, data any, clientID string) {
	if p, ok := data.(Progress); ok {
		s.add(name + ":" + p.Node + ":" + string(rune('0'+int(p.Value))) + "/" + string(rune('0'+int(p.Max))))
		return
	}
	s.add(name)
}
func (s *fullSink) Preview(clientID string, meta PreviewMeta, img image.Image) { s.add("preview") }
func (s *fullSink) Image(clientID string, meta PreviewMeta, img image.Image) {
	s.mu.Lock()
	s.img = append(s.img, img)
	s.mu.Unlock()
	s.add("image:" + clientID + ":" + meta.NodeID + ":" + meta.PromptID)
}
func (s *fullSink) ProgressText(clientID, nodeID, text string) {
	s.add("text:" + clientID + ":" + nodeID + ":" + text)
}

func TestSendImageAndProgressText(t *testing.T) {
	ex := New(Config{})
	b := nodes.NewGraphBuilder("")
	b.Node("XSendImage", "7", "n", int64(2))
	p := b.Finalize()
	outs, _, verr := ex.Validate(p, nil)
	if verr != nil {
		t.Fatalf("validate: %+v", verr)
	}
	s := &fullSink{}
	h := ex.Execute(context.Background(), Job{PromptID: "P", Prompt: p, Outputs: outs, ClientID: "c"}, s)
	if h.Status.StatusStr != "success" {
		t.Fatalf("status %+v", h.Status)
	}
	want := []string{"execution_start", "execution_cached", "progress_state", "executing",
		"text::7:sending",
		"progress_state", "image:c:7:P", "progress:7:0/2",
		"progress_state", "image:c:7:P", "progress:7:1/2",
		"progress_state", "execution_success"}
	if !reflect.DeepEqual(s.seq, want) {
		t.Fatalf("events\n got %v\nwant %v", s.seq, want)
	}
	// Full size: never downscaled by the executor.
	if len(s.img) != 2 || s.img[0].Bounds().Dx() != 600 || s.img[1].Bounds().Dx() != 601 {
		t.Fatalf("images %v", s.img)
	}
	if _, ok := h.Outputs.Get("7"); ok {
		t.Error("a node with an empty UI dict must not appear in history outputs")
	}
}

// A Sink without ImageSink/TextSink still gets the images, as previews; text is dropped.
func TestSendImageFallsBackToPreview(t *testing.T) {
	ex := New(Config{})
	b := nodes.NewGraphBuilder("")
	b.Node("XSendImage", "7", "n", int64(3))
	p := b.Finalize()
	outs, _, _ := ex.Validate(p, nil)
	s := &recSink{}
	ex.Execute(context.Background(), Job{PromptID: "Q", Prompt: p, Outputs: outs}, s)
	if s.previews != 3 {
		t.Fatalf("previews %d, want 3", s.previews)
	}
}
