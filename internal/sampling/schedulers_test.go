package sampling

import (
	"fmt"
	"math"
	"testing"

	"github.com/comfygo/comfygo/internal/tensor"
)

func mustMS(t testing.TB, typ string, zsnr bool) *ModelSampling {
	m, err := NewModelSampling(Config{Type: typ, ZSNR: zsnr})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func near(a, b, rel float64) bool {
	return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b))+1e-12
}

func TestTables(t *testing.T) {
	m := mustMS(t, "eps", false)
	for i, w := range map[int]float64{0: 0.029167159, 1: 0.041314412, 2: 0.050680354, 249: 0.69320488,
		499: 1.6128862, 500: 1.6182789, 749: 4.0817294, 998: 14.526276, 999: 14.614641} {
		if !near(float64(m.Sigmas[i]), w, 1e-7) {
			t.Errorf("sigmas[%d] = %.9g, want %.9g", i, m.Sigmas[i], w)
		}
	}
	if !near(float64(m.LogSigmas[0]), -3.5347118, 1e-7) || !near(float64(m.LogSigmas[999]), 2.6820238, 1e-7) {
		t.Errorf("log_sigmas ends %v %v", m.LogSigmas[0], m.LogSigmas[999])
	}
	for tt, w := range map[float64]float64{0: 0.02916716, 0.5: 0.034713455, 250.25: 0.69644785, 999.9: 14.61464, 1000: 14.61464} {
		if got := m.Sigma(tt); !near(got, w, 2e-7) {
			t.Errorf("sigma(%v) = %.9g, want %.9g", tt, got, w)
		}
	}
	for s, w := range map[float64]float64{14.6146: 999, 1.0: 354, 0.03: 0, 7.0: 866} {
		if got := m.Timestep(s); got != w {
			t.Errorf("timestep(%v) = %v, want %v", s, got, w)
		}
	}
	z := mustMS(t, "eps", true)
	for i, w := range map[int]float64{0: 0.029167159, 1: 0.042067565, 500: 1.7745575, 998: 2254.238, 999: 4518.7637} {
		if !near(float64(z.Sigmas[i]), w, 1e-7) {
			t.Errorf("zsnr sigmas[%d] = %.9g, want %.9g", i, z.Sigmas[i], w)
		}
	}
	l := mustMS(t, "lcm", false)
	for i, w := range map[int]float64{0: 0.13445067, 1: 0.19630273, 2: 0.24822044, 47: 11.54277, 48: 12.966321, 49: 14.614641} {
		if !near(float64(l.Sigmas[i]), w, 1e-7) {
			t.Errorf("lcm table[%d] = %.9g, want %.9g", i, l.Sigmas[i], w)
		}
	}
	for name, want := range map[string][2]float64{"sqrt_linear": {0.029167159, 25.146114}, "cosine": {0.0064254128, 20291.17}} {
		b, _ := Betas(name, 1000, 0.00085, 0.012)
		s := DiscreteSigmas(b, false)
		if !near(float64(float32(s[0])), want[0], 1e-6) || !near(float64(float32(s[999])), want[1], 1e-6) {
			t.Errorf("%s sigma range %v..%v, want %v", name, s[0], s[999], want)
		}
	}
}

func TestTablesGolden(t *testing.T) {
	f := openGolden(t, "samplers.safetensors")
	for _, typ := range []string{"eps", "lcm"} {
		m := mustMS(t, typ, false)
		for key, got := range map[string][]float32{"sigmas": m.Sigmas, "log_sigmas": m.LogSigmas} {
			want := mustT(t, f, "table."+typ+"."+key)
			if d, ok := compare(got, want.Data, 0, 0); !ok {
				t.Errorf("table.%s.%s: max diff %g (want bit-exact)", typ, key, d)
			}
		}
	}
}

