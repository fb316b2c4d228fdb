package sampling

import (
	"context"
	"fmt"
	"math"

	"github.com/comfygo/comfygo/internal/tensor"
)

// The optional k-diffusion samplers (ComfyUI's comfy/k_diffusion/sampling.py), for discrete
// (non-flow) models.

func uncondOf(opt Options) (func() *tensor.Tensor, error) {
	if opt.Uncond == nil {
		return nil, fmt.Errorf("this CFG++ sampler needs the uncond prediction (run it through the KSampler)")
	}
	return opt.Uncond, nil
}

func sampleHeunPP2(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	end := s[len(s)-1]
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		d := toD(x, den, s[i])
		dt := f32(s[i+1] - s[i])
		switch {
		case s[i+1] == end:
			x = comb(1.0, x, dt, d)
		case s[i+2] == end:
			x2 := comb(1.0, x, dt, d)
			den2, err := model(ctx, x2, s[i+1])
			if err != nil {
				return nil, err
			}
			d2 := toD(x2, den2, s[i+1])
			w2 := s[i+1] / (2 * s[0])
			x = comb(1.0, x, dt*(1-w2), d, dt*w2, d2)
		default:
			x2 := comb(1.0, x, dt, d)
			den2, err := model(ctx, x2, s[i+1])
			if err != nil {
				return nil, err
			}
			d2 := toD(x2, den2, s[i+1])
			x3 := comb(1.0, x2, f32(s[i+2]-s[i+1]), d2)
			den3, err := model(ctx, x3, s[i+2])
			if err != nil {
				return nil, err
			}
			d3 := toD(x3, den3, s[i+2])
			w := 3 * s[0]
			w2, w3 := s[i+1]/w, s[i+2]/w
			x = comb(1.0, x, dt*(1-w2-w3), d, dt*w2, d2, dt*w3, d3)
		}
	}
	return x, nil
}

// ipndm keeps up to 3 previous derivatives (max_order 4).
func sampleIPNDM(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	var buf []*tensor.Tensor
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		d := toD(x, den, s[i])
		dt := f32(s[i+1] - s[i])
		order := min(4, i+1)
		n := len(buf)
		switch {
		case s[i+1] == 0:
			x = den
		case order == 1:
			x = comb(1.0, x, dt, d)
		case order == 2:
			x = comb(1.0, x, dt*3/2, d, -dt/2, buf[n-1])
		case order == 3:
			x = comb(1.0, x, dt*23/12, d, -dt*16/12, buf[n-1], dt*5/12, buf[n-2])
		default:
			x = comb(1.0, x, dt*55/24, d, -dt*59/24, buf[n-1], dt*37/24, buf[n-2], -dt*9/24, buf[n-3])
		}
		buf = pushBuffer(buf, d, 3)
	}
	return x, nil
}

func pushBuffer(buf []*tensor.Tensor, d *tensor.Tensor, n int) []*tensor.Tensor {
	if len(buf) == n {
		copy(buf, buf[1:])
		buf[n-1] = d
		return buf
	}
	return append(buf, d)
}

