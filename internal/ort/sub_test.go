package ort

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// Weights from two files in different subfolders of one external-data folder (checkpoint + LoRA).
func TestExternalDataSubfolders(t *testing.T) {
	rt := testRuntime(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	os.MkdirAll(filepath.Join(dir, "b"), 0o755)
	w := tensor.FromData([]float32{1, 2, 3, 4, 5, 6}, 3, 2)
	if err := safetensors.WriteFloat32(filepath.Join(dir, "a", "w.safetensors"), map[string]*tensor.Tensor{"w": w}, safetensors.F16, nil); err != nil {
		t.Fatal(err)
	}
	if err := safetensors.WriteFloat32(filepath.Join(dir, "b", "l.safetensors"), map[string]*tensor.Tensor{"l": w}, safetensors.BF16, nil); err != nil {
		t.Fatal(err)
	}
	f1, _ := safetensors.Open(filepath.Join(dir, "a", "w.safetensors"))
	defer f1.Close()
	f2, _ := safetensors.Open(filepath.Join(dir, "b", "l.safetensors"))
	defer f2.Close()
	g := onnx.NewGraph("sub")
	g.SetExternalDir(dir)
	x := g.Input("x", onnx.Float, onnx.Dim("b"), 2)
	g.Output(g.Linear(x, g.Add(g.Weight(f1, "w"), g.Weight(f2, "l")), onnx.Value{}), "y")
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
	if !reflect.DeepEqual(out["y"].Data, []float32{6, 14, 22}) {
		t.Errorf("got %v", out["y"].Data)
	}
}

func TestCUDAUnavailableMessage(t *testing.T) {
	rt := testRuntime(t)
	if err := probeCUDA(rt.cfg); err == nil {
		t.Skip("this ONNX Runtime has a working CUDA provider")
	}
	_, err := Open(Config{Provider: "cuda"})
	if err == nil || !strings.Contains(err.Error(), "onnxruntime-gpu") || !strings.Contains(err.Error(), "ONNXRUNTIME_LIB") {
		t.Errorf("unclear CUDA error: %v", err)
	}
	rt2, err := Open(Config{Provider: "auto"})
	if err != nil || rt2.Provider() != "cpu" {
		t.Errorf("auto: %v %v", rt2, err)
	}
}
