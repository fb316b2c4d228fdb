package models

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/tensor"
)

var ortOnce sync.Once

// runDirect runs model m on inputs with onnxruntime_go directly (test helper until the
// shared session API is used everywhere).
func runDirect(t testing.TB, m *onnx.Model, inputs map[string]*tensor.Tensor) *tensor.Tensor {
	t.Helper()
	ortOnce.Do(func() {
		lib := os.Getenv("ONNXRUNTIME_LIB")
		if lib == "" {
			root, _ := RepoRoot()
			lib = filepath.Join(root, "third_party/onnxruntime/libonnxruntime.so.1")
		}
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(); err != nil {
			t.Fatal(err)
		}
	})
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	opts.SetIntraOpNumThreads(2)
	if m.ExternalDir != "" {
		opts.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", m.ExternalDir)
	}
	names := m.InputNames()
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(b, names, m.OutputNames(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	var ins []ort.Value
	for _, n := range names {
		x := inputs[n]
		sh := make([]int64, len(x.Shape))
		for i, d := range x.Shape {
			sh[i] = int64(d)
		}
		v, err := ort.NewTensor(ort.NewShape(sh...), x.Data)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Destroy()
		ins = append(ins, v)
	}
	outs := []ort.Value{nil}
	if err := s.Run(ins, outs); err != nil {
		t.Fatal(err)
	}
	defer outs[0].Destroy()
	o := outs[0].(*ort.Tensor[float32])
	sh := o.GetShape()
	shape := make([]int, len(sh))
	for i, d := range sh {
		shape[i] = int(d)
	}
	return tensor.FromData(append([]float32(nil), o.GetData()...), shape...)
}
