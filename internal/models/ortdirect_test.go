package models

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/tensor"
)

var ortOnce sync.Once

// directFactory runs sessions with onnxruntime_go directly (test double for ORTFactory).
type directFactory struct{ t testing.TB }

type directSession struct {
	s       *ort.DynamicAdvancedSession
	inNames []string
	outName string
}

func (directFactory) Provider() string { return "cpu" }

func (f directFactory) NewSession(m *onnx.Model) (Session, error) {
	ortOnce.Do(func() {
		lib := os.Getenv("ONNXRUNTIME_LIB")
		if lib == "" {
			root, _ := RepoRoot()
			lib = filepath.Join(root, "third_party/onnxruntime/libonnxruntime.so.1")
		}
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(); err != nil {
			f.t.Fatal(err)
		}
	})
	b, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	opts.SetIntraOpNumThreads(2)
	if m.ExternalDir != "" {
		opts.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", m.ExternalDir)
	}
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(b, m.InputNames(), m.OutputNames(), opts)
	if err != nil {
		return nil, err
	}
	return &directSession{s: s, inNames: m.InputNames(), outName: m.OutputNames()[0]}, nil
}

func (d *directSession) Close() error { return d.s.Destroy() }

func (d *directSession) Run(ctx context.Context, inputs map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	var ins []ort.Value
	for _, n := range d.inNames {
		x := inputs[n]
		sh := make([]int64, len(x.Shape))
		for i, v := range x.Shape {
			sh[i] = int64(v)
		}
		v, err := ort.NewTensor(ort.NewShape(sh...), x.Data)
		if err != nil {
			return nil, err
		}
		defer v.Destroy()
		ins = append(ins, v)
	}
	outs := []ort.Value{nil}
	if err := d.s.Run(ins, outs); err != nil {
		return nil, err
	}
	defer outs[0].Destroy()
	o := outs[0].(*ort.Tensor[float32])
	sh := o.GetShape()
	shape := make([]int, len(sh))
	for i, v := range sh {
		shape[i] = int(v)
	}
	return map[string]*tensor.Tensor{d.outName: tensor.FromData(append([]float32(nil), o.GetData()...), shape...)}, nil
}

// runDirect runs model m once.
func runDirect(t testing.TB, m *onnx.Model, inputs map[string]*tensor.Tensor) *tensor.Tensor {
	t.Helper()
	s, err := directFactory{t}.NewSession(m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), inputs)
	if err != nil {
		t.Fatal(err)
	}
	return out[m.OutputNames()[0]]
}
