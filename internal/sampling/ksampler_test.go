package sampling

import (
	"context"
	"math"
	"testing"

	"github.com/comfygo/comfygo/internal/tensor"
)

// TestEndToEndStepsGolden replays the golden LCM graph's KSampler with a stand-in UNet that
// returns, for each step, the raw output that reproduces ComfyUI's recorded cond/uncond
// denoised predictions. It checks noise, sigmas, the [uncond, cond] batch, CFG, the LCM
// sampler with seed+1 noise and process_out.
func TestEndToEndStepsGolden(t *testing.T) {
	f := openGolden(t, "end_to_end.safetensors")
	ms := mustMS(t, "lcm", false)
	pos := mustT(t, f, "positive.cond")
	neg := mustT(t, f, "negative.cond")
	condD := mustT(t, f, "steps.cond_denoised")
	uncondD := mustT(t, f, "steps.uncond_denoised")
	cfgD := mustT(t, f, "steps.cfg_denoised")
	wantX := mustT(t, f, "steps.x")
	wantTS := mustT(t, f, "timesteps")
	goldSig := mustT(t, f, "sigmas")
	n := 4 * 8 * 8
	step := func(ts float32) int {
		for i, w := range wantTS.Data {
			if w == ts {
				return i
			}
		}
		return -1
	}
	unet := func(_ context.Context, in UNetCall) (*tensor.Tensor, error) {
		if len(in.Timesteps) != 2 {
			t.Fatalf("expected a batch of 2 rows (uncond, cond), got %d", len(in.Timesteps))
		}
		out := tensor.New(in.X.Shape...)
		for r := 0; r < 2; r++ {
			i := step(in.Timesteps[r])
			if i < 0 {
				t.Fatalf("unexpected timestep %v", in.Timesteps[r])
			}
			ctxRow := in.Context.Data[r*77*32 : (r+1)*77*32]
			var want []float32
			switch {
			case ctxRow[5] == neg.Data[5] && ctxRow[100] == neg.Data[100]:
				if r != 0 {
					t.Errorf("negative conditioning in row %d, ComfyUI puts it first", r)
				}
				want = uncondD.Data[i*n : (i+1)*n]
			case ctxRow[5] == pos.Data[5] && ctxRow[100] == pos.Data[100]:
				want = condD.Data[i*n : (i+1)*n]
			default:
				t.Fatal("context row is neither positive nor negative")
			}
			// invert D = c_out*(x - F*sigma) + c_skip*x for F, with x = xin*sqrt(sigma^2+1)
			sigma := float64(goldSig.Data[i])
			ts := float64(in.Timesteps[r]) * 10
			cskip := 0.25 / (ts*ts + 0.25)
			cout := ts / math.Sqrt(ts*ts+0.25)
			for k := 0; k < n; k++ {
				x := float64(in.X.Data[r*n+k]) * math.Sqrt(sigma*sigma+1)
				out.Data[r*n+k] = float32((x - (float64(want[k])-cskip*x)/cout) / sigma)
			}
		}
		return out, nil
	}
	g := &Guider{MS: ms, UNet: unet, Positive: []Cond{{Cross: pos}}, Negative: []Cond{{Cross: neg}}, CFG: 1.5}
	req := Request{Sampler: "lcm", Scheduler: "sgm_uniform", Steps: 4, Denoise: 1, Seed: 42,
		StartStep: -1, LastStep: -1, LatentScale: 0.18215, Latent: tensor.New(1, 4, 8, 8)}
	var sigs []float64
	req.Callback = func(i, total int, x, d *tensor.Tensor) error {
		if total != 4 {
			t.Errorf("total steps %d", total)
		}
		if dd, ok := compare(x.Data, wantX.Data[i*n:(i+1)*n], 2e-2, 0); !ok {
			t.Errorf("step %d x: max diff %g", i, dd)
		}
		if dd, ok := compare(d.Data, cfgD.Data[i*n:(i+1)*n], 2e-2, 0); !ok {
			t.Errorf("step %d cfg denoised: max diff %g", i, dd)
		}
		return nil
	}
	sigs, _, _ = req.Sigmas(ms)
	if d, ok := compare(f32s(sigs), mustT(t, f, "sigmas").Data, 1e-5, 0); !ok {
		t.Errorf("sigmas: max diff %g", d)
	}
	out, err := Run(context.Background(), ms, g.Denoise, req)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := compare(out.Data, mustT(t, f, "samples").Data, 0.1, 0)
	if !ok {
		t.Errorf("samples: max diff %g", d)
	}
	t.Logf("end-to-end replay: samples max abs diff %g", d)
	// the ancestral noise is the seed+1 generator's stream
	an := mustT(t, f, "steps.ancestral_noise")
	gen := NewGenerator(43)
	for i := 0; i < 3; i++ {
		if dd, ok := compare(gen.Randn(1, 4, 8, 8).Data, an.Data[i*n:(i+1)*n], 0, 0); !ok {
			t.Errorf("ancestral noise %d: max diff %g", i, dd)
		}
	}
}

