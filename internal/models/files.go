package models

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/comfygo/comfygo/internal/safetensors"
)

// HeaderFromFile adapts an open safetensors file for Detect.
func HeaderFromFile(f *safetensors.File) *Header {
	h := &Header{Tensors: make(map[string]TensorInfo, len(f.Header().Tensors)), Metadata: f.Metadata()}
	for k, ti := range f.Header().Tensors {
		h.Tensors[k] = TensorInfo{DType: string(ti.DType), Shape: ti.Shape}
	}
	h.Read = func(key string) ([]float32, error) {
		t, err := f.Float32(key)
		if err != nil {
			return nil, err
		}
		return t.Data, nil
	}
	return h
}

// RepoRoot finds the module root (the folder holding go.mod) from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}
