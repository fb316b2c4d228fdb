package sampling

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/comfygo/comfygo/internal/lora"
	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/ort"
	"github.com/comfygo/comfygo/internal/safetensors"
	isampling "github.com/comfygo/comfygo/internal/sampling"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

var (
	rtOnce sync.Once
	rtVal  *ort.Runtime
	rtErr  error
)

func goldenDir(t testing.TB) string {
	if d := os.Getenv("COMFYGO_GOLDEN"); d != "" {
		return d
	}
	root, err := models.RepoRoot()
	if err != nil {
		t.Skip("golden fixtures: repository root not found")
	}
	g := filepath.Join(root, "..", "shared", "golden")
	if _, err := os.Stat(filepath.Join(g, "end_to_end.safetensors")); err != nil {
		t.Skipf("golden fixtures not found at %s (set COMFYGO_GOLDEN)", g)
	}
	return g
}

func testManager(t testing.TB) *models.Manager {
	rtOnce.Do(func() { rtVal, rtErr = ort.Open(ort.Config{Provider: "cpu", Threads: 2}) })
	if rtErr != nil {
		t.Skipf("ONNX Runtime unavailable: %v", rtErr)
	}
	m := models.NewManager(models.ORTFactory{RT: rtVal}, models.ManagerOptions{})
	t.Cleanup(func() { m.Close() })
	return m
}

func goldenCheckpoint(t testing.TB) *models.Checkpoint {
	ck, err := testManager(t).LoadCheckpoint(filepath.Join(goldenDir(t), "tiny_sd15.safetensors"), models.DetectOptions{Family: "SD15", NumHeads: 2})
	if err != nil {
		t.Fatal(err)
	}
	return ck
}

