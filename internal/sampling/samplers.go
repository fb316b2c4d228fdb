package sampling

import (
	"context"
	"fmt"
	"math"

	"github.com/comfygo/comfygo/internal/tensor"
)

// Denoiser is one "model + CFG" evaluation: the denoised prediction D(x, sigma) for the whole
// batch x at noise level sigma.
type Denoiser func(ctx context.Context, x *tensor.Tensor, sigma float64) (*tensor.Tensor, error)

// Options are the per-call settings of a sampler.
type Options struct {
	// Seed is the KSampler seed: ancestral noise comes from a CPU generator seeded Seed+1,
	// Brownian-tree noise uses Seed as entropy.
	Seed uint64
	// Callback, if set, is called once per step with the step index, the current x and the
	// step's denoised estimate (k-diffusion's callback). An error aborts sampling.
	Callback func(step int, x, denoised *tensor.Tensor) error
	// Noise overrides the per-step noise source (nil: ComfyUI's CPU default for the sampler).
	Noise func(sigma, sigmaNext float64) *tensor.Tensor
	// Uncond returns the uncond denoised prediction of the latest model call; the *_cfg_pp
	// samplers need it (see Request.Guider).
	Uncond func() *tensor.Tensor
	// MS is the model sampling (sa_solver's stochastic interval uses percent_to_sigma).
	MS *ModelSampling
}

// SamplerFunc runs a sampler from x at sigmas[0] down to sigmas[len-1].
type SamplerFunc func(ctx context.Context, model Denoiser, x *tensor.Tensor, sigmas []float64, opt Options) (*tensor.Tensor, error)

// SamplerNames is ComfyUI's sampler combo list, in order (the UI default is the first).
var SamplerNames = []string{"euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp",
	"heun", "heunpp2", "exp_heun_2_x0", "exp_heun_2_x0_sde", "dpm_2", "dpm_2_ancestral", "lms",
	"dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde",
	"dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
	"dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm", "lcm",
	"ipndm", "ipndm_v", "deis", "res_multistep", "res_multistep_cfg_pp", "res_multistep_ancestral",
	"res_multistep_ancestral_cfg_pp", "gradient_estimation", "gradient_estimation_cfg_pp", "er_sde",
	"seeds_2", "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc", "uni_pc_bh2"}

var samplers = map[string]SamplerFunc{
	"euler":                          sampleEuler,
	"ddim":                           sampleEuler,
	"euler_ancestral":                sampleEulerAncestral,
	"heun":                           sampleHeun,
	"dpm_2":                          sampleDPM2,
	"dpm_2_ancestral":                sampleDPM2Ancestral,
	"lms":                            sampleLMS,
	"dpmpp_2s_ancestral":             sampleDPMPP2SAncestral,
	"dpmpp_sde":                      sampleDPMPPSDE,
	"dpmpp_sde_gpu":                  sampleDPMPPSDE,
	"dpmpp_2m":                       sampleDPMPP2M,
	"dpmpp_2m_sde":                   sampleDPMPP2MSDE(false),
	"dpmpp_2m_sde_gpu":               sampleDPMPP2MSDE(false),
	"dpmpp_2m_sde_heun":              sampleDPMPP2MSDE(true),
	"dpmpp_2m_sde_heun_gpu":          sampleDPMPP2MSDE(true),
	"dpmpp_3m_sde":                   sampleDPMPP3MSDE,
	"dpmpp_3m_sde_gpu":               sampleDPMPP3MSDE,
	"ddpm":                           sampleDDPM,
	"lcm":                            sampleLCM,
	"uni_pc":                         sampleUniPC(false),
	"uni_pc_bh2":                     sampleUniPC(true),
	"heunpp2":                        sampleHeunPP2,
	"ipndm":                          sampleIPNDM,
	"ipndm_v":                        sampleIPNDMV,
	"euler_cfg_pp":                   sampleEulerAncestralCFGPP(0),
	"euler_ancestral_cfg_pp":         sampleEulerAncestralCFGPP(1),
	"dpmpp_2m_cfg_pp":                sampleDPMPP2MCFGPP,
	"dpmpp_2s_ancestral_cfg_pp":      sampleDPMPP2SAncestralCFGPP,
	"res_multistep":                  sampleResMultistep(0, false),
	"res_multistep_cfg_pp":           sampleResMultistep(0, true),
	"res_multistep_ancestral":        sampleResMultistep(1, false),
	"res_multistep_ancestral_cfg_pp": sampleResMultistep(1, true),
	"gradient_estimation":            sampleGradientEstimation(false),
	"gradient_estimation_cfg_pp":     sampleGradientEstimation(true),
	"er_sde":                         sampleERSDE,
	"seeds_2":                        sampleSEEDS2(1, 1, 0.5, false),
	"seeds_3":                        sampleSEEDS3,
	"deis":                           sampleDEIS,
	"dpm_fast":                       sampleDPMFast,
	"dpm_adaptive":                   sampleDPMAdaptive,
	"sa_solver":                      sampleSASolver(false),
	"sa_solver_pece":                 sampleSASolver(true),
	"exp_heun_2_x0":                  sampleSEEDS2(0, 0, 1, true),
	"exp_heun_2_x0_sde":              sampleSEEDS2(1, 1, 1, true),
}

