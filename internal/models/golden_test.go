package models

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

func fileResolver(f *safetensors.File, prefix string) func(string) (string, []int, error) {
	return func(k string) (string, []int, error) {
		info, ok := f.Info(prefix + k)
		if !ok {
			return "", nil, fmt.Errorf("checkpoint has no tensor %q", prefix+k)
		}
		return prefix + k, info.Shape, nil
	}
}

func openGolden(t *testing.T, name string) *safetensors.File {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(GoldenDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func get(t *testing.T, f *safetensors.File, k string) *tensor.Tensor {
	t.Helper()
	x, err := f.Float32(k)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// closeTo checks |got-want| <= atol + rtol|want| and returns the max abs error.
func closeTo(t *testing.T, what string, got, want *tensor.Tensor, atol, rtol float64) float64 {
	t.Helper()
	if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape, want.Shape)
	}
	var maxErr float64
	bad := 0
	for i := range want.Data {
		d := math.Abs(float64(got.Data[i] - want.Data[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		maxErr = max(maxErr, d)
		if d > atol+rtol*math.Abs(float64(want.Data[i])) {
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values out of tolerance, max abs err %.3g", what, bad, len(want.Data), maxErr)
	} else {
		t.Logf("%s: max abs err %.3g", what, maxErr)
	}
	return maxErr
}

func TestGoldenUNetDirect(t *testing.T) {
	ck := openGolden(t, "tiny_sd15.safetensors")
	gf := openGolden(t, "unet_eps.safetensors")
	fam, err := Detect(HeaderFromFile(ck), DetectOptions{Family: "SD15", NumHeads: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, mha := range []bool{false, true} {
		for _, c := range []string{"a", "b", "c"} {
			xk := c
			if c == "b" {
				xk = "a"
			}
			x := get(t, gf, xk+".x")
			ctx := get(t, gf, xk+".context")
			ts := get(t, gf, c+".timesteps")
			g, err := BuildUNet(fam.UNet, UNetShape{x.Shape[0], x.Shape[2], x.Shape[3], ctx.Shape[1]}, fileResolver(ck, UNetPrefix), mha)
			if err != nil {
				t.Fatal(err)
			}
			m, err := g.Lower("unet", ck)
			if err != nil {
				t.Fatal(err)
			}
			temb := tensor.FromData(TimestepEmbedding(ts.Data, fam.UNet.ModelChannels), x.Shape[0], fam.UNet.ModelChannels)
			out := runDirect(t, m, map[string]*tensor.Tensor{"x": x, "temb": temb, "context": ctx})
			closeTo(t, fmt.Sprintf("unet %s mha=%v", c, mha), out, get(t, gf, c+".eps"), 1e-4, 1e-4)
		}
	}
}

func TestGoldenVAEDirect(t *testing.T) {
	ck := openGolden(t, "tiny_sd15.safetensors")
	gf := openGolden(t, "vae.safetensors")
	vc, err := DetectVAE(HeaderFromFile(ck).Tensors, VAEPrefix)
	if err != nil {
		t.Fatal(err)
	}
	z := get(t, gf, "decode.latent")
	g, err := BuildVAEDecoder(vc, 1, 8, 8, fileResolver(ck, VAEPrefix), false)
	if err != nil {
		t.Fatal(err)
	}
	m, err := g.Lower("vae_dec", ck)
	if err != nil {
		t.Fatal(err)
	}
	out := runDirect(t, m, map[string]*tensor.Tensor{"z": z})
	closeTo(t, "decode.raw", out, get(t, gf, "decode.raw"), 5e-4, 1e-4)

	img := get(t, gf, "encode.image")
	x := tensor.New(1, 3, 64, 64)
	for y := 0; y < 64; y++ {
		for xx := 0; xx < 64; xx++ {
			for c := 0; c < 3; c++ {
				x.Data[c*4096+y*64+xx] = 2*img.Data[(y*64+xx)*3+c] - 1
			}
		}
	}
	ge, err := BuildVAEEncoder(vc, 1, 64, 64, fileResolver(ck, VAEPrefix), false)
	if err != nil {
		t.Fatal(err)
	}
	me, err := ge.Lower("vae_enc", ck)
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "encode.moments", runDirect(t, me, map[string]*tensor.Tensor{"x": x}), get(t, gf, "encode.moments"), 5e-4, 1e-4)
}

// The SD2/SDXL linear proj_in/proj_out path, checked against ComfyUI's SD1 outputs: a 1×1 conv
// is a Linear, so the golden checkpoint with its proj weights reshaped to [C,C] must reproduce
// unet_eps exactly through the linear graph.
func TestGoldenLinearProjPath(t *testing.T) {
	ck := openGolden(t, "tiny_sd15.safetensors")
	gf := openGolden(t, "unet_eps.safetensors")
	ts := map[string]*tensor.Tensor{}
	for _, k := range ck.Keys() {
		if len(k) < len(UNetPrefix) || k[:len(UNetPrefix)] != UNetPrefix {
			continue
		}
		x := get(t, ck, k)
		if regexp.MustCompile(`\.proj_(in|out)\.weight$`).MatchString(k) {
			x.Shape = x.Shape[:2]
		}
		ts[k] = x
	}
	p := filepath.Join(t.TempDir(), "linear.safetensors")
	if err := safetensors.WriteFloat32(p, ts, safetensors.F32, nil); err != nil {
		t.Fatal(err)
	}
	lf, err := safetensors.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	u, err := DetectUNet(HeaderFromFile(lf).Tensors, UNetPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if !u.UseLinear {
		t.Fatal("reshaped proj weights should detect as linear")
	}
	u.NumHeads, u.NumHeadChannels = 2, -1
	x, ctx := get(t, gf, "c.x"), get(t, gf, "c.context")
	g, err := BuildUNet(u, UNetShape{1, 16, 12, 77}, fileResolver(lf, UNetPrefix), true)
	if err != nil {
		t.Fatal(err)
	}
	m, err := g.Lower("unet", lf)
	if err != nil {
		t.Fatal(err)
	}
	temb := tensor.FromData(TimestepEmbedding(get(t, gf, "c.timesteps").Data, 32), 1, 32)
	closeTo(t, "linear-proj unet c", runDirect(t, m, map[string]*tensor.Tensor{"x": x, "temb": temb, "context": ctx}), get(t, gf, "c.eps"), 1e-4, 1e-4)
}
