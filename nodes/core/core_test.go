package core

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

func testCtx(t *testing.T) *nodes.Context {
	t.Helper()
	root := t.TempDir()
	f := nodes.NewFolders(filepath.Join(root, "models"), filepath.Join(root, "input"), filepath.Join(root, "output"), filepath.Join(root, "temp"), filepath.Join(root, "user"))
	for _, d := range []string{f.Input, f.Output, f.Temp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &nodes.Context{Context: context.Background(), NodeID: "1", Env: &nodes.Env{Folders: f}}
}

func run(t *testing.T, ctx *nodes.Context, name string, in nodes.Inputs) nodes.Result {
	t.Helper()
	d, ok := nodes.Lookup(name)
	if !ok {
		t.Fatalf("%s not registered", name)
	}
	r, err := d.Execute(ctx, in)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r
}

func TestSavePath(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.Local)
	for _, f := range []string{"me_00003_.png", "me_00010_x.png", "me_abc_.png", "mex_00099_.png", "other_00050_.png"} {
		os.WriteFile(filepath.Join(root, f), nil, 0o644)
	}
	cases := []struct {
		prefix    string
		sub, base string
		counter   int
		wantErr   bool
	}{
		{"me", "", "me", 11, false},
		{"new", "", "new", 1, false},
		{"portraits/%year%/me", "portraits/2026", "me", 1, false},
		{"size_%width%x%height%", "", "size_640x480", 1, false},
		{"../escape", "", "", 0, true},
		{"/abs/path", "", "", 0, true},
		{"a/../../b", "", "", 0, true},
	}
	for _, c := range cases {
		sp, err := SavePath(root, c.prefix, 640, 480, now)
		if c.wantErr {
			if err == nil {
				t.Errorf("%q: want error, got %+v", c.prefix, sp)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.prefix, err)
			continue
		}
		if sp.Subfolder != c.sub || sp.Base != c.base || sp.Counter != c.counter {
			t.Errorf("%q: got sub=%q base=%q counter=%d, want %q %q %d", c.prefix, sp.Subfolder, sp.Base, sp.Counter, c.sub, c.base, c.counter)
		}
	}
}