func sampleIPNDMV(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	var buf []*tensor.Tensor
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		d := toD(x, den, s[i])
		dt := s[i+1] - s[i]
		order := min(4, i+1)
		n := len(buf)
		switch {
		case s[i+1] == 0:
			x = den
		case order == 1:
			x = comb(1.0, x, f32(dt), d)
		case order == 2:
			hn, hn1 := dt, s[i]-s[i-1]
			c1 := (2 + hn/hn1) / 2
			c2 := -(hn / hn1) / 2
			x = comb(1.0, x, dt*c1, d, dt*c2, buf[n-1])
		case order == 3:
			hn, hn1, hn2 := dt, s[i]-s[i-1], s[i-1]-s[i-2]
			temp := (1 - hn/(3*(hn+hn1))*(hn*(hn+hn1))/(hn1*(hn1+hn2))) / 2
			c1 := (2+hn/hn1)/2 + temp
			c2 := -(hn/hn1)/2 - (1+hn1/hn2)*temp
			c3 := temp * hn1 / hn2
			x = comb(1.0, x, dt*c1, d, dt*c2, buf[n-1], dt*c3, buf[n-2])
		default:
			hn, hn1, hn2, hn3 := dt, s[i]-s[i-1], s[i-1]-s[i-2], s[i-2]-s[i-3]
			temp1 := (1 - hn/(3*(hn+hn1))*(hn*(hn+hn1))/(hn1*(hn1+hn2))) / 2
			temp2 := ((1-hn/(3*(hn+hn1)))/2 + (1-hn/(2*(hn+hn1)))*hn/(6*(hn+hn1+hn2))) *
				(hn * (hn + hn1) * (hn + hn1 + hn2)) / (hn1 * (hn1 + hn2) * (hn1 + hn2 + hn3))
			q := hn1 * (hn1 + hn2) / (hn2 * (hn2 + hn3))
			c1 := (2+hn/hn1)/2 + temp1 + temp2
			c2 := -(hn/hn1)/2 - (1+hn1/hn2)*temp1 - (1+hn1/hn2+q)*temp2
			c3 := temp1*hn1/hn2 + (hn1/hn2+q*(1+hn2/hn3))*temp2
			c4 := -temp2 * q * hn1 / hn2
			x = comb(1.0, x, dt*c1, d, dt*c2, buf[n-1], dt*c3, buf[n-2], dt*c4, buf[n-3])
		}
		buf = pushBuffer(buf, d, 3)
	}
	return x, nil
}

// sampleEulerAncestralCFGPP is euler_ancestral_cfg_pp (eta 1) and, with eta 0, euler_cfg_pp.
func sampleEulerAncestralCFGPP(eta float64) SamplerFunc {
	return func(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
		unc, err := uncondOf(opt)
		if err != nil {
			return nil, err
		}
		noise := ancestralNoise(x, opt)
		for i := 0; i < len(s)-1; i++ {
			den, err := step(ctx, model, opt, i, x, s[i])
			if err != nil {
				return nil, err
			}
			if s[i+1] == 0 {
				x = den
				continue
			}
			d := toD(x, unc(), s[i])
			down, up := ancestralStep(s[i], s[i+1], eta)
			terms := []any{1.0, den, down, d}
			if eta > 0 {
				terms = append(terms, up, noise(s[i], s[i+1]))
			}
			x = comb(terms...)
		}
		return x, nil
	}
}

func sampleDPMPP2MCFGPP(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	unc, err := uncondOf(opt)
	if err != nil {
		return nil, err
	}
	var oldU *tensor.Tensor
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		u := unc()
		if s[i+1] == 0 {
			x = den // exp(-h) = 0
		} else {
			h := math.Log(s[i]) - math.Log(s[i+1])
			e := math.Exp(-h)
			if oldU == nil {
				x = comb(1.0, den, -e, u, e, x)
			} else {
				r := (math.Log(s[i-1]) - math.Log(s[i])) / h
				k := -math.Expm1(-h) / (2 * r)
				x = comb(1.0, den, -e, u, k, den, -k, oldU, e, x)
			}
		}
		oldU = u
	}
	return x, nil
}

func sampleDPMPP2SAncestralCFGPP(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	unc, err := uncondOf(opt)
	if err != nil {
		return nil, err
	}
	noise := ancestralNoise(x, opt)
	for i := 0; i < len(s)-1; i++ {
		den, err := model(ctx, x, s[i])
		if err != nil {
			return nil, err
		}
		u := unc()
		guidance := comb(1.0, den, -1.0, u)
		down, up := ancestralStep(s[i], s[i+1], 1)
		if err := callback(opt, i, x, den); err != nil {
			return nil, err
		}
		if down == 0 {
			d := toD(x, u, s[i])
			x = comb(1.0, x, f32(down-s[i]), d)
		} else {
			t, tn := -math.Log(s[i]), -math.Log(down)
			h := tn - t
			sm := f32(math.Exp(-(t + h/2)))
			x2 := comb(sm/s[i], x, -math.Expm1(-h/2), u)
			if _, err := model(ctx, x2, sm); err != nil {
				return nil, err
			}
			u2 := unc() // the second evaluation's uncond prediction

			x = comb(down/s[i], x, -math.Expm1(-h), u2)
		}
		if s[i+1] > 0 {
			x = comb(1.0, x, up, noise(s[i], s[i+1]))
		}
		x = comb(1.0, x, 1.0, guidance)
	}
	return x, nil
}

