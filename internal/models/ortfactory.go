package models

import (
	"context"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/ort"
	"github.com/comfygo/comfygo/internal/tensor"
)

// ORTFactory makes Manager sessions on an internal/ort Runtime.
type ORTFactory struct {
	RT   *ort.Runtime
	Opts []ort.SessionOption
}

// NewSession implements SessionFactory.
func (f ORTFactory) NewSession(m *onnx.Model) (Session, error) {
	s, err := f.RT.NewSession(m, f.Opts...)
	if err != nil {
		return nil, err
	}
	return ortSession{s}, nil
}

// Provider implements SessionFactory.
func (f ORTFactory) Provider() string { return f.RT.Provider() }

type ortSession struct{ s *ort.Session }

func (o ortSession) Run(ctx context.Context, in map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	return o.s.Run(ctx, in)
}

func (o ortSession) Close() error { return o.s.Close() }