func checkSched(t *testing.T, m *ModelSampling, name string, steps int, want []float64, rel float64) {
	t.Helper()
	got, err := Schedule(m, name, steps)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%s %d: got %d sigmas %v, want %d %v", name, steps, len(got), got, len(want), want)
		return
	}
	for i := range want {
		if !near(got[i], want[i], rel) {
			t.Errorf("%s %d [%d] = %.9g, want %.9g", name, steps, i, got[i], want[i])
		}
	}
}

func TestSchedulerVectors(t *testing.T) {
	m := mustMS(t, "eps", false)
	const r = 4e-7
	for name, want := range map[string][]float64{
		"normal":           {14.61464, 7.8398829, 4.6091743, 2.9183071, 1.9501615, 1.3449278, 0.93235797, 0.62497693, 0.36865774, 0.02916716, 0},
		"karras":           {14.614643, 9.1029291, 5.4783921, 3.1686049, 1.749418, 0.91407269, 0.44691837, 0.20139836, 0.081910297, 0.029167177, 0},
		"exponential":      {14.61464, 7.3248692, 3.6712303, 1.8400236, 0.9222213, 0.46221828, 0.23166418, 0.11611027, 0.058194563, 0.02916716, 0},
		"sgm_uniform":      {14.61464, 8.3071709, 5.0924082, 3.325069, 2.2797306, 1.6155803, 1.1628646, 0.83188373, 0.57118887, 0.34370482, 0},
		"simple":           {14.614641, 8.302803, 5.0877633, 3.3210831, 2.276463, 1.6128862, 1.1605784, 0.82985955, 0.56928492, 0.34167382, 0},
		"ddim_uniform":     {8.3906851, 5.1344309, 3.3477635, 2.2928538, 1.623692, 1.168216, 0.83565283, 0.57405025, 0.3461867, 0.041314412, 0},
		"beta":             {14.614641, 11.54277, 7.3718443, 4.3728018, 2.6152358, 1.6182789, 1.0273293, 0.65488535, 0.39550969, 0.19905862, 0},
		"linear_quadratic": {14.614641, 14.541568, 14.468495, 14.395422, 14.322349, 14.249275, 13.620845, 11.881703, 9.031848, 5.0712805, 0},
		"kl_optimal":       {14.614633, 4.2323503, 2.393719, 1.5970658, 1.1329968, 0.8152445, 0.57291424, 0.37248418, 0.19528833, 0.029167159, 0},
	} {
		checkSched(t, m, name, 10, want, r)
	}
	checkSched(t, m, "normal", 1, []float64{14.61464, 0}, r)
	checkSched(t, m, "karras", 1, []float64{14.614643, 0}, r)
	checkSched(t, m, "simple", 3, []float64{14.614641, 2.9183071, 0.93235797, 0}, r)
	checkSched(t, m, "beta", 3, []float64{14.614641, 3.6757534, 0.7624023, 0}, r)
	checkSched(t, m, "ddim_uniform", 3, []float64{2.9295487, 0.9355098, 0.041314412, 0}, r)
	z := mustMS(t, "eps", true)
	zk, _ := Schedule(z, "karras", 10)
	if !near(zk[0], 4518.7627, 1e-6) || !near(zk[1], 2317.9412, 1e-6) {
		t.Errorf("zsnr karras starts %v", zk[:2])
	}
	zn, _ := Schedule(z, "normal", 10)
	if !near(zn[0], 4518.7637, 1e-6) || !near(zn[1], 15.960121, 1e-6) || !near(zn[2], 6.4033265, 1e-6) || !near(zn[9], 0.02916716, 1e-6) || zn[10] != 0 {
		t.Errorf("zsnr normal = %v", zn)
	}
	l := mustMS(t, "lcm", false)
	for name, want := range map[string][]float64{
		"normal":       {14.61464, 2.9910562, 0.97282594, 0.13445066, 0},
		"sgm_uniform":  {14.61464, 4.1707721, 1.6679019, 0.73251832, 0},
		"simple":       {14.614641, 4.2605567, 1.6128862, 0.7193796, 0},
		"karras":       {14.614643, 4.2155051, 0.92864388, 0.13445075, 0},
		"exponential":  {14.61464, 3.0622907, 0.6416595, 0.13445066, 0},
		"ddim_uniform": {14.614641, 4.2605567, 1.724794, 0.77339184, 0.19630273, 0},
		"beta":         {14.614641, 5.5806446, 1.724794, 0.56928492, 0},
	} {
		checkSched(t, l, name, 4, want, r)
	}
	checkSched(t, l, "normal", 8, []float64{14.61464, 6.768383, 3.6009886, 2.1203654, 1.323061, 0.82985955, 0.47645438, 0.13445066, 0}, r)
	checkSched(t, l, "sgm_uniform", 8, []float64{14.61464, 7.3917942, 4.1707721, 2.5628576, 1.6679019, 1.1138554, 0.73251832, 0.43672478, 0}, r)
	for name, want := range map[string][]float64{"normal": {999, 679, 339, 19}, "sgm_uniform": {999, 759, 519, 259}, "simple": {999, 759, 499, 259}} {
		s, _ := Schedule(l, name, 4)
		for i, w := range want {
			if got := l.Timestep(s[i]); got != w {
				t.Errorf("lcm %s timestep[%d] = %v, want %v", name, i, got, w)
			}
		}
	}
}