func sampleResMultistep(eta float64, cfgpp bool) SamplerFunc {
	return func(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
		var unc func() *tensor.Tensor
		if cfgpp {
			var err error
			if unc, err = uncondOf(opt); err != nil {
				return nil, err
			}
		}
		noise := ancestralNoise(x, opt)
		phi1 := func(t float64) float64 { return math.Expm1(t) / t }
		phi2 := func(t float64) float64 { return (phi1(t) - 1) / t }
		var old *tensor.Tensor
		var oldDown float64
		for i := 0; i < len(s)-1; i++ {
			den, err := step(ctx, model, opt, i, x, s[i])
			if err != nil {
				return nil, err
			}
			down, up := ancestralStep(s[i], s[i+1], eta)
			var u *tensor.Tensor
			if cfgpp {
				u = unc()
			}
			if down == 0 || old == nil {
				if cfgpp {
					d := toD(x, u, s[i])
					x = comb(1.0, den, down, d)
				} else {
					d := toD(x, den, s[i])
					x = comb(1.0, x, f32(down-s[i]), d)
				}
			} else {
				t, tOld, tNext, tPrev := -math.Log(s[i]), -math.Log(oldDown), -math.Log(down), -math.Log(s[i-1])
				h := tNext - t
				c2 := (tPrev - tOld) / h
				p1, p2 := phi1(-h), phi2(-h)
				b1, b2 := p1-p2/c2, p2/c2
				if math.IsNaN(b1) {
					b1 = 0
				}
				if math.IsNaN(b2) {
					b2 = 0
				}
				e := math.Exp(-h)
				if cfgpp {
					x = comb(e, x, e, den, -e, u, h*b1, u, h*b2, old)
				} else {
					x = comb(e, x, h*b1, den, h*b2, old)
				}
			}
			// upstream draws on every step with s[i+1] > 0 (even when sigma_up is 0); with eta 0
			// every draw is multiplied by 0, so skipping them changes nothing
			if s[i+1] > 0 && eta > 0 {
				x = comb(1.0, x, up, noise(s[i], s[i+1]))
			}
			if cfgpp {
				old = u
			} else {
				old = den
			}
			oldDown = down
		}
		return x, nil
	}
}

func sampleGradientEstimation(cfgpp bool) SamplerFunc {
	const gamma = 2.0
	return func(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
		var unc func() *tensor.Tensor
		if cfgpp {
			var err error
			if unc, err = uncondOf(opt); err != nil {
				return nil, err
			}
		}
		var oldD *tensor.Tensor
		for i := 0; i < len(s)-1; i++ {
			den, err := model(ctx, x, s[i])
			if err != nil {
				return nil, err
			}
			var d *tensor.Tensor
			if cfgpp {
				d = toD(x, unc(), s[i])
			} else {
				d = toD(x, den, s[i])
			}
			if err := callback(opt, i, x, den); err != nil {
				return nil, err
			}
			dt := f32(s[i+1] - s[i])
			if s[i+1] == 0 {
				x = den
			} else {
				if cfgpp {
					x = comb(1.0, den, s[i+1], d)
				} else {
					x = comb(1.0, x, dt, d)
				}
				if i >= 1 {
					x = comb(1.0, x, (gamma-1)*dt, d, -(gamma-1)*dt, oldD)
				}
			}
			oldD = d
		}
		return x, nil
	}
}