// needsUncond lists the samplers that read the uncond prediction (CFG++ variants).
var needsUncond = map[string]bool{"euler_cfg_pp": true, "euler_ancestral_cfg_pp": true,
	"dpmpp_2m_cfg_pp": true, "dpmpp_2s_ancestral_cfg_pp": true, "res_multistep_cfg_pp": true,
	"res_multistep_ancestral_cfg_pp": true, "gradient_estimation_cfg_pp": true}

// Sampler returns the sampler named name. ComfyUI samplers comfygo does not implement are
// reported as errors rather than substituted.
func Sampler(name string) (SamplerFunc, error) {
	if f, ok := samplers[name]; ok {
		return f, nil
	}
	for _, n := range SamplerNames {
		if n == name {
			return nil, fmt.Errorf("sampler %q is not implemented in comfygo", name)
		}
	}
	return nil, fmt.Errorf("unknown sampler %q", name)
}

// Implemented reports whether sampler name is available.
func Implemented(name string) bool { _, ok := samplers[name]; return ok }

// Sample runs sampler name.
func Sample(ctx context.Context, name string, model Denoiser, x *tensor.Tensor, sigmas []float64, opt Options) (*tensor.Tensor, error) {
	f, err := Sampler(name)
	if err != nil {
		return nil, err
	}
	if len(sigmas) < 2 {
		return x.Clone(), nil
	}
	return f(ctx, model, x, sigmas, opt)
}

// ---- helpers ------------------------------------------------------------------------------

// ancestralNoise returns the default noise sampler: successive randn draws of x's shape from a
// CPU generator seeded seed+1.
func ancestralNoise(x *tensor.Tensor, opt Options) func(float64, float64) *tensor.Tensor {
	if opt.Noise != nil {
		return opt.Noise
	}
	g := NewGenerator(opt.Seed + 1)
	return func(float64, float64) *tensor.Tensor { return g.Randn(x.Shape...) }
}

// brownianNoise returns the Brownian-tree noise sampler over the positive sigmas.
func brownianNoise(x *tensor.Tensor, sigmas []float64, opt Options) func(float64, float64) *tensor.Tensor {
	if opt.Noise != nil {
		return opt.Noise
	}
	smin, smax := math.Inf(1), 0.0
	for _, s := range sigmas {
		if s > 0 && s < smin {
			smin = s
		}
		if s > smax {
			smax = s
		}
	}
	bn := NewBrownianNoise(x.Shape, smin, smax, opt.Seed)
	return bn.Noise
}

// step evaluates the denoiser at sigma and reports step i (x, denoised) to the callback.
func step(ctx context.Context, model Denoiser, opt Options, i int, x *tensor.Tensor, sigma float64) (*tensor.Tensor, error) {
	den, err := model(ctx, x, sigma)
	if err != nil {
		return nil, err
	}
	if err := callback(opt, i, x, den); err != nil {
		return nil, err
	}
	return den, nil
}

func callback(opt Options, i int, x, d *tensor.Tensor) error {
	if opt.Callback != nil {
		return opt.Callback(i, x, d)
	}
	return nil
}

// comb returns sum_k c_k * t_k elementwise (float64 accumulation, float32 result).
func comb(terms ...any) *tensor.Tensor {
	var ref *tensor.Tensor
	for i := 1; i < len(terms); i += 2 {
		ref = terms[i].(*tensor.Tensor)
		break
	}
	out := tensor.New(ref.Shape...)
	type term struct {
		c float64
		d []float32
	}
	ts := make([]term, 0, len(terms)/2)
	for i := 0; i+1 < len(terms); i += 2 {
		ts = append(ts, term{terms[i].(float64), terms[i+1].(*tensor.Tensor).Data})
	}
	for j := range out.Data {
		s := 0.0
		for _, t := range ts {
			s += t.c * float64(t.d[j])
		}
		out.Data[j] = float32(s)
	}
	return out
}

