package sampling

import (
	"fmt"
	"math"
)

// SchedulerNames is ComfyUI's scheduler combo, in order (the UI default is the first).
var SchedulerNames = []string{"simple", "sgm_uniform", "karras", "exponential", "ddim_uniform",
	"beta", "normal", "linear_quadratic", "kl_optimal"}

// Schedule returns the descending sigma schedule of scheduler name for steps steps on model
// sampling m (float32-rounded values, usually ending in 0).
func Schedule(m *ModelSampling, name string, steps int) ([]float64, error) {
	if steps < 1 {
		return nil, nil
	}
	smin, smax := m.SigmaMin(), m.SigmaMax()
	var out []float64
	switch name {
	case "normal":
		out = normalSchedule(m, steps, false)
	case "sgm_uniform":
		out = normalSchedule(m, steps, true)
	case "simple":
		n := len(m.Sigmas)
		q := float64(n) / float64(steps)
		for x := 0; x < steps; x++ {
			out = append(out, float64(m.Sigmas[n-1-int(float64(x)*q)]))
		}
		out = append(out, 0)
	case "ddim_uniform":
		n := len(m.Sigmas)
		st := steps
		var sigs []float64
		if math.Abs(float64(m.Sigmas[1])) <= 1e-5 {
			st++
		} else {
			sigs = []float64{0}
		}
		q := n / st
		if q < 1 {
			q = 1
		}
		for x := 1; x < n; x += q {
			sigs = append(sigs, float64(m.Sigmas[x]))
		}
		for i, j := 0, len(sigs)-1; i < j; i, j = i+1, j-1 {
			sigs[i], sigs[j] = sigs[j], sigs[i]
		}
		out = sigs
	case "karras":
		// float32 tensor arithmetic with Python-double scalars cast to float32, as k-diffusion.
		ramp := linspace32(0, 1, steps)
		lo, hi := math.Pow(smin, 1/7.0), math.Pow(smax, 1/7.0)
		diff, hi32 := float32(lo-hi), float32(hi)
		for _, r := range ramp {
			v := hi32 + r*diff
			out = append(out, f32(math.Pow(float64(v), 7)))
		}
		out = append(out, 0)
	case "exponential":
		for _, v := range linspace32(math.Log(smax), math.Log(smin), steps) {
			out = append(out, f32(math.Exp(float64(v))))
		}
		out = append(out, 0)
	case "beta":
		out = betaSchedule(m, steps, 0.6, 0.6)
	case "linear_quadratic":
		out = linearQuadratic(steps, 0.025, smax)
	case "kl_optimal":
		for k := 0; k < steps; k++ {
			a := float32(k) / float32(steps-1)
			v := a*float32(math.Atan(smin)) + (1-a)*float32(math.Atan(smax))
			out = append(out, f32(math.Tan(float64(v))))
		}
		out = append(out, 0)
	default:
		return nil, fmt.Errorf("unknown scheduler %q", name)
	}
	return out, nil
}

func f32(v float64) float64 { return float64(float32(v)) }

// linspace32 is torch.linspace in float32 as ATen's CPU kernel computes it (GCC fuses the
// scalar lambda's multiply-adds, not arange's): blocks of 16 through two 8-wide Vectorized::arange calls, the rest scalar.
func linspace32(a, b float64, n int) []float32 {
	out := make([]float32, n)
	if n == 1 {
		out[0] = float32(a)
		return out
	}
	s, e := float32(a), float32(b)
	step := (e - s) / float32(n-1)
	half := n / 2
	base := func(idx int) float32 {
		if idx < half {
			return fma32(step, float32(idx), s)
		}
		return fma32(-step, float32(n-1-idx), e)
	}
	i := 0
	for ; i < n/16*16; i += 8 {
		b0 := base(i)
		out[i] = b0
		for k := 1; k < 8; k++ {
			out[i+k] = b0 + float32(float32(k)*step) // not fused here

		}
	}
	for ; i < n; i++ {
		out[i] = base(i)
	}
	return out
}

func normalSchedule(m *ModelSampling, steps int, sgm bool) []float64 {
	start := m.Timestep(m.SigmaMax())
	end := m.Timestep(m.SigmaMin())
	appendZero := true
	var ts []float32
	if sgm {
		ts = linspace32(start, end, steps+1)[:steps]
	} else {
		if math.Abs(m.Sigma(end)) <= 1e-5 {
			steps++
			appendZero = false
		}
		ts = linspace32(start, end, steps)
	}
	out := make([]float64, 0, len(ts)+1)
	for _, t := range ts {
		out = append(out, m.Sigma(float64(t)))
	}
	if appendZero {
		out = append(out, 0)
	}
	return out
}