// sampleERSDE is er_sde (VP ER-SDE-Solver-3, max_stage 3, default noise scaler).
func sampleERSDE(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	noise := ancestralNoise(x, opt)
	scaler := func(v float64) float64 { return v * (math.Exp(math.Pow(v, 0.3)) + 10) }
	const points = 200
	lam := s // er_lambda = sigma / alpha = sigma for discrete models (alpha = 1)
	var old, oldDD *tensor.Tensor
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		stage := min(3, i+1)
		if s[i+1] == 0 {
			x = den
		} else {
			ls, lt := lam[i], lam[i+1]
			r := scaler(lt) / scaler(ls)
			x = comb(r, x, 1-r, den)
			if stage >= 2 {
				dt := lt - ls
				step := -dt / points
				var sum1, sum2 float64
				for k := 0; k < points; k++ {
					pos := float64(float32(lt + float64(k)*step))
					sc := scaler(pos)
					sum1 += 1 / sc
					sum2 += (pos - ls) / sc
				}
				s1 := sum1 * step
				dd := comb(1/(ls-lam[i-1]), den, -1/(ls-lam[i-1]), old)
				x = comb(1.0, x, dt+s1*scaler(lt), dd)
				if stage >= 3 {
					su := sum2 * step
					du := comb(2/(ls-lam[i-2]), dd, -2/(ls-lam[i-2]), oldDD)
					x = comb(1.0, x, dt*dt/2+su*scaler(lt), du)
				}
				oldDD = dd
			}
			v := lt*lt - ls*ls*r*r
			if v < 0 || math.IsNaN(v) {
				v = 0
			}
			x = comb(1.0, x, math.Sqrt(v), noise(s[i], s[i+1]))
		}
		old = den
	}
	return x, nil
}

// ehPhi1 and ehPhi2 are ei_h_phi_1(h) = expm1(h) and ei_h_phi_2(h) = (expm1(h) - h)/h.
func ehPhi1(h float64) float64 { return math.Expm1(h) }
func ehPhi2(h float64) float64 { return (math.Expm1(h) - h) / h }

// sampleSEEDS2 is sample_seeds_2 (lambda = -ln sigma, alpha = 1); exp_heun_2_x0(_sde) are its
// r = 1, phi_2 forms.
func sampleSEEDS2(eta, sNoise, r float64, phi2 bool) SamplerFunc {
	return func(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
		noise := ancestralNoise(x, opt)
		inject := eta > 0 && sNoise > 0
		fac := 1 / (2 * r)
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
			he := h * (eta + 1)
			s1 := f32(math.Exp(-(ls + r*h)))
			x2 := comb(s1/s[i]*math.Exp(-r*h*eta), x, -ehPhi1(-r*he), den)
			var sde *tensor.Tensor
			if inject {
				sde = comb(math.Sqrt(-math.Expm1(-2*r*h*eta)), noise(s[i], s1))
				x2 = comb(1.0, x2, s1*sNoise, sde)
			}
			den2, err := model(ctx, x2, s1)
			if err != nil {
				return nil, err
			}
			if phi2 {
				b2 := ehPhi2(-he) / r
				b1 := ehPhi1(-he) - b2
				x = comb(s[i+1]/s[i]*math.Exp(-h*eta), x, -b1, den, -b2, den2)
			} else {
				c := -ehPhi1(-he)
				x = comb(s[i+1]/s[i]*math.Exp(-h*eta), x, c*(1-fac), den, c*fac, den2)
			}
			if inject {
				seg := (r - 1) * h * eta
				sde = comb(math.Exp(seg), sde, math.Sqrt(-math.Expm1(2*seg)), noise(s1, s[i+1]))
				x = comb(1.0, x, s[i+1]*sNoise, sde)
			}
		}
		return x, nil
	}
}

