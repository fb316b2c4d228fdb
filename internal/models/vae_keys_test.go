package models

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// A VAE re-saved with diffusers names (Linear attention weights) and one with the quant convs
// moved under encoder./decoder. decode exactly like the original.
func TestVAEKeyLayouts(t *testing.T) {
	dir := tinyDir(t)
	src, err := safetensors.Open(filepath.Join(dir, TinyVAEFile))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	levels := len(TinyVAE.ChMult)
	write := func(name string, rename func(k string) string) string {
		ts := map[string]*tensor.Tensor{}
		for _, k := range src.Keys() {
			x, err := src.Float32(k)
			if err != nil {
				t.Fatal(err)
			}
			nk := rename(k)
			if regexp.MustCompile(`mid_block\.attentions\.0\.(to_|query|key|value|proj_attn)`).MatchString(nk) && len(x.Shape) == 4 {
				x.Shape = x.Shape[:2]
			}
			ts[nk] = x
		}
		p := filepath.Join(dir, "vae", name)
		if err := safetensors.WriteFloat32(p, ts, safetensors.F32, nil); err != nil {
			t.Fatal(err)
		}
		return p
	}
	diffusers := write("diffusers.safetensors", func(k string) string {
		c := diffusersVAEKeys(k, levels)
		return c[len(c)-1] // the old "query"/"proj_attn" spelling where there are two
	})
	moved := write("moved.safetensors", func(k string) string {
		switch k {
		case "quant_conv.weight", "quant_conv.bias":
			return "encoder." + k
		case "post_quant_conv.weight", "post_quant_conv.bias":
			return "decoder." + k
		}
		return k
	})
	m := testManager(t, ManagerOptions{})
	ctx := context.Background()
	z := randTensor(9, 1, 4, 3, 4)
	img := randTensor(10, 1, 24, 32, 3)
	for i := range img.Data {
		img.Data[i] = (img.Data[i] + 1) / 2
	}
	ref, err := m.LoadVAE(filepath.Join(dir, TinyVAEFile))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ref.Decode(ctx, z)
	wantLat, _ := ref.Encode(ctx, img)
	for _, p := range []string{diffusers, moved} {
		v, err := m.LoadVAE(p)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(p), err)
		}
		got, err := v.Decode(ctx, z)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(p), err)
		}
		closeTo(t, filepath.Base(p)+" decode", got, want, 1e-6, 0)
		lat, err := v.Encode(ctx, img)
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, filepath.Base(p)+" encode", lat, wantLat, 1e-6, 0)
	}
	os.Remove(diffusers)
}
