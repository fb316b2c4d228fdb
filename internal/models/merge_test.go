package models

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"testing"

	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// TestWriteMerged checks the merged-weights file against a float64 reference for every dtype
// and patch mix: one low-rank patch (the fused fp16 kernel path), low-rank + dense + zero
// strength on one weight (the fp32 path), conv-shaped factors, and an unpatched passthrough;
// also with the low-rank products on ORT (the path of CPUs without the vector kernels).
func TestWriteMerged(t *testing.T) {
	m := &Manager{log: slog.Default()}
	w1 := randTensor(11, 70, 130)      // linear, odd sizes: kernel tails
	w2 := randTensor(12, 40, 16, 3, 3) // conv [out,in,kh,kw]
	w3 := randTensor(13, 9, 5)         // untouched
	lr1 := lowRank{up: randTensor(14, 70, 8), down: randTensor(15, 8, 130), scale: 0.25}
	lr2 := lowRank{up: randTensor(16, 40, 4, 1, 1), down: randTensor(17, 4, 16, 3, 3), scale: 0.5}
	dense := fullDelta{lowRank{up: randTensor(18, 40, 2, 1, 1), down: randTensor(19, 2, 16, 3, 3), scale: 1}}
	p := Patches{
		"w1": {{Patch: lr1, Strength: 0.8, Source: "a"}},
		"w2": {{Patch: lr2, Strength: 1, Source: "a"}, {Patch: dense, Strength: -0.5, Source: "b"}, {Patch: lr1, Strength: 0, Source: "c"}},
	}
	want := map[string][]float64{}
	for k, w := range map[string]*tensor.Tensor{"w1": w1, "w2": w2} {
		ref := make([]float64, len(w.Data))
		for _, wp := range p[k] {
			if wp.Strength == 0 {
				continue
			}
			d, err := wp.Patch.Delta(w.Shape)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range d.Data {
				ref[i] += wp.Strength * float64(v)
			}
		}
		want[k] = ref
	}
	fma := hasFMA
	defer func() { hasFMA = fma }()
	for _, c := range []struct {
		dt  safetensors.DType
		ort bool // no vector kernels: low-rank products on ORT
	}{{safetensors.F16, false}, {safetensors.F32, false}, {safetensors.BF16, false}, {safetensors.F16, true}} {
		dt := c.dt
		hasFMA = fma && !c.ort
		t.Run(fmt.Sprintf("%s/ort=%v", dt, c.ort), func(t *testing.T) {
			m := m
			if c.ort {
				m = testManager(t, ManagerOptions{})
				defer func() {
					if m.mergeSess == nil {
						t.Error("low-rank merge did not go through ORT")
					}
				}()
			}
			dir := t.TempDir()
			src := filepath.Join(dir, "ckpt.safetensors")
			if err := safetensors.WriteFloat32(src, map[string]*tensor.Tensor{"w1": w1, "w2": w2, "w3": w3}, dt, nil); err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.Open(src)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			out := filepath.Join(dir, "merged.safetensors")
			if err := m.writeMerged(context.Background(), f, []string{"w1", "w2", "w3"}, p, out); err != nil {
				t.Fatal(err)
			}
			g, err := safetensors.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			for _, k := range []string{"w1", "w2", "w3"} {
				info, _ := g.Info(k)
				if info.DType != dt {
					t.Fatalf("%s stored as %s, want %s", k, info.DType, dt)
				}
				orig, _ := f.Float32(k)
				got, err := g.Float32(k)
				if err != nil {
					t.Fatal(err)
				}
				if k == "w3" {
					a, _ := f.Bytes(k)
					b, _ := g.Bytes(k)
					if string(a) != string(b) {
						t.Fatal("unpatched tensor changed")
					}
					continue
				}
				for i, v := range got.Data {
					exact := float64(orig.Data[i]) + want[k][i]
					// one rounding to the stored dtype, plus fp32 summation error
					tol := 1e-5 * (1 + math.Abs(exact))
					switch dt {
					case safetensors.F16:
						tol += math.Abs(exact) * 0x1p-11
					case safetensors.BF16:
						tol += math.Abs(exact) * 0x1p-8
					}
					if math.Abs(float64(v)-exact) > tol {
						t.Fatalf("%s[%d] = %v, want %v (±%g)", k, i, v, exact, tol)
					}
				}
			}
		})
	}
}