// sampleSEEDS3 is sample_seeds_3 (eta 1, r1 = 1/3, r2 = 2/3).
func sampleSEEDS3(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	const eta, r1, r2 = 1.0, 1.0 / 3, 2.0 / 3
	noise := ancestralNoise(x, opt)
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
		he := h * (eta + 1)
		s1 := f32(math.Exp(-(ls + r1*h)))
		s2 := f32(math.Exp(-(ls + r2*h)))
		x2 := comb(s1/s[i]*math.Exp(-r1*h*eta), x, -ehPhi1(-r1*he), den)
		sde := comb(math.Sqrt(-math.Expm1(-2*r1*h*eta)), noise(s[i], s1))
		x2 = comb(1.0, x2, s1, sde)
		den2, err := model(ctx, x2, s1)
		if err != nil {
			return nil, err
		}
		a32 := r2 / r1 * ehPhi2(-r2*he)
		a31 := ehPhi1(-r2*he) - a32
		x3 := comb(s2/s[i]*math.Exp(-r2*h*eta), x, -a31, den, -a32, den2)
		seg := (r1 - r2) * h * eta
		sde = comb(math.Exp(seg), sde, math.Sqrt(-math.Expm1(2*seg)), noise(s1, s2))
		x3 = comb(1.0, x3, s2, sde)
		den3, err := model(ctx, x3, s2)
		if err != nil {
			return nil, err
		}
		b3 := ehPhi2(-he) / r2
		b1 := ehPhi1(-he) - b3
		x = comb(s[i+1]/s[i]*math.Exp(-h*eta), x, -b1, den, -b3, den3)
		seg = (r2 - 1) * h * eta
		sde = comb(math.Exp(seg), sde, math.Sqrt(-math.Expm1(2*seg)), noise(s2, s[i+1]))
		x = comb(1.0, x, s[i+1], sde)
	}
	return x, nil
}

// deisCoeffs is get_deis_coeff_list(sigmas, maxOrder, N=10000, 'tab'): multistep coefficients
// from a Riemann sum over the VP time of EDM's default schedule (sigma_min 0.002, sigma_max 80,
// epsilon 1e-3), as ComfyUI computes them.
func deisCoeffs(s []float64, maxOrder int) [][]float64 {
	const eps, smin, smax, N = 1e-3, 0.002, 80.0, 10000
	bd := 2 * (math.Log(smin*smin+1)/eps - math.Log(smax*smax+1)) / (eps - 1)
	bmin := math.Log(smax*smax+1) - 0.5*bd
	b0, b1 := bmin, bd+bmin
	ts := make([]float64, len(s))
	for i, v := range s {
		ts[i] = (math.Sqrt(bmin*bmin+2*bd*math.Log(v*v+1)) - bmin) / bd
	}
	integrand := func(t float64) float64 {
		alpha := math.Exp(-0.5*t*t*(b1-b0) - t*b0)
		dlog := -t*(b1-b0) - b0
		return -0.5 * dlog / math.Sqrt(alpha*(1-alpha))
	}
	C := make([][]float64, len(s)-1)
	for i := 0; i+1 < len(ts); i++ {
		order := min(i+1, maxOrder)
		if order == 1 || s[i+1] <= 0 {
			continue
		}
		tc, tn := ts[i], ts[i+1]
		dtau := (tn - tc) / N
		prev := make([]float64, order)
		for k := range prev {
			prev[k] = ts[i-k]
		}
		coeff := make([]float64, order)
		for n := 0; n < N; n++ {
			tau := tc + (tn-tc)*float64(n)/float64(N-1)
			w := integrand(tau)
			for j := 0; j < order; j++ {
				p := 1.0
				for k := 0; k < order; k++ {
					if k != j {
						p *= (tau - prev[k]) / (prev[j] - prev[k])
					}
				}
				coeff[j] += w * p
			}
		}
		for j := range coeff {
			coeff[j] *= dtau
		}
		C[i] = coeff
	}
	return C
}

