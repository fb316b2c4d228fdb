package ort

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

func TestSmoke(t *testing.T) {
	rt := testRuntime(t)
	t.Log(Version(), rt.Provider(), rt.Threads())
	dir := t.TempDir()
	p := filepath.Join(dir, "w.safetensors")
	w := tensor.FromData([]float32{1, 2, 3, 4, 5, 6}, 3, 2)
	raw, _ := safetensors.FromFloat32("w", w, safetensors.F32)
	h, _ := safetensors.FromFloat32("h", w, safetensors.F16)
	if err := safetensors.Write(p, []safetensors.RawTensor{raw, h}, nil, safetensors.WriteOptions{Misalign: 1}); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := onnx.NewGraph("smoke")
	x := g.Input("x", onnx.Float, onnx.Dim("b"), 2)
	y := g.MatMul(x, g.Transpose(g.Weight(f, "w"), 1, 0))
	y2 := g.MatMul(x, g.Transpose(g.Weight(f, "h"), 1, 0))
	g.Output(y, "y")
	g.Output(y2, "y2")
	m, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.NewSession(m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), map[string]*tensor.Tensor{"x": tensor.FromData([]float32{1, 1}, 1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out["y"].Data, []float32{3, 7, 11}) || !reflect.DeepEqual(out["y2"].Data, []float32{3, 7, 11}) {
		t.Errorf("got %v %v", out["y"].Data, out["y2"].Data)
	}
}