// toD is (x - denoised)/sigma.
func toD(x, den *tensor.Tensor, sigma float64) *tensor.Tensor {
	return comb(1/sigma, x, -1/sigma, den)
}

// ancestralStep is get_ancestral_step (eta 1): (sigma_down, sigma_up).
func ancestralStep(from, to, eta float64) (float64, float64) {
	if eta == 0 {
		return to, 0
	}
	up := math.Min(to, eta*math.Sqrt(to*to*(from*from-to*to)/(from*from)))
	down := math.Sqrt(to*to - up*up)
	return f32(down), f32(up)
}

// ---- samplers -----------------------------------------------------------------------------

func sampleEuler(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		d := toD(x, den, s[i])
		x = comb(1.0, x, f32(s[i+1]-s[i]), d)
	}
	return x, nil
}

func sampleEulerAncestral(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	noise := ancestralNoise(x, opt)
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		down, up := ancestralStep(s[i], s[i+1], 1)
		if down == 0 {
			x = den
			continue
		}
		d := toD(x, den, s[i])
		x = comb(1.0, x, f32(down-s[i]), d, up, noise(s[i], s[i+1]))
	}
	return x, nil
}

func sampleHeun(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		d := toD(x, den, s[i])
		dt := f32(s[i+1] - s[i])
		if s[i+1] == 0 {
			x = comb(1.0, x, dt, d)
			continue
		}
		x2 := comb(1.0, x, dt, d)
		den2, err := model(ctx, x2, s[i+1])
		if err != nil {
			return nil, err
		}
		d2 := toD(x2, den2, s[i+1])
		x = comb(1.0, x, dt/2, d, dt/2, d2)
	}
	return x, nil
}

func sampleDPM2(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		d := toD(x, den, s[i])
		if s[i+1] == 0 {
			x = comb(1.0, x, f32(s[i+1]-s[i]), d)
			continue
		}
		mid := f32(math.Exp((math.Log(s[i]) + math.Log(s[i+1])) / 2))
		x2 := comb(1.0, x, f32(mid-s[i]), d)
		den2, err := model(ctx, x2, mid)
		if err != nil {
			return nil, err
		}
		d2 := toD(x2, den2, mid)
		x = comb(1.0, x, f32(s[i+1]-s[i]), d2)
	}
	return x, nil
}

func sampleDPM2Ancestral(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	noise := ancestralNoise(x, opt)
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		down, up := ancestralStep(s[i], s[i+1], 1)
		d := toD(x, den, s[i])
		if down == 0 {
			x = comb(1.0, x, f32(down-s[i]), d)
			continue
		}
		mid := f32(math.Exp((math.Log(s[i]) + math.Log(down)) / 2))
		x2 := comb(1.0, x, f32(mid-s[i]), d)
		den2, err := model(ctx, x2, mid)
		if err != nil {
			return nil, err
		}
		d2 := toD(x2, den2, mid)
		x = comb(1.0, x, f32(down-s[i]), d2, up, noise(s[i], s[i+1]))
	}
	return x, nil
}

// lmsCoeff integrates the Lagrange basis polynomial j over [s[i], s[i+1]] exactly (Gauss-Legendre).
func lmsCoeff(order int, s []float64, i, j int) float64 {
	f := func(tau float64) float64 {
		p := 1.0
		for k := 0; k < order; k++ {
			if k == j {
				continue
			}
			p *= (tau - s[i-k]) / (s[i-j] - s[i-k])
		}
		return p
	}
	// 4-point Gauss-Legendre is exact for polynomials up to degree 7.
	xs := []float64{-0.8611363115940526, -0.3399810435848563, 0.3399810435848563, 0.8611363115940526}
	ws := []float64{0.3478548451374538, 0.6521451548625461, 0.6521451548625461, 0.3478548451374538}
	a, b := s[i], s[i+1]
	sum := 0.0
	for k := range xs {
		sum += ws[k] * f((b-a)/2*xs[k]+(a+b)/2)
	}
	return sum * (b - a) / 2
}