// sampleDEIS is sample_deis (max_order 3, tab mode).
func sampleDEIS(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	const maxOrder = 3
	C := deisCoeffs(s, maxOrder)
	var buf []*tensor.Tensor
	for i := 0; i < len(s)-1; i++ {
		den, err := step(ctx, model, opt, i, x, s[i])
		if err != nil {
			return nil, err
		}
		d := toD(x, den, s[i])
		order := min(maxOrder, i+1)
		if s[i+1] <= 0 {
			order = 1
		}
		n := len(buf)
		switch order {
		case 1:
			x = comb(1.0, x, f32(s[i+1]-s[i]), d)
		case 2:
			x = comb(1.0, x, C[i][0], d, C[i][1], buf[n-1])
		default:
			x = comb(1.0, x, C[i][0], d, C[i][1], buf[n-1], C[i][2], buf[n-2])
		}
		buf = pushBuffer(buf, d, maxOrder-1)
	}
	return x, nil
}

// dpmSolver is k-diffusion's DPMSolver (eps form, t = -ln sigma) with eta 0.
type dpmSolver struct {
	ctx   context.Context
	model Denoiser
	calls int
}

func (d *dpmSolver) eps(cache map[string]*tensor.Tensor, key string, x *tensor.Tensor, t float64) (*tensor.Tensor, error) {
	if e, ok := cache[key]; ok {
		return e, nil
	}
	s := f32(math.Exp(-t))
	den, err := d.model(d.ctx, x, s)
	if err != nil {
		return nil, err
	}
	d.calls++
	e := comb(1/s, x, -1/s, den)
	cache[key] = e
	return e, nil
}

func (d *dpmSolver) step1(x *tensor.Tensor, t, tn float64, c map[string]*tensor.Tensor) (*tensor.Tensor, error) {
	e, err := d.eps(c, "eps", x, t)
	if err != nil {
		return nil, err
	}
	return comb(1.0, x, -math.Exp(-tn)*math.Expm1(tn-t), e), nil
}

func (d *dpmSolver) step2(x *tensor.Tensor, t, tn, r1 float64, c map[string]*tensor.Tensor) (*tensor.Tensor, error) {
	h := tn - t
	e, err := d.eps(c, "eps", x, t)
	if err != nil {
		return nil, err
	}
	s1 := t + r1*h
	u1 := comb(1.0, x, -math.Exp(-s1)*math.Expm1(r1*h), e)
	e1, err := d.eps(c, "eps_r1", u1, s1)
	if err != nil {
		return nil, err
	}
	sn := math.Exp(-tn)
	k := sn / (2 * r1) * math.Expm1(h)
	return comb(1.0, x, -sn*math.Expm1(h)+k, e, -k, e1), nil
}

func (d *dpmSolver) step3(x *tensor.Tensor, t, tn float64, c map[string]*tensor.Tensor) (*tensor.Tensor, error) {
	const r1, r2 = 1.0 / 3, 2.0 / 3
	h := tn - t
	e, err := d.eps(c, "eps", x, t)
	if err != nil {
		return nil, err
	}
	s1, s2 := t+r1*h, t+r2*h
	u1 := comb(1.0, x, -math.Exp(-s1)*math.Expm1(r1*h), e)
	e1, err := d.eps(c, "eps_r1", u1, s1)
	if err != nil {
		return nil, err
	}
	k2 := math.Exp(-s2) * (r2 / r1) * (math.Expm1(r2*h)/(r2*h) - 1)
	u2 := comb(1.0, x, -math.Exp(-s2)*math.Expm1(r2*h)+k2, e, -k2, e1)
	e2, err := d.eps(c, "eps_r2", u2, s2)
	if err != nil {
		return nil, err
	}
	sn := math.Exp(-tn)
	k := sn / r2 * (math.Expm1(h)/h - 1)
	return comb(1.0, x, -sn*math.Expm1(h)+k, e, -k, e2), nil
}

// dpmRange is ComfyUI's wrapper: sigma_max = sigmas[0], sigma_min = the last positive sigma.
func dpmRange(s []float64) (float64, float64) {
	smin := s[len(s)-1]
	if smin <= 0 {
		smin = s[len(s)-2]
	}
	return s[0], smin
}

