package models

import (
	"context"
	"sync"
	"testing"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/ort"
	"github.com/comfygo/comfygo/internal/tensor"
)

var (
	rtOnce sync.Once
	rtVal  *ort.Runtime
	rtErr  error
)

// testFactory returns an ORT session factory on the CPU (2 threads).
func testFactory(t testing.TB) ORTFactory {
	t.Helper()
	rtOnce.Do(func() { rtVal, rtErr = ort.Open(ort.Config{Provider: "cpu", Threads: 2}) })
	if rtErr != nil {
		t.Skipf("ONNX Runtime unavailable: %v", rtErr)
	}
	return ORTFactory{RT: rtVal}
}

// runDirect runs model m once.
func runDirect(t testing.TB, m *onnx.Model, inputs map[string]*tensor.Tensor) *tensor.Tensor {
	t.Helper()
	s, err := testFactory(t).NewSession(m)
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
