package textenc

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/ort"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/internal/tokenizer"
)

var (
	rtOnce sync.Once
	rtVal  *ort.Runtime
	rtErr  error
)

// runtime opens ONNX Runtime once or skips the test.
func runtime(t testing.TB) *ort.Runtime {
	t.Helper()
	rtOnce.Do(func() { rtVal, rtErr = ort.Open(ort.Config{Provider: "cpu", Threads: 2}) })
	if rtErr != nil {
		t.Skipf("ONNX Runtime unavailable (run scripts/setup.sh or set ONNXRUNTIME_LIB): %v", rtErr)
	}
	return rtVal
}

// goldenDir returns the golden fixture folder ($COMFYGO_GOLDEN, else <repo>/../shared/golden)
// or skips the test.
func goldenDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("COMFYGO_GOLDEN")
	if dir == "" {
		if root, err := models.RepoRoot(); err == nil {
			dir = filepath.Join(root, "..", "shared", "golden")
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "clip_hidden.safetensors")); err != nil {
		t.Skipf("golden fixtures not found at %q (set COMFYGO_GOLDEN): %v", dir, err)
	}
	return dir
}

func open(t testing.TB, path string) *safetensors.File {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// idWords reads whitespace-separated token ids (the golden fixtures give prompts as ids).
type idWords struct{}

func (idWords) Encode(s string) []int {
	var out []int
	for _, f := range strings.Fields(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			panic(fmt.Sprintf("idWords: %q is not an id", f))
		}
		out = append(out, n)
	}
	return out
}

// closeTo checks |got-want| <= atol + rtol|want| elementwise and returns the max abs error.
func closeTo(t *testing.T, what string, got, want []float32, atol, rtol float64) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var maxErr float64
	bad := 0
	for i := range want {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		maxErr = max(maxErr, d)
		if d > atol+rtol*math.Abs(float64(want[i])) {
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values off (max abs err %.3g)", what, bad, len(want), maxErr)
	}
	t.Logf("%s: max abs err %.3g", what, maxErr)
	return maxErr
}

func idsChunk(ids []int64) tokenizer.Chunk {
	c := make(tokenizer.Chunk, len(ids))
	for i, id := range ids {
		c[i] = tokenizer.Token{ID: int(id), Weight: 1}
	}
	return c
}

func row(t *tensor.Tensor, i int) []float32 {
	n := tensor.Numel(t.Shape[1:])
	return t.Data[i*n : (i+1)*n]
}