func sampleLMS(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	const order = 4
	var ds []*tensor.Tensor
	for i := 0; i < len(s)-1; i++ {
		den, err := model(ctx, x, s[i])
		if err != nil {
			return nil, err
		}
		ds = append(ds, toD(x, den, s[i]))
		if len(ds) > order {
			ds = ds[1:]
		}
		if err := callback(opt, i, x, den); err != nil {
			return nil, err
		}
		if s[i+1] == 0 {
			x = den
			continue
		}
		cur := min(i+1, order)
		terms := []any{1.0, x}
		for j := 0; j < cur; j++ {
			terms = append(terms, f32(lmsCoeff(cur, s, i, j)), ds[len(ds)-1-j])
		}
		x = comb(terms...)
	}
	return x, nil
}

func sampleDPMPP2SAncestral(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	noise := ancestralNoise(x, opt)
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		down, up := ancestralStep(s[i], s[i+1], 1)
		if down == 0 {
			d := toD(x, den, s[i])
			x = comb(1.0, x, f32(down-s[i]), d)
		} else {
			t, tn := -math.Log(s[i]), -math.Log(down)
			h := tn - t
			sm := f32(math.Exp(-(t + h/2)))
			x2 := comb(sm/s[i], x, -math.Expm1(-h/2), den)
			den2, err := model(ctx, x2, sm)
			if err != nil {
				return nil, err
			}
			x = comb(down/s[i], x, -math.Expm1(-h), den2)
		}
		if s[i+1] > 0 {
			x = comb(1.0, x, up, noise(s[i], s[i+1]))
		}
	}
	return x, nil
}

func sampleDPMPPSDE(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	noise := brownianNoise(x, s, opt)
	const r = 0.5
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		if s[i+1] == 0 {
			x = den
			continue
		}
		ls, lt := -math.Log(s[i]), -math.Log(s[i+1])
		h := lt - ls
		ls1 := ls + r*h
		sm := f32(math.Exp(-ls1))
		// step 1 (alpha = 1 for discrete models, so the alpha ratios drop out)
		sd, su := ancestralStep(s[i], sm, 1)
		hh := -math.Log(sd) - ls
		x2 := comb(math.Exp(-hh), x, -math.Expm1(-hh), den, su, noise(s[i], sm))
		den2, err := model(ctx, x2, sm)
		if err != nil {
			return nil, err
		}
		// step 2
		sd, su = ancestralStep(s[i], s[i+1], 1)
		hh = -math.Log(sd) - ls
		fac := 1 / (2 * r)
		x = comb(math.Exp(-hh), x, -math.Expm1(-hh)*(1-fac), den, -math.Expm1(-hh)*fac, den2)
		x = comb(1.0, x, su, noise(s[i], s[i+1]))
	}
	return x, nil
}

func sampleDPMPP2M(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	var old *tensor.Tensor
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		switch {
		case s[i+1] == 0:
			x = den
		case old == nil:
			h := math.Log(s[i]) - math.Log(s[i+1])
			x = comb(s[i+1]/s[i], x, -math.Expm1(-h), den)
		default:
			h := math.Log(s[i]) - math.Log(s[i+1])
			hLast := math.Log(s[i-1]) - math.Log(s[i])
			rr := hLast / h
			c := -math.Expm1(-h)
			x = comb(s[i+1]/s[i], x, c*(1+1/(2*rr)), den, -c/(2*rr), old)
		}
		old = den
	}
	return x, nil
}

func sampleDPMPP2MSDE(heun bool) SamplerFunc {
	return func(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
		noise := brownianNoise(x, s, opt)
		const eta = 1.0
		var old *tensor.Tensor
		var h, hLast float64
		for i := 0; i < len(s)-1; i++ {
			den, err := step(ctx, model, opt, i, x, s[i])
			if err != nil {
				return nil, err
			}
			if s[i+1] == 0 {
				x = den
			} else {
				h = math.Log(s[i]) - math.Log(s[i+1])
				he := h * (eta + 1)
				c := -math.Expm1(-he)
				terms := []any{s[i+1] / s[i] * math.Exp(-h*eta), x, c, den}
				if old != nil {
					rr := hLast / h
					var k float64
					if heun {
						k = (c/(-he) + 1) * (1 / rr)
					} else {
						k = 0.5 * c * (1 / rr)
					}
					terms = append(terms, k, den, -k, old)
				}
				terms = append(terms, s[i+1]*math.Sqrt(-math.Expm1(-2*h*eta)), noise(s[i], s[i+1]))
				x = comb(terms...)
			}
			old = den
			hLast = h
		}
		return x, nil
	}
}