func TestSaveImage(t *testing.T) {
	ctx := testCtx(t)
	img := tensor.New(2, 2, 3, 3)
	for i := range img.Data {
		img.Data[i] = 0.25
	}
	p, err := graph.ParsePrompt([]byte(`{"9":{"class_type":"SaveImage","inputs":{"images":["8",0],"filename_prefix":"out/pic"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	extra := map[string]any{"workflow": map[string]any{"nodes": []any{}, "links": []any{}}}
	for round := 0; round < 2; round++ {
		r := run(t, ctx, "SaveImage", nodes.Inputs{"images": img, "filename_prefix": "out/pic", "prompt": p, "extra_pnginfo": extra})
		items := r.UI["images"]
		if len(items) != 2 {
			t.Fatalf("ui images: %v", r.UI)
		}
		for i, it := range items {
			m := it.(map[string]any)
			want := []string{"pic_00001_.png", "pic_00002_.png", "pic_00003_.png", "pic_00004_.png"}[round*2+i]
			if m["filename"] != want || m["subfolder"] != "out" || m["type"] != "output" {
				t.Errorf("round %d item %d: %v", round, i, m)
			}
		}
	}
	data, err := os.ReadFile(filepath.Join(ctx.Env.Folders.Output, "out", "pic_00001_.png"))
	if err != nil {
		t.Fatal(err)
	}
	wf, pr, err := graph.ExtractFromImage(data)
	if err != nil || !bytes.Contains(pr, []byte(`"class_type": "SaveImage"`)) || !bytes.Contains(wf, []byte(`"nodes"`)) {
		t.Fatalf("metadata: wf=%s prompt=%s err=%v", wf, pr, err)
	}
	dec, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _, _ := dec.At(1, 1).RGBA(); r>>8 != 63 {
		t.Errorf("pixel 0.25 saved as %d, want 63 (truncation)", r>>8)
	}
	// no temp files left behind
	entries, _ := os.ReadDir(filepath.Join(ctx.Env.Folders.Output, "out"))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("leftover temp file %s", e.Name())
		}
	}
	// PreviewImage goes to temp with ComfyUI's name pattern
	r := run(t, ctx, "PreviewImage", nodes.Inputs{"images": img})
	m := r.UI["images"][0].(map[string]any)
	name := m["filename"].(string)
	if m["type"] != "temp" || !strings.HasPrefix(name, "ComfyUI_temp_") || !strings.HasSuffix(name, "_00001_.png") || len(name) != len("ComfyUI_temp_abcde_00001_.png") {
		t.Errorf("preview item %v", m)
	}
	// a prefix escaping the output folder fails
	d, _ := nodes.Lookup("SaveImage")
	if _, err := d.Execute(ctx, nodes.Inputs{"images": img, "filename_prefix": "../../x"}); err == nil {
		t.Error("prefix outside the output folder accepted")
	}
}

func TestLoadImage(t *testing.T) {
	ctx := testCtx(t)
	src := image.NewNRGBA(image.Rect(0, 0, 4, 2))
	for i := 0; i < 8; i++ {
		src.Set(i%4, i/4, color.NRGBA{R: 255, G: 128, B: 0, A: uint8(i * 30)})
	}
	var buf bytes.Buffer
	png.Encode(&buf, src)
	os.WriteFile(filepath.Join(ctx.Env.Folders.Input, "a.png"), buf.Bytes(), 0o644)
	d, _ := nodes.Lookup("LoadImage")
	if got := d.Required[0].OptionsFunc(ctx.Env); len(got) != 1 || got[0] != "a.png" {
		t.Errorf("combo %v", got)
	}
	r := run(t, ctx, "LoadImage", nodes.Inputs{"image": "a.png"})
	img, mask := r.Outputs[0].(*tensor.Tensor), r.Outputs[1].(*tensor.Tensor)
	if want := []int{1, 2, 4, 3}; !slices.Equal(img.Shape, want) {
		t.Fatalf("image shape %v", img.Shape)
	}
	if !slices.Equal(mask.Shape, []int{1, 2, 4}) || mask.Data[1] != 1-30.0/255 {
		t.Errorf("mask %v %v", mask.Shape, mask.Data)
	}
	if img.Data[0] != 1 || img.Data[1] != 128.0/255 {
		t.Errorf("pixels %v", img.Data[:3])
	}
	h1, err := d.IsChanged(ctx, nodes.Inputs{"image": "a.png"})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ctx.Env.Folders.Input, "a.png"), append(buf.Bytes(), 0), 0o644)
	h2, _ := d.IsChanged(ctx, nodes.Inputs{"image": "a.png"})
	if h1 == h2 {
		t.Error("IsChanged did not change with the file")
	}
	for _, bad := range []string{"missing.png", "../a.png", "/etc/passwd", "x [output]"} {
		if err := d.Validate.Func(ctx, nodes.Inputs{"image": bad}, nil); err == nil || !strings.HasPrefix(err.Error(), "Invalid image file: ") {
			t.Errorf("validate %q: %v", bad, err)
		}
	}
	if err := d.Validate.Func(ctx, nodes.Inputs{"image": "a.png"}, nil); err != nil {
		t.Error(err)
	}
	// opaque images get ComfyUI's 64x64 zero mask
	var rgb bytes.Buffer
	png.Encode(&rgb, image.NewGray(image.Rect(0, 0, 3, 3)))
	os.WriteFile(filepath.Join(ctx.Env.Folders.Input, "b.png"), rgb.Bytes(), 0o644)
	r = run(t, ctx, "LoadImage", nodes.Inputs{"image": "b.png"})
	if m := r.Outputs[1].(*tensor.Tensor); !slices.Equal(m.Shape, []int{1, 64, 64}) {
		t.Errorf("opaque mask shape %v", m.Shape)
	}
}

func TestLatentNodes(t *testing.T) {
	ctx := testCtx(t)
	l := run(t, ctx, "EmptyLatentImage", nodes.Inputs{"width": int64(64), "height": int64(48), "batch_size": int64(3)}).Outputs[0].(*nodes.Latent)
	if !slices.Equal(l.Samples.Shape, []int{3, 4, 6, 8}) {
		t.Fatalf("empty latent %v", l.Samples.Shape)
	}
	for i := range l.Samples.Data {
		l.Samples.Data[i] = float32(i / (4 * 6 * 8)) // batch index as value
	}
	fb := run(t, ctx, "LatentFromBatch", nodes.Inputs{"samples": l, "batch_index": int64(1), "length": int64(5)}).Outputs[0].(*nodes.Latent)
	if fb.Samples.Shape[0] != 2 || fb.Samples.Data[0] != 1 || !slices.Equal(fb.BatchIndex, []int{1, 2}) {
		t.Errorf("from batch: shape %v first %v idx %v", fb.Samples.Shape, fb.Samples.Data[0], fb.BatchIndex)
	}
	rep := run(t, ctx, "RepeatLatentBatch", nodes.Inputs{"samples": fb, "amount": int64(3)}).Outputs[0].(*nodes.Latent)
	if rep.Samples.Shape[0] != 6 || !slices.Equal(rep.BatchIndex, []int{1, 2, 3, 4, 5, 6}) {
		t.Errorf("repeat: shape %v idx %v", rep.Samples.Shape, rep.BatchIndex)
	}
	up := run(t, ctx, "LatentUpscale", nodes.Inputs{"samples": l, "upscale_method": "nearest-exact", "width": int64(0), "height": int64(96), "crop": "disabled"}).Outputs[0].(*nodes.Latent)
	if !slices.Equal(up.Samples.Shape, []int{3, 4, 12, 16}) { // width from aspect: round(8*96/6)=128 -> /8
		t.Errorf("upscale shape %v", up.Samples.Shape)
	}
	by := run(t, ctx, "LatentUpscaleBy", nodes.Inputs{"samples": l, "upscale_method": "bilinear", "scale_by": 1.5}).Outputs[0].(*nodes.Latent)
	if !slices.Equal(by.Samples.Shape, []int{3, 4, 9, 12}) {
		t.Errorf("upscale by shape %v", by.Samples.Shape)
	}
}

func TestImageNodes(t *testing.T) {
	ctx := testCtx(t)
	a := tensor.New(1, 4, 6, 3)
	for i := range a.Data {
		a.Data[i] = 0.2
	}
	inv := run(t, ctx, "ImageInvert", nodes.Inputs{"image": a}).Outputs[0].(*tensor.Tensor)
	if inv.Data[5] != 0.8 {
		t.Errorf("invert %v", inv.Data[5])
	}
	b := tensor.New(2, 8, 8, 3)
	batch := run(t, ctx, "ImageBatch", nodes.Inputs{"image1": a, "image2": b}).Outputs[0].(*tensor.Tensor)
	if !slices.Equal(batch.Shape, []int{3, 4, 6, 3}) {
		t.Errorf("batch shape %v", batch.Shape)
	}
	sc := run(t, ctx, "ImageScale", nodes.Inputs{"image": a, "upscale_method": "lanczos", "width": int64(12), "height": int64(0), "crop": "disabled"}).Outputs[0].(*tensor.Tensor)
	if !slices.Equal(sc.Shape, []int{1, 8, 12, 3}) {
		t.Errorf("scale shape %v", sc.Shape)
	}
	sb := run(t, ctx, "ImageScaleBy", nodes.Inputs{"image": a, "upscale_method": "area", "scale_by": 0.5}).Outputs[0].(*tensor.Tensor)
	if !slices.Equal(sb.Shape, []int{1, 2, 3, 3}) || sb.Data[0] < 0.199 || sb.Data[0] > 0.201 {
		t.Errorf("scale by %v %v", sb.Shape, sb.Data[0])
	}
}

func TestPrimitives(t *testing.T) {
	ctx := testCtx(t)
	for name, v := range map[string]any{"PrimitiveInt": int64(7), "PrimitiveFloat": 0.5, "PrimitiveString": "s", "PrimitiveStringMultiline": "a\nb", "PrimitiveBoolean": true} {
		if got := run(t, ctx, name, nodes.Inputs{"value": v}).Outputs[0]; got != v {
			t.Errorf("%s: %v", name, got)
		}
	}
}