func f32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// constUNet returns an eps model whose output is the row's first context value everywhere, so
// denoised = x - sigma*value per row; it records the rows of each call.
type constUNet struct{ rows []int }

func (c *constUNet) call(_ context.Context, in UNetCall) (*tensor.Tensor, error) {
	c.rows = append(c.rows, in.X.Shape[0])
	out := tensor.New(in.X.Shape...)
	per := len(out.Data) / in.X.Shape[0]
	ctxPer := len(in.Context.Data) / in.Context.Shape[0]
	for r := 0; r < in.X.Shape[0]; r++ {
		for k := 0; k < per; k++ {
			out.Data[r*per+k] = in.Context.Data[r*ctxPer]
		}
	}
	return out, nil
}

func constCond(v float32, T int) *tensor.Tensor {
	c := tensor.New(1, T, 2)
	for i := range c.Data {
		c.Data[i] = v
	}
	return c
}

func TestGuiderCFGAndShortcut(t *testing.T) {
	ms := mustMS(t, "eps", false)
	x := tensor.New(2, 1, 2, 2)
	sigma := 2.0
	u := &constUNet{}
	g := &Guider{MS: ms, UNet: u.call, Positive: []Cond{{Cross: constCond(1, 77)}}, Negative: []Cond{{Cross: constCond(3, 154)}}, CFG: 2}
	d, err := g.Denoise(context.Background(), x, sigma)
	if err != nil {
		t.Fatal(err)
	}
	// cond = -2*1, uncond = -2*3; cfg: -6 + (-2 - -6)*2 = 2
	for _, v := range d.Data {
		if math.Abs(float64(v)-2) > 1e-6 {
			t.Fatalf("cfg result %v, want 2", v)
		}
	}
	if len(u.rows) != 1 || u.rows[0] != 4 {
		t.Errorf("expected one UNet call of 4 rows (77 and 154 tokens concatenate), got %v", u.rows)
	}
	u.rows = nil
	g.CFG = 1
	d, _ = g.Denoise(context.Background(), x, sigma)
	if len(u.rows) != 1 || u.rows[0] != 2 || math.Abs(float64(d.Data[0])+2) > 1e-6 {
		t.Errorf("cfg 1 should run only the positive: rows %v, value %v", u.rows, d.Data[0])
	}
	u.rows = nil
	g.CFG = 3
	g.MaxBatch = 2
	g.Denoise(context.Background(), x, sigma)
	if len(u.rows) != 2 {
		t.Errorf("MaxBatch 2 should split into two calls, got %v", u.rows)
	}
}

func TestGuiderAreaStrength(t *testing.T) {
	ms := mustMS(t, "eps", false)
	x := tensor.New(1, 1, 16, 16)
	sigma := 1.0
	u := &constUNet{}
	area := [4]int{8, 16, 8, 0} // lower half
	g := &Guider{MS: ms, UNet: u.call, CFG: 1, Positive: []Cond{
		{Cross: constCond(1, 77)},
		{Cross: constCond(5, 77), Area: &area, Strength: 2, HasStrength: true},
	}}
	d, err := g.Denoise(context.Background(), x, sigma)
	if err != nil {
		t.Fatal(err)
	}
	// rows 0..7: only the full entry (value -1). Row 8 is the area's top edge, feathered
	// with weight 2*(1/8); row 15 is at the latent border (no feather): weight 2.
	at := func(r int) float64 { return float64(d.Data[r*16+3]) }
	if math.Abs(at(0)+1) > 1e-6 {
		t.Errorf("row 0 = %v, want -1", at(0))
	}
	w := 2 * (1.0 / 8)
	if want := (-1 + -5*w) / (1 + w); math.Abs(at(8)-want) > 1e-5 {
		t.Errorf("row 8 = %v, want %v", at(8), want)
	}
	if want := (-1 + -5*2.0) / 3; math.Abs(at(15)-want) > 1e-5 {
		t.Errorf("row 15 = %v, want %v", at(15), want)
	}
	if len(u.rows) != 2 {
		t.Errorf("different input shapes must not share a call: %v", u.rows)
	}
}