func sampleDPMPP3MSDE(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	noise := brownianNoise(x, s, opt)
	const eta = 1.0
	var d1, d2 *tensor.Tensor
	var h, h1, h2 float64
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		if s[i+1] == 0 {
			x = den
		} else {
			h = math.Log(s[i]) - math.Log(s[i+1])
			he := h * (eta + 1)
			terms := []any{s[i+1] / s[i] * math.Exp(-h*eta), x, -math.Expm1(-he), den}
			phi2 := math.Expm1(-he)/he + 1
			switch {
			case i >= 2:
				r0, r1 := h1/h, h2/h
				// d1_0 = (D - D1)/r0, d1_1 = (D1 - D2)/r1
				// d1 = d1_0 + (d1_0 - d1_1)*r0/(r0+r1); d2 = (d1_0 - d1_1)/(r0+r1)
				phi3 := phi2/he - 0.5
				a := r0 / (r0 + r1)
				b := 1 / (r0 + r1)
				// coefficients of D, D1, D2 in phi2*d1 - phi3*d2
				cD := (phi2*(1+a) - phi3*b) / r0
				cD1 := -(phi2*(1+a)-phi3*b)/r0 - (phi2*a-phi3*b)/r1
				cD2 := (phi2*a - phi3*b) / r1
				terms = append(terms, cD, den, cD1, d1, cD2, d2)
			case i == 1:
				rr := h1 / h
				terms = append(terms, phi2/rr, den, -phi2/rr, d1)
			}
			terms = append(terms, s[i+1]*math.Sqrt(-math.Expm1(-2*h*eta)), noise(s[i], s[i+1]))
			x = comb(terms...)
		}
		d1, d2 = den, d1
		h1, h2 = h, h1
	}
	return x, nil
}

func sampleDDPM(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	noise := ancestralNoise(x, opt)
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		si, sp := s[i], s[i+1]
		a := 1 / (si*si + 1)
		ap := 1 / (sp*sp + 1)
		alpha := a / ap
		// mu = sqrt(1/alpha) * (x/sqrt(1+si^2) - (1-alpha) * eps / sqrt(1-a)), eps = (x - D)/si
		k := math.Sqrt(1 / alpha)
		ce := (1 - alpha) / math.Sqrt(1-a) / si
		terms := []any{k * (1/math.Sqrt(1+si*si) - ce), x, k * ce, den}
		if sp > 0 {
			terms = append(terms, math.Sqrt((1-alpha)*(1-ap)/(1-a)), noise(si, sp))
		}
		x = comb(terms...)
		if sp != 0 {
			x = comb(math.Sqrt(1+sp*sp), x)
		}
	}
	return x, nil
}

func sampleLCM(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	noise := ancestralNoise(x, opt)
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		x = den
		if s[i+1] > 0 {
			x = comb(1.0, x, s[i+1], noise(s[i], s[i+1]))
		}
	}
	return x, nil
}