func TestBetaTimesteps(t *testing.T) {
	for steps, want := range map[int][]int{
		4:  {999, 823, 500, 176},
		8:  {999, 942, 823, 670, 500, 329, 176, 57},
		10: {999, 959, 876, 765, 637, 500, 362, 234, 123, 40},
		20: {999, 986, 959, 922, 876, 823, 765, 703, 637, 569, 500, 430, 362, 296, 234, 176, 123, 77, 40, 13},
	} {
		for k, w := range want {
			u := 1 - float64(k)/float64(steps)
			if got := int(math.RoundToEven(betaPPF(u, 0.6, 0.6) * 999)); got != w {
				t.Errorf("beta %d steps t[%d] = %d, want %d", steps, k, got, w)
			}
		}
	}
	l := mustMS(t, "lcm", false)
	s, _ := Schedule(l, "beta", 8)
	for k, w := range []int{49, 46, 40, 33, 25, 16, 9, 3} {
		if float32(s[k]) != l.Sigmas[w] {
			t.Errorf("lcm beta 8 [%d] = %v, want table[%d]", k, s[k], w)
		}
	}
}

func TestSchedulesGolden(t *testing.T) {
	f := openGolden(t, "samplers.safetensors")
	for _, typ := range []string{"eps", "lcm"} {
		m := mustMS(t, typ, false)
		for _, sch := range []string{"sgm_uniform", "normal", "karras", "simple"} {
			for _, steps := range []int{4, 8} {
				key := fmt.Sprintf("sigmas.%s.%s.%d", typ, sch, steps)
				want := mustT(t, f, key)
				got, err := KSamplerSigmas(m, sch, "euler", steps, 1)
				if err != nil {
					t.Fatal(err)
				}
				g32 := make([]float32, len(got))
				for i, v := range got {
					g32[i] = float32(v)
				}
				if d, ok := compare(g32, want.Data, 1e-5, 1e-6); !ok {
					t.Errorf("%s: max diff %g: got %v want %v", key, d, g32, want.Data)
				}
				ts := mustT(t, f, key+".timesteps")
				for i, w := range ts.Data {
					if g := m.Timestep(got[i]); float32(g) != w {
						t.Errorf("%s timestep[%d] = %v, want %v", key, i, g, w)
					}
				}
			}
		}
	}
}