func linearQuadratic(steps int, threshold, smax float64) []float64 {
	var v []float64
	if steps == 1 {
		v = []float64{1, 0}
	} else {
		L := steps / 2
		for i := 0; i < L; i++ {
			v = append(v, float64(i)*threshold/float64(L))
		}
		d := float64(L) - threshold*float64(steps)
		Q := steps - L
		qc := d / (float64(L) * float64(Q*Q))
		lc := threshold/float64(L) - 2*d/float64(Q*Q)
		c0 := qc * float64(L*L)
		for i := L; i < steps; i++ {
			fi := float64(i)
			v = append(v, qc*fi*fi+lc*fi+c0)
		}
		v = append(v, 1)
		for i := range v {
			v[i] = 1 - v[i]
		}
	}
	out := make([]float64, len(v))
	sm := float32(smax)
	for i, x := range v {
		out[i] = float64(float32(x) * sm)
	}
	return out
}

func betaSchedule(m *ModelSampling, steps int, a, b float64) []float64 {
	M := float64(len(m.Sigmas) - 1)
	var out []float64
	last := -1.0
	for k := 0; k < steps; k++ {
		u := 1 - float64(k)/float64(steps)
		t := math.RoundToEven(betaPPF(u, a, b) * M)
		if t != last {
			out = append(out, float64(m.Sigmas[int(t)]))
		}
		last = t
	}
	return append(out, 0)
}

// betaPPF is the inverse of the regularized incomplete beta function I_x(a, b).
func betaPPF(u, a, b float64) float64 {
	if u <= 0 {
		return 0
	}
	if u >= 1 {
		return 1
	}
	if a == b && u == 0.5 {
		// scipy's beta.ppf(0.5, a, a) returns 0.5000000000000001, so 24.5 rounds up to 25.
		return math.Nextafter(0.5, 1)
	}
	lo, hi := 0.0, 1.0
	for i := 0; i < 200 && hi-lo > 1e-16; i++ {
		mid := (lo + hi) / 2
		if incBeta(mid, a, b) < u {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// incBeta is the regularized incomplete beta function I_x(a, b) (continued fraction).
func incBeta(x, a, b float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	front := math.Exp(lab - la - lb + a*math.Log(x) + b*math.Log(1-x))
	if x > (a+1)/(a+b+2) {
		return 1 - incBeta(1-x, b, a)
	}
	// Lentz's algorithm for the continued fraction.
	const tiny = 1e-300
	f, c, d := 1.0, 1.0, 0.0
	for i := 0; i <= 400; i++ {
		m := float64(i / 2)
		var num float64
		switch {
		case i == 0:
			num = 1
		case i%2 == 0:
			num = m * (b - m) * x / ((a + 2*m - 1) * (a + 2*m))
		default:
			num = -((a + m) * (a + b + m) * x) / ((a + 2*m) * (a + 2*m + 1))
		}
		d = 1 + num*d
		if math.Abs(d) < tiny {
			d = tiny
		}
		d = 1 / d
		c = 1 + num/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		cd := c * d
		f *= cd
		if math.Abs(1-cd) < 1e-16 {
			return front * (f - 1) / a
		}
	}
	return front * (f - 1) / a
}

// discardPenultimate lists the samplers KSampler gives steps+1 sigmas minus the penultimate.
var discardPenultimate = map[string]bool{"dpm_2": true, "dpm_2_ancestral": true, "uni_pc": true, "uni_pc_bh2": true}

// KSamplerSigmas is ComfyUI's KSampler sigma preparation: the schedule for (scheduler, steps,
// sampler) with denoise < 1 truncation (4.3). denoise <= 0 gives an empty schedule.
func KSamplerSigmas(m *ModelSampling, scheduler, sampler string, steps int, denoise float64) ([]float64, error) {
	calc := func(n int) ([]float64, error) {
		if discardPenultimate[sampler] {
			s, err := Schedule(m, scheduler, n+1)
			if err != nil || len(s) < 2 {
				return s, err
			}
			return append(append([]float64(nil), s[:len(s)-2]...), s[len(s)-1]), nil
		}
		return Schedule(m, scheduler, n)
	}
	if denoise > 0.9999 {
		return calc(steps)
	}
	if denoise <= 0 {
		return nil, nil
	}
	n := int(float64(steps) / denoise)
	s, err := calc(n)
	if err != nil {
		return nil, err
	}
	if len(s) > steps+1 {
		s = s[len(s)-(steps+1):]
	}
	return s, nil
}

// TruncateSigmas applies KSamplerAdvanced's start/last step. ok is false when nothing is left to
// sample (the latent is returned unchanged).
func TruncateSigmas(s []float64, startStep, lastStep int, forceFullDenoise bool) (out []float64, ok bool) {
	out = append([]float64(nil), s...)
	if lastStep >= 0 && lastStep < len(out)-1 {
		out = out[:lastStep+1]
		if forceFullDenoise {
			out[len(out)-1] = 0
		}
	}
	if startStep > 0 {
		if startStep < len(out)-1 {
			out = out[startStep:]
		} else {
			return nil, false
		}
	}
	if len(out) < 2 {
		return out, false
	}
	return out, true
}