// sampleUniPC is ComfyUI's UniPC (predict-x0, multistep, bh1 or bh2).
func sampleUniPC(bh2 bool) SamplerFunc {
	return func(ctx context.Context, model Denoiser, x *tensor.Tensor, sigmas []float64, opt Options) (*tensor.Tensor, error) {
		ts := append([]float64(nil), sigmas...)
		if ts[len(ts)-1] == 0 {
			ts[len(ts)-1] = 0.001
		}
		alpha := func(t float64) float64 { return 1 / math.Sqrt(1+t*t) }
		sdev := func(t float64) float64 { return t / math.Sqrt(1+t*t) }
		lambda := func(t float64) float64 { return -math.Log(t) }
		modelFn := func(xv *tensor.Tensor, t float64) (*tensor.Tensor, error) {
			return model(ctx, comb(math.Sqrt(1+t*t), xv), t)
		}
		xv := comb(1/math.Sqrt(1+ts[0]*ts[0]), x)
		K := len(ts) - 1
		order := min(3, K-1)
		var M []*tensor.Tensor
		var T []float64
		update := func(xc *tensor.Tensor, t float64, ord int, corrector bool) (*tensor.Tensor, *tensor.Tensor, error) {
			p0 := T[len(T)-1]
			m0 := M[len(M)-1]
			h := lambda(t) - lambda(p0)
			var rks []float64
			var D1 []*tensor.Tensor
			for i := 1; i < ord; i++ {
				rk := (lambda(T[len(T)-1-i]) - lambda(p0)) / h
				rks = append(rks, rk)
				D1 = append(D1, comb(1/rk, M[len(M)-1-i], -1/rk, m0))
			}
			rks = append(rks, 1)
			hh := -h
			phi1 := math.Expm1(hh)
			hphi := phi1/hh - 1
			B := hh
			if bh2 {
				B = math.Expm1(hh)
			}
			R := make([][]float64, ord)
			b := make([]float64, ord)
			fact := 1.0
			for i := 1; i <= ord; i++ {
				R[i-1] = make([]float64, ord)
				for j := range rks {
					R[i-1][j] = math.Pow(rks[j], float64(i-1))
				}
				b[i-1] = hphi * fact / B
				fact *= float64(i + 1)
				hphi = hphi/hh - 1/fact
			}
			var rhoP, rhoC []float64
			if len(D1) > 0 {
				if ord == 2 {
					rhoP = []float64{0.5}
				} else {
					rhoP = solve(sub(R, ord-1), b[:ord-1])
				}
			}
			if corrector {
				if ord == 1 {
					rhoC = []float64{0.5}
				} else {
					rhoC = solve(R, b)
				}
			}
			at := alpha(t)
			xBase := comb(sdev(t)/sdev(p0), xc, -at*phi1, m0)
			pred := []any{1.0, xBase}
			for k, d := range D1 {
				pred = append(pred, -at*B*rhoP[k], d)
			}
			xt := comb(pred...)
			if !corrector {
				return xt, nil, nil
			}
			mt, err := modelFn(xt, t)
			if err != nil {
				return nil, nil, err
			}
			corr := []any{1.0, xBase}
			for k, d := range D1 {
				corr = append(corr, -at*B*rhoC[k], d)
			}
			last := rhoC[len(rhoC)-1]
			corr = append(corr, -at*B*last, mt, at*B*last, m0)
			return comb(corr...), mt, nil
		}
		for step := 0; step < K; step++ {
			if step == 0 {
				m, err := modelFn(xv, ts[0])
				if err != nil {
					return nil, err
				}
				M, T = []*tensor.Tensor{m}, []float64{ts[0]}
			} else if step < order {
				nx, mx, err := update(xv, ts[step], step, true)
				if err != nil {
					return nil, err
				}
				xv = nx
				if mx == nil {
					if mx, err = modelFn(xv, ts[step]); err != nil {
						return nil, err
					}
				}
				M = append(M, mx)
				T = append(T, ts[step])
			} else {
				extra := 0
				if step == K-1 {
					extra = 1
				}
				for st := step; st <= step+extra; st++ {
					so := min(order, K+1-st)
					nx, mx, err := update(xv, ts[st], so, st != K)
					if err != nil {
						return nil, err
					}
					xv = nx
					copy(M, M[1:])
					copy(T, T[1:])
					T[len(T)-1] = ts[st]
					if st < K {
						if mx == nil {
							if mx, err = modelFn(xv, ts[st]); err != nil {
								return nil, err
							}
						}
						M[len(M)-1] = mx
					}
				}
			}
			if err := callback(opt, step, xv, M[len(M)-1]); err != nil {
				return nil, err
			}
		}
		return comb(1/alpha(ts[len(ts)-1]), xv), nil
	}
}

// sub returns the leading n x n block of R.
func sub(R [][]float64, n int) [][]float64 {
	out := make([][]float64, n)
	for i := range out {
		out[i] = append([]float64(nil), R[i][:n]...)
	}
	return out
}

// solve solves A x = b by Gaussian elimination with partial pivoting (A is small).
func solve(A [][]float64, b []float64) []float64 {
	n := len(b)
	a := make([][]float64, n)
	for i := range a {
		a[i] = append(append([]float64(nil), A[i]...), b[i])
	}
	for c := 0; c < n; c++ {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		a[c], a[p] = a[p], a[c]
		for r := c + 1; r < n; r++ {
			f := a[r][c] / a[c][c]
			for k := c; k <= n; k++ {
				a[r][k] -= f * a[c][k]
			}
		}
	}
	x := make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		v := a[r][n]
		for k := r + 1; k < n; k++ {
			v -= a[r][k] * x[k]
		}
		x[r] = v / a[r][r]
	}
	return x
}
