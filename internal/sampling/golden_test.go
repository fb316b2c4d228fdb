package sampling

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// goldenDir returns the golden fixture folder or skips the test.
func goldenDir(t testing.TB) string {
	if d := os.Getenv("COMFYGO_GOLDEN"); d != "" {
		return d
	}
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		p := filepath.Dir(dir)
		if p == dir {
			t.Skip("golden fixtures: repository root not found")
		}
		dir = p
	}
	g := filepath.Join(dir, "..", "shared", "golden")
	if _, err := os.Stat(filepath.Join(g, "samplers.safetensors")); err != nil {
		t.Skipf("golden fixtures not found at %s (set COMFYGO_GOLDEN)", g)
	}
	return g
}

func openGolden(t testing.TB, name string) *safetensors.File {
	f, err := safetensors.Open(filepath.Join(goldenDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func mustT(t testing.TB, f *safetensors.File, key string) *tensor.Tensor {
	x, err := f.Float32(key)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// maxErr returns the largest |got-want| - rtol*|want| excess over atol (<= 0 means within) and
// the largest absolute difference.
func compare(got, want []float32, atol, rtol float64) (maxAbs float64, ok bool) {
	ok = len(got) == len(want)
	for i := range want {
		if i >= len(got) {
			break
		}
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if d > maxAbs {
			maxAbs = d
		}
		if d > atol+rtol*math.Abs(float64(want[i])) || math.IsNaN(d) {
			ok = false
		}
	}
	return maxAbs, ok
}