// sampleDPMFast is dpm_fast: DPM-Solver-Fast with nfe = len(sigmas)-1 evaluations from
// sigmas[0] to the last positive sigma (the result keeps that last noise level, as upstream).
func sampleDPMFast(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	smax, smin := dpmRange(s)
	nfe := len(s) - 1
	d := &dpmSolver{ctx: ctx, model: model}
	m := nfe/3 + 1
	ts := linspace32(-math.Log(float64(float32(smax))), -math.Log(float64(float32(smin))), m+1)
	var orders []int
	if nfe%3 == 0 {
		for i := 0; i < m-2; i++ {
			orders = append(orders, 3)
		}
		orders = append(orders, 2, 1)
	} else {
		for i := 0; i < m-1; i++ {
			orders = append(orders, 3)
		}
		orders = append(orders, nfe%3)
	}
	for i, o := range orders {
		c := map[string]*tensor.Tensor{}
		t, tn := float64(ts[i]), float64(ts[i+1])
		e, err := d.eps(c, "eps", x, t)
		if err != nil {
			return nil, err
		}
		if err := callback(opt, i, x, comb(1.0, x, -f32(math.Exp(-t)), e)); err != nil {
			return nil, err
		}
		switch o {
		case 1:
			x, err = d.step1(x, t, tn, c)
		case 2:
			x, err = d.step2(x, t, tn, 0.5, c)
		default:
			x, err = d.step3(x, t, tn, c)
		}
		if err != nil {
			return nil, err
		}
	}
	return x, nil
}

