package models

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// The same weights stored as F16 (tiny default), F32 and BF16 load and run; F16→F32 is exact,
// so the F32 copy must give identical outputs, and BF16 (rounded weights) close ones.
func TestCheckpointDtypes(t *testing.T) {
	dir := tinyDir(t)
	src, err := safetensors.Open(filepath.Join(dir, TinySD15File))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ts := map[string]*tensor.Tensor{}
	for _, k := range src.Keys() {
		if ts[k], err = src.Float32(k); err != nil {
			t.Fatal(err)
		}
	}
	for _, dt := range []safetensors.DType{safetensors.F32, safetensors.BF16} {
		if err := safetensors.WriteFloat32(filepath.Join(dir, "checkpoints", string(dt)+".safetensors"), ts, dt, src.Metadata()); err != nil {
			t.Fatal(err)
		}
	}
	m := testManager(t, ManagerOptions{})
	in := UNetInput{X: randTensor(1, 1, 4, 6, 6), Timesteps: []float32{321}, Context: randTensor(2, 1, 77, 48)}
	run := func(name string) (*tensor.Tensor, *tensor.Tensor) {
		ck, err := m.LoadCheckpoint(filepath.Join(dir, "checkpoints", name), DetectOptions{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out, err := ck.Model.Apply(context.Background(), in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		img, err := ck.VAE.Decode(context.Background(), randTensor(3, 1, 4, 2, 3))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return out, img
	}
	o16, i16 := run(filepath.Base(TinySD15File))
	o32, i32 := run("F32.safetensors")
	ob, ib := run("BF16.safetensors")
	closeTo(t, "F32 vs F16 unet", o32, o16, 1e-6, 0)
	closeTo(t, "F32 vs F16 vae", i32, i16, 1e-6, 0)
	closeTo(t, "BF16 vs F16 unet", ob, o16, 0.1, 0.05)
	closeTo(t, "BF16 vs F16 vae", ib, i16, 0.1, 0.05)
}