func TestKSamplerSigmasDenoiseAndAdvanced(t *testing.T) {
	m := mustMS(t, "eps", false)
	got, _ := KSamplerSigmas(m, "karras", "euler", 10, 0.5)
	want := []float64{1.0907861, 0.79094607, 0.56472158, 0.39638984, 0.27303797, 0.184168, 0.12134143, 0.077860065, 0.048481371, 0.029167177, 0}
	if len(got) != len(want) {
		t.Fatalf("denoise 0.5: %v", got)
	}
	for i := range want {
		if !near(got[i], want[i], 4e-7) {
			t.Errorf("denoise 0.5 [%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if s, _ := KSamplerSigmas(m, "karras", "euler", 10, 0); len(s) != 0 {
		t.Errorf("denoise 0 gave %v", s)
	}
	full, _ := Schedule(m, "karras", 11)
	dp, _ := KSamplerSigmas(m, "karras", "dpm_2", 10, 1)
	if len(dp) != 11 || dp[9] != full[9] || dp[10] != 0 || dp[8] != full[8] {
		t.Errorf("dpm_2 discard penultimate: %v vs %v", dp, full)
	}
	s, _ := KSamplerSigmas(m, "karras", "euler", 10, 1)
	tr, ok := TruncateSigmas(s, 2, 6, true)
	if !ok || len(tr) != 5 || tr[0] != s[2] || tr[4] != 0 || tr[3] != s[5] {
		t.Errorf("truncate 2..6 full denoise = %v (from %v)", tr, s)
	}
	tr, ok = TruncateSigmas(s, 2, 6, false)
	if !ok || tr[4] != s[6] {
		t.Errorf("truncate leftover noise = %v", tr)
	}
	if _, ok := TruncateSigmas(s, 10, 10000, true); ok {
		t.Errorf("start 10 of 10 steps should leave nothing")
	}
}

func TestParameterizations(t *testing.T) {
	x := []float32{2}
	F := []float32{0.5}
	sigma := 3.0
	for typ, want := range map[string]float64{
		"eps":          2 - 0.5*3,
		"v_prediction": 2/(9+1.0) - 0.5*3/math.Sqrt(10),
		"x0":           0.5,
		"img_to_img":   0.5,
	} {
		m := mustMS(t, typ, false)
		d := m.Denoised(tensorOf(x), tensorOf(F), []float64{sigma})
		if math.Abs(float64(d.Data[0])-want) > 1e-6 {
			t.Errorf("%s denoised = %v, want %v", typ, d.Data[0], want)
		}
	}
	if c := mustMS(t, "img_to_img", false).CIn(3); c != 1 {
		t.Errorf("img_to_img c_in = %v", c)
	}
	// LCM boundary condition at t = 19: c_skip 6.9251598e-06, c_out 0.99999654
	l := mustMS(t, "lcm", false)
	s := float64(l.Sigmas[0]) // timestep 19
	d := l.Denoised(tensorOf([]float32{1}), tensorOf([]float32{0}), []float64{s})
	if want := 0.99999654 + 6.9251598e-06; math.Abs(float64(d.Data[0])-want) > 2e-7 {
		t.Errorf("lcm D at t=19 = %.9g, want %.9g", d.Data[0], want)
	}
	if l.Timestep(s) != 19 || l.Timestep(l.SigmaMax()) != 999 {
		t.Errorf("lcm timesteps %v %v", l.Timestep(s), l.Timestep(l.SigmaMax()))
	}
	if p := mustMS(t, "eps", false).PercentToSigma(0); p != 999999999.9 {
		t.Errorf("percent_to_sigma(0) = %v", p)
	}
	// max-denoise start: noise * sqrt(1 + sigma_max^2) = 14.648814 for unit noise
	m := mustMS(t, "eps", false)
	x0 := m.NoiseScaling(m.SigmaMax(), tensorOf([]float32{1}), nil, m.IsMaxDenoise(m.SigmaMax()))
	if math.Abs(float64(x0.Data[0])-14.648814) > 1e-5 {
		t.Errorf("full-denoise start %v, want 14.648814", x0.Data[0])
	}
}

func tensorOf(v []float32) *tensor.Tensor {
	return tensor.FromData(append([]float32(nil), v...), len(v), 1)
}