func openST(t testing.TB, name string) *safetensors.File {
	f, err := safetensors.Open(filepath.Join(goldenDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func get(t testing.TB, f *safetensors.File, k string) *tensor.Tensor {
	x, err := f.Float32(k)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func within(got, want *tensor.Tensor, atol, rtol float64) (float64, bool) {
	ok := len(got.Data) == len(want.Data)
	worst := 0.0
	for i := range want.Data {
		if i >= len(got.Data) {
			break
		}
		d := math.Abs(float64(got.Data[i] - want.Data[i]))
		worst = math.Max(worst, d)
		if d > atol+rtol*math.Abs(float64(want.Data[i])) || math.IsNaN(d) {
			ok = false
		}
	}
	return worst, ok
}

func withLoRA(t testing.TB, m models.Model, file string, s float64) models.Model {
	f, err := lora.Open(filepath.Join(goldenDir(t), file))
	if err != nil {
		t.Fatal(err)
	}
	l, err := f.Apply(lora.ModelKeyMap(m), nil, s, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.NotLoaded) > 0 {
		t.Fatalf("%s: %d keys not loaded", file, len(l.NotLoaded))
	}
	return m.WithPatches(l.UNet)
}

// TestGoldenLoRAUNet runs the LoRA-patched tiny UNet (all three key spellings) against
// ComfyUI's outputs; the PEFT file must give the kohya results (comfygo maps the PEFT attention
// names ComfyUI misses).
func TestGoldenLoRAUNet(t *testing.T) {
	ck := goldenCheckpoint(t)
	eps := openST(t, "unet_eps.safetensors")
	gold := openST(t, "unet_lora.safetensors")
	for _, file := range []string{"tiny_lcm_lora.safetensors", "tiny_lcm_lora_ldm.safetensors", "tiny_lcm_lora_peft.safetensors"} {
		for _, s := range []string{"1.0", "0.5"} {
			strength := 1.0
			if s == "0.5" {
				strength = 0.5
			}
			m := withLoRA(t, ck.Model, file, strength)
			for _, c := range []string{"a", "c"} {
				out, err := m.Apply(context.Background(), models.UNetInput{X: get(t, eps, c+".x"),
					Timesteps: get(t, eps, c+".timesteps").Data, Context: get(t, eps, c+".context")})
				if err != nil {
					t.Fatal(err)
				}
				key := fmt.Sprintf("lcm.s%s.%s.eps", s, c)
				d, ok := within(out, get(t, gold, key), 2e-4, 1e-4)
				if !ok {
					t.Errorf("%s %s: max abs err %g", file, key, d)
				} else {
					t.Logf("%s %s: max abs err %.3g", file, key, d)
				}
			}
		}
	}
}

type recorder struct {
	mu       sync.Mutex
	steps    []float64
	max      float64
	previews int
}

func (r *recorder) Progress(_ string, v, max float64, p image.Image) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, v)
	r.max = max
	if p != nil {
		r.previews++
	}
}

// TestGoldenEndToEnd runs the golden LCM graph (LoRA 1.0, ModelSamplingDiscrete lcm, KSampler
// lcm/sgm_uniform 4 steps cfg 1.5 seed 42, VAE decode) and compares with ComfyUI's image.
func TestGoldenEndToEnd(t *testing.T) {
	ck := goldenCheckpoint(t)
	f := openST(t, "end_to_end.safetensors")
	m := withLoRA(t, ck.Model, "tiny_lcm_lora.safetensors", 1)
	res, err := executeModelSamplingDiscrete(&nodes.Context{Context: context.Background()}, nodes.Inputs{"model": m, "sampling": "lcm", "zsnr": false})
	if err != nil {
		t.Fatal(err)
	}
	m = res.Outputs[0].(models.Model)
	pos := nodes.Conditioning{{Cond: get(t, f, "positive.cond"), Pooled: get(t, f, "positive.pooled"), Options: map[string]any{}}}
	neg := nodes.Conditioning{{Cond: get(t, f, "negative.cond"), Pooled: get(t, f, "negative.pooled"), Options: map[string]any{}}}
	rec := &recorder{}
	ctx := &nodes.Context{Context: context.Background(), Reporter: rec, NodeID: "3"}
	lat := &nodes.Latent{Samples: tensor.New(1, 4, 8, 8)}
	out, err := Sample(ctx, m, pos, neg, lat, 1.5, isampling.Request{Sampler: "lcm", Scheduler: "sgm_uniform", Steps: 4, Denoise: 1, Seed: 42, StartStep: -1, LastStep: -1})
	if err != nil {
		t.Fatal(err)
	}
	d, ok := within(out.Samples, get(t, f, "samples"), 0.1, 0)
	if !ok {
		t.Errorf("samples: max abs err %g (tolerance 0.1)", d)
	}
	t.Logf("samples: max abs err %.3g", d)
	if len(rec.steps) != 4 || rec.max != 4 || rec.steps[3] != 4 {
		t.Errorf("progress events %v of %v", rec.steps, rec.max)
	}
	if ck.VAE == nil {
		t.Fatal("golden checkpoint has no VAE")
	}
	img, err := ck.VAE.Decode(context.Background(), out.Samples)
	if err != nil {
		t.Fatal(err)
	}
	d, ok = within(img, get(t, f, "image"), 2e-3, 0)
	if !ok {
		t.Errorf("image: max abs err %g (tolerance 2e-3)", d)
	}
	pf, err := os.Open(filepath.Join(goldenDir(t), "end_to_end.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	ref, err := png.Decode(pf)
	if err != nil {
		t.Fatal(err)
	}
	mse := 0.0
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			r, g, b, _ := ref.At(x, y).RGBA()
			for c, rv := range []uint32{r >> 8, g >> 8, b >> 8} {
				v := math.Floor(math.Min(math.Max(float64(img.Data[(y*64+x)*3+c])*255, 0), 255))
				e := v - float64(rv)
				mse += e * e
			}
		}
	}
	mse /= 64 * 64 * 3
	psnr := math.Inf(1)
	if mse > 0 {
		psnr = 10 * math.Log10(255*255/mse)
	}
	t.Logf("end-to-end image vs end_to_end.png: PSNR %.2f dB (image max abs err %.3g)", psnr, d)
	if psnr < 40 {
		t.Errorf("PSNR %.2f dB < 40 dB", psnr)
	}
}
