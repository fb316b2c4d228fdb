package lora

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
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
	if _, err := os.Stat(filepath.Join(g, "tiny_lcm_lora.safetensors")); err != nil {
		t.Skipf("golden fixtures not found at %s (set COMFYGO_GOLDEN)", g)
	}
	return g
}

// tinyUNetMap returns the golden checkpoint's UNet key map and the open checkpoint.
func tinyUNetMap(t testing.TB) (map[string]string, *safetensors.File) {
	g := goldenDir(t)
	ck, err := safetensors.Open(filepath.Join(g, "tiny_sd15.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	fam, err := models.Detect(models.HeaderFromFile(ck), models.DetectOptions{Family: "SD15", NumHeads: 2})
	if err != nil {
		t.Fatal(err)
	}
	return UNetKeyMap(ck.Keys(), models.DiffusersUNetMap(fam.UNet)), ck
}

func goldenPatchedKeys(t testing.TB) (all, peft []string) {
	b, err := os.ReadFile(filepath.Join(goldenDir(t), "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Groups map[string]struct {
			Entries []struct {
				Patched []string `json:"patched_checkpoint_keys"`
				Peft    []string `json:"peft_file_patched_checkpoint_keys"`
			} `json:"entries"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	e := g.Groups["unet_lora"].Entries[0]
	return e.Patched, e.Peft
}

func TestGoldenLoRAFilesPatchSameWeights(t *testing.T) {
	km, ck := tinyUNetMap(t)
	want, _ := goldenPatchedKeys(t)
	sort.Strings(want)
	var ref *Loaded
	for _, name := range []string{"tiny_lcm_lora.safetensors", "tiny_lcm_lora_ldm.safetensors", "tiny_lcm_lora_peft.safetensors"} {
		f, err := Open(filepath.Join(goldenDir(t), name))
		if err != nil {
			t.Fatal(err)
		}
		l, err := f.Apply(km, nil, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.NotLoaded) != 0 {
			t.Errorf("%s: keys not loaded: %d, e.g. %v", name, len(l.NotLoaded), l.NotLoaded[:min(3, len(l.NotLoaded))])
		}
		var got []string
		for k := range l.UNet {
			got = append(got, k)
		}
		sort.Strings(got)
		if len(got) != len(want) {
			t.Errorf("%s: %d patched weights, want %d", name, len(got), len(want))
		}
		for i := range want {
			if i < len(got) && got[i] != want[i] {
				t.Errorf("%s: patched key %q, want %q", name, got[i], want[i])
				break
			}
		}
		if ref == nil {
			ref = l
			continue
		}
		// same deltas as the kohya file (up to the folded 0.5 scale's rounding)
		worst := 0.0
		for k, wps := range l.UNet {
			info, _ := ck.Info(k)
			a, err := wps[0].Patch.Delta(info.Shape)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := ref.UNet[k][0].Patch.Delta(info.Shape)
			for i := range a.Data {
				worst = math.Max(worst, math.Abs(float64(a.Data[i]-b.Data[i])))
			}
		}
		if worst > 1e-6 {
			t.Errorf("%s: deltas differ from the kohya file by %g", name, worst)
		}
		t.Logf("%s: %d weights, max delta diff vs kohya %g", name, len(l.UNet), worst)
	}
}

func TestGoldenPatchedWeights(t *testing.T) {
	km, ck := tinyUNetMap(t)
	f, err := Open(filepath.Join(goldenDir(t), "tiny_lcm_lora.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := f.Apply(km, nil, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	gold, err := safetensors.Open(filepath.Join(goldenDir(t), "unet_lora.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer gold.Close()
	n := 0
	for _, gk := range gold.Keys() {
		const pre = "patched_weight.s1.0."
		if len(gk) <= len(pre) || gk[:len(pre)] != pre {
			continue
		}
		key := gk[len(pre):]
		want, _ := gold.Float32(gk)
		w, err := ck.Float32(key)
		if err != nil {
			t.Fatal(err)
		}
		wps := l.UNet[key]
		if len(wps) != 1 {
			t.Fatalf("%s: %d patches", key, len(wps))
		}
		// both paths: Delta (Go merge) and Factors (what the ONNX graph folds)
		d, err := wps[0].Patch.Delta(w.Shape)
		if err != nil {
			t.Fatal(err)
		}
		up, down, scale := wps[0].Patch.(models.LowRank).Factors()
		r := down.Shape[0]
		in := tensor.Numel(down.Shape) / r
		worst, worstF := 0.0, 0.0
		for i := range w.Data {
			got := w.Data[i] + float32(wps[0].Strength)*d.Data[i]
			worst = math.Max(worst, math.Abs(float64(got-want.Data[i])))
			o, c := i/in, i%in
			s := 0.0
			for k := 0; k < r; k++ {
				s += float64(up.Data[o*r+k]) * float64(down.Data[k*in+c])
			}
			worstF = math.Max(worstF, math.Abs(float64(w.Data[i])+s*scale-float64(want.Data[i])))
		}
		if worst > 2e-6 || worstF > 2e-6 {
			t.Errorf("%s: merged weight max diff %g (factors %g)", key, worst, worstF)
		}
		t.Logf("%s %v: max diff %g", key, w.Shape, worst)
		n++
	}
	if n != 4 {
		t.Errorf("checked %d patched weights, want 4", n)
	}
}