func TestRunImg2ImgAndAdvanced(t *testing.T) {
	ms := mustMS(t, "eps", false)
	lat := tensor.New(1, 4, 4, 4)
	for i := range lat.Data {
		lat.Data[i] = 1
	}
	var firstX *tensor.Tensor
	req := Request{Sampler: "euler", Scheduler: "karras", Steps: 10, Denoise: 0.5, Seed: 3,
		StartStep: -1, LastStep: -1, LatentScale: 0.5, Latent: lat,
		Callback: func(i, total int, x, d *tensor.Tensor) error {
			if i == 0 {
				firstX = x.Clone()
			}
			return nil
		}}
	out, err := Run(context.Background(), ms, toyDenoiser, req)
	if err != nil {
		t.Fatal(err)
	}
	noise := PrepareNoise(lat.Shape, 3, nil)
	sig, _, _ := req.Sigmas(ms)
	want := float32(0.5) + noise.Data[0]*float32(sig[0])
	if math.Abs(float64(firstX.Data[0]-want)) > 1e-6 {
		t.Errorf("img2img start x = %v, want latent*scale + noise*sigma0 = %v", firstX.Data[0], want)
	}
	if len(out.Data) != len(lat.Data) {
		t.Fatal("shape")
	}
	// start beyond the end: latent unchanged
	req2 := Request{Sampler: "euler", Scheduler: "karras", Steps: 10, Denoise: 1, StartStep: 10, LastStep: 10000, Latent: lat, LatentScale: 0.5}
	out2, _ := Run(context.Background(), ms, toyDenoiser, req2)
	if out2.Data[0] != 1 {
		t.Errorf("start_at_step >= steps must return the latent, got %v", out2.Data[0])
	}
	// disable noise + leftover: x starts at the latent
	req3 := Request{Sampler: "euler", Scheduler: "karras", Steps: 10, Denoise: 1, StartStep: 5, LastStep: 8, DisableNoise: true, Latent: lat, LatentScale: 0.5,
		Callback: func(i, total int, x, d *tensor.Tensor) error {
			if total != 3 {
				t.Errorf("total %d, want 3", total)
			}
			if i == 0 && x.Data[0] != 0.5 {
				t.Errorf("disable_noise start x = %v, want 0.5", x.Data[0])
			}
			return nil
		}}
	if _, err := Run(context.Background(), ms, toyDenoiser, req3); err != nil {
		t.Fatal(err)
	}
}

func TestInpaintKeepsUnmasked(t *testing.T) {
	ms := mustMS(t, "eps", false)
	lat := tensor.New(1, 4, 8, 8)
	for i := range lat.Data {
		lat.Data[i] = 0.7
	}
	mask := tensor.New(1, 64, 64) // pixel-resolution mask: repaint the left half
	for y := 0; y < 64; y++ {
		for x := 0; x < 32; x++ {
			mask.Data[y*64+x] = 1
		}
	}
	req := Request{Sampler: "euler", Scheduler: "normal", Steps: 8, Denoise: 1, Seed: 1,
		StartStep: -1, LastStep: -1, LatentScale: 0.18215, Latent: lat, NoiseMask: mask}
	out, err := Run(context.Background(), ms, toyDenoiser, req)
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 8; y++ {
		if v := out.Data[y*8+7]; math.Abs(float64(v)-0.7) > 1e-4 {
			t.Fatalf("kept pixel (%d,7) = %v, want 0.7", y, v)
		}
		if v := out.Data[y*8+0]; math.Abs(float64(v)-0.7) < 1e-3 {
			t.Fatalf("repainted pixel (%d,0) unchanged", y)
		}
	}
	m, _ := PrepareMask(mask, []int{1, 4, 8, 8})
	if m.Data[3] != 1 || m.Data[4] != 0 {
		t.Errorf("prepared mask row 0 = %v", m.Data[:8])
	}
}

func TestPairAreas(t *testing.T) {
	a := [4]int{8, 8, 0, 0}
	pos := []Cond{{Cross: constCond(1, 77)}, {Cross: constCond(2, 77), Area: &a, Strength: 0.5, HasStrength: true}}
	neg := []Cond{{Cross: constCond(3, 77)}}
	p, n := PairAreas(pos, neg)
	if len(p) != 2 || len(n) != 2 {
		t.Fatalf("paired: %d pos, %d neg", len(p), len(n))
	}
	if n[1].Area == nil || *n[1].Area != a || n[1].Cross.Data[0] != 3 || n[1].Strength != 0.5 {
		t.Errorf("negative area copy = %+v", n[1])
	}
}

func TestGuiderMaskAndRange(t *testing.T) {
	ms := mustMS(t, "eps", false)
	x := tensor.New(1, 1, 4, 4)
	u := &constUNet{}
	mask := tensor.New(1, 4, 4)
	for i := 0; i < 8; i++ { // top half
		mask.Data[i] = 1
	}
	g := &Guider{MS: ms, UNet: u.call, CFG: 1, Positive: []Cond{
		{Cross: constCond(1, 77)},
		{Cross: constCond(5, 77), Mask: mask, MaskStrength: 1, Strength: 3, HasStrength: true},
		{Cross: constCond(9, 77), HasRange: true, SigmaStart: 0.5, SigmaEnd: 0.1},
	}}
	d, err := g.Denoise(context.Background(), x, 1)
	if err != nil {
		t.Fatal(err)
	}
	// sigma 1 is outside the third entry's range; top half: (-1 + -5*3)/4, bottom: -1
	if math.Abs(float64(d.Data[0])+4) > 1e-5 || math.Abs(float64(d.Data[15])+1) > 1e-5 {
		t.Errorf("mask weighting: top %v (want -4), bottom %v (want -1)", d.Data[0], d.Data[15])
	}
	d, _ = g.Denoise(context.Background(), x, 0.2)
	// in range now: bottom = (-0.2*1 + -0.2*9)/2
	if math.Abs(float64(d.Data[15])+1) > 1e-5 {
		t.Errorf("timestep range: bottom %v, want -1", d.Data[15])
	}
}