// sampleDPMAdaptive is dpm_adaptive (order 3, rtol 0.05, atol 0.0078, h_init 0.05, I-controller,
// accept_safety 0.81, eta 0).
func sampleDPMAdaptive(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
	const rtol, atol, safety, ctrlEps = 0.05, 0.0078, 0.81, 1e-8
	smax, smin := dpmRange(s)
	tStart := float64(float32(-math.Log(float64(float32(smax)))))
	tEnd := float64(float32(-math.Log(float64(float32(smin)))))
	d := &dpmSolver{ctx: ctx, model: model}
	h := 0.05
	b1 := 1.0 / 3 // (pcoeff + icoeff + dcoeff) / order
	var errs []float64
	cur := tStart
	xPrev := x
	steps := 0
	for cur < tEnd-1e-5 {
		c := map[string]*tensor.Tensor{}
		t := math.Min(tEnd, cur+h)
		e, err := d.eps(c, "eps", x, cur)
		if err != nil {
			return nil, err
		}
		den := comb(1.0, x, -f32(math.Exp(-cur)), e)
		low, err := d.step2(x, cur, t, 1.0/3, c)
		if err != nil {
			return nil, err
		}
		high, err := d.step3(x, cur, t, c)
		if err != nil {
			return nil, err
		}
		sum := 0.0
		for i := range low.Data {
			delta := math.Max(atol, rtol*math.Max(math.Abs(float64(low.Data[i])), math.Abs(float64(xPrev.Data[i]))))
			q := float64(low.Data[i]-high.Data[i]) / delta
			sum += q * q
		}
		errv := math.Sqrt(sum) / math.Sqrt(float64(len(low.Data)))
		inv := 1 / (float64(float32(errv)) + ctrlEps)
		if errs == nil {
			errs = []float64{inv, inv, inv}
		}
		errs[0] = inv
		factor := math.Pow(errs[0], b1)
		factor = 1 + math.Atan(factor-1)
		accept := factor >= safety
		if accept {
			errs[2], errs[1] = errs[1], errs[0]
		}
		h *= factor
		if accept {
			xPrev = low
			x = high
			cur = t
		}
		steps++
		if err := callback(opt, steps-1, x, den); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// saCoeffs is compute_stochastic_adams_b_coeffs (not simple_order_2) for discrete models
// (alpha_t = sigma_t·exp(lambda_t) = 1).
func saCoeffs(lams []float64, ls, lt, tau float64) []float64 {
	n := len(lams)
	tm := 1 + tau*tau
	h := lt - ls
	prod := make([]float64, n)
	for p := 0; p < n; p++ {
		prod[p] = math.Pow(lt, float64(p)) - math.Pow(ls, float64(p))*math.Exp(-tm*h)
	}
	ec := make([]float64, n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			li, _ := math.Lgamma(float64(i + 1))
			lj, _ := math.Lgamma(float64(j + 1))
			c := li - lj
			if tau > 0 {
				c -= float64(i-j) * math.Log(tm)
			}
			v := math.Exp(c)
			if (i-j)%2 != 0 {
				v = -v
			}
			ec[i] += v * prod[j]
		}
	}
	V := make([][]float64, n) // V[p][k] = lams[k]^p
	for p := range V {
		V[p] = make([]float64, n)
		for k := range V[p] {
			V[p][k] = math.Pow(lams[k], float64(p))
		}
	}
	return solve(V, ec)
}

// sampleSASolver is sa_solver / sa_solver_pece (predictor order 3, corrector order 4, tau 1 for
// sigmas between percent_to_sigma(0.2) and percent_to_sigma(0.8), else 0).
func sampleSASolver(pece bool) SamplerFunc {
	return func(ctx context.Context, model Denoiser, x *tensor.Tensor, s []float64, opt Options) (*tensor.Tensor, error) {
		if opt.MS == nil {
			return nil, fmt.Errorf("sa_solver needs the model sampling (run it through the KSampler)")
		}
		noise := ancestralNoise(x, opt)
		lam := make([]float64, len(s))
		for i, v := range s {
			lam[i] = -math.Log(v)
		}
		startS, endS := opt.MS.PercentToSigma(0.2), opt.MS.PercentToSigma(0.8)
		tauFn := func(sig float64) float64 {
			if startS >= sig && sig >= endS {
				return 1
			}
			return 0
		}
		const predOrder, corrOrder = 3, 4
		xPred := x
		var h, tauT float64
		var noiseT *tensor.Tensor
		var preds []*tensor.Tensor
		lowerToEnd := s[len(s)-1] == 0
		weighted := func(b []float64, n int) []any {
			var terms []any
			for k := 0; k < n; k++ {
				terms = append(terms, b[k], preds[len(preds)-n+k])
			}
			return terms
		}
		for i := 0; i < len(s)-1; i++ {
			den, err := step(ctx, model, opt, i, xPred, s[i])
			if err != nil {
				return nil, err
			}
			preds = append(preds, den)
			if len(preds) > corrOrder {
				preds = preds[len(preds)-corrOrder:]
			}
			po := min(predOrder, len(preds))
			co := 0
			if !(i == 0 || (s[i+1] == 0 && !pece)) {
				co = min(corrOrder, len(preds))
			}
			if lowerToEnd {
				po = min(po, len(s)-2-i)
				co = min(co, len(s)-1-i)
			}
			if co == 0 {
				x = xPred
			} else {
				b := saCoeffs(lam[i-co+1:i+1], lam[i-1], lam[i], tauT)
				terms := append([]any{s[i] / s[i-1] * math.Exp(-tauT*tauT*h), x}, weighted(b, co)...)
				if tauT > 0 {
					terms = append(terms, 1.0, noiseT)
				}
				x = comb(terms...)
				if pece {
					if den, err = model(ctx, x, s[i]); err != nil {
						return nil, err
					}
					preds[len(preds)-1] = den
				}
			}
			if s[i+1] == 0 {
				xPred = den
				continue
			}
			tauT = tauFn(s[i+1])
			b := saCoeffs(lam[i-po+1:i+1], lam[i], lam[i+1], tauT)
			h = lam[i+1] - lam[i]
			terms := append([]any{s[i+1] / s[i] * math.Exp(-tauT*tauT*h), x}, weighted(b, po)...)
			if tauT > 0 {
				noiseT = comb(s[i+1]*math.Sqrt(-math.Expm1(-2*tauT*tauT*h)), noise(s[i], s[i+1]))
				terms = append(terms, 1.0, noiseT)
			}
			xPred = comb(terms...)
		}
		return xPred, nil
	}
}
