package core

import (
	"image"
	"math"
	"testing"

	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

type imgRec struct {
	values []float64
	max    []float64
	imgs   []image.Image
	plain  int // Progress calls
}

func (r *imgRec) Progress(nodeID string, value, max float64, preview image.Image) { r.plain++ }
func (r *imgRec) ProgressImage(nodeID string, value, max float64, img image.Image) {
	r.values = append(r.values, value)
	r.max = append(r.max, max)
	r.imgs = append(r.imgs, img)
}

func TestSaveImageWebsocket(t *testing.T) {
	d, ok := nodes.Lookup("SaveImageWebsocket")
	if !ok {
		t.Fatal("SaveImageWebsocket not registered")
	}
	if !d.OutputNode || len(d.Outputs) != 0 || d.Category != "api/image" || len(d.Required) != 1 || d.Required[0].Type != nodes.TypeImage {
		t.Fatalf("definition %+v", d)
	}
	if v, _ := d.IsChanged(nil, nil); !math.IsNaN(v.(float64)) {
		t.Error("SaveImageWebsocket must always re-execute")
	}
	ctx := testCtx(t)
	rec := &imgRec{}
	ctx.Reporter = rec
	// Two 5x3 RGB images: the first red-ish, the second with value 0.5 (→ 127).
	im := tensor.New(2, 3, 5, 3)
	for i := range im.Data {
		if i < 45 {
			im.Data[i] = 1
		} else {
			im.Data[i] = 0.5
		}
	}
	r := run(t, ctx, "SaveImageWebsocket", nodes.Inputs{"images": im})
	if len(r.UI) != 0 {
		t.Errorf("UI %v, want none", r.UI)
	}
	if rec.plain != 0 || len(rec.imgs) != 2 {
		t.Fatalf("plain progress %d, images %d", rec.plain, len(rec.imgs))
	}
	if rec.values[0] != 0 || rec.values[1] != 1 || rec.max[0] != 2 || rec.max[1] != 2 {
		t.Errorf("progress values %v max %v", rec.values, rec.max)
	}
	for i, want := range []uint32{0xffff, 127 * 0x101} {
		b := rec.imgs[i].Bounds()
		if b.Dx() != 5 || b.Dy() != 3 {
			t.Errorf("image %d size %v", i, b)
		}
		if r, _, _, _ := rec.imgs[i].At(4, 2).RGBA(); r != want {
			t.Errorf("image %d pixel %d, want %d", i, r, want)
		}
	}
	// Not an image → error.
	if _, err := d.Execute(ctx, nodes.Inputs{"images": tensor.New(2, 2)}); err == nil {
		t.Error("want an error for a non-image input")
	}
}

type textRec struct{ node, text []string }

func (r *textRec) Progress(string, float64, float64, image.Image) {}
func (r *textRec) ProgressText(nodeID, text string) {
	r.node = append(r.node, nodeID)
	r.text = append(r.text, text)
}

func TestGetImageSize(t *testing.T) {
	ctx := testCtx(t)
	ctx.NodeID = "12"
	rec := &textRec{}
	ctx.Reporter = rec
	r := run(t, ctx, "GetImageSize", nodes.Inputs{"image": tensor.New(3, 20, 30, 3)})
	if len(r.Outputs) != 3 || r.Outputs[0] != int64(30) || r.Outputs[1] != int64(20) || r.Outputs[2] != int64(3) {
		t.Fatalf("outputs %v, want [30 20 3]", r.Outputs)
	}
	if len(rec.text) != 1 || rec.node[0] != "12" || rec.text[0] != "width: 30, height: 20\n batch size: 3" {
		t.Fatalf("progress text %q on %q", rec.text, rec.node)
	}
	// Without a TextReporter the text is dropped, the outputs stay.
	ctx.Reporter = &imgRec{}
	if r := run(t, ctx, "GetImageSize", nodes.Inputs{"image": tensor.New(1, 2, 4, 3)}); r.Outputs[0] != int64(4) {
		t.Fatalf("outputs %v", r.Outputs)
	}
}
