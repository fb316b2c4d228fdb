package sampling

import (
	"fmt"
	"math"

	"github.com/comfygo/comfygo/internal/tensor"
)

// Parameterizations accepted by ModelSamplingDiscrete, in its combo order.
var Parameterizations = []string{"eps", "v_prediction", "lcm", "x0", "img_to_img"}

// BetaSchedules are ComfyUI's beta_schedule names.
var BetaSchedules = []string{"linear", "sqrt_linear", "sqrt", "cosine", "squaredcos_cap_v2"}

// ModelSampling is ComfyUI's model_sampling object for discrete models: a float32 sigma table
// (ascending) plus a parameterization (c_in, denoised, noise scaling).
type ModelSampling struct {
	Param     string    // "eps", "v_prediction", "lcm", "x0", "img_to_img"
	Sigmas    []float32 // ascending; 1000 entries (50 for the distilled lcm table)
	LogSigmas []float32
	// Skip and Offset map table indices to UNet timesteps: t = Skip*index + Offset
	// (1, 0 normally; 20, 19 for ModelSamplingDiscreteDistilled).
	Skip, Offset int
}

// Betas returns the beta schedule name over T steps (float64), as ComfyUI's make_beta_schedule.
func Betas(schedule string, T int, linearStart, linearEnd float64) ([]float64, error) {
	b := make([]float64, T)
	lin := func(a, c float64, i int) float64 {
		if T == 1 {
			return a
		}
		return a + float64(i)*(c-a)/float64(T-1)
	}
	switch schedule {
	case "linear", "":
		sa, se := math.Sqrt(linearStart), math.Sqrt(linearEnd)
		for i := range b {
			v := lin(sa, se, i)
			b[i] = v * v
		}
	case "sqrt_linear":
		for i := range b {
			b[i] = lin(linearStart, linearEnd, i)
		}
	case "sqrt":
		for i := range b {
			b[i] = math.Sqrt(lin(linearStart, linearEnd, i))
		}
	case "cosine":
		const s = 8e-3
		a := make([]float64, T+1)
		for k := range a {
			c := math.Cos((float64(k)/float64(T) + s) / (1 + s) * math.Pi / 2)
			a[k] = c * c
		}
		a0 := a[0]
		for k := range a {
			a[k] /= a0
		}
		for i := range b {
			b[i] = math.Min(math.Max(1-a[i+1]/a[i], 0), 0.999)
		}
	case "squaredcos_cap_v2":
		abar := func(t float64) float64 {
			c := math.Cos((t + 0.008) / 1.008 * math.Pi / 2)
			return c * c
		}
		for i := range b {
			b[i] = math.Min(1-abar(float64(i+1)/float64(T))/abar(float64(i)/float64(T)), 0.999)
		}
	default:
		return nil, fmt.Errorf("unknown beta schedule %q", schedule)
	}
	return b, nil
}

// DiscreteSigmas returns the float64 sigma table of a beta schedule, optionally rescaled to zero
// terminal SNR.
func DiscreteSigmas(betas []float64, zsnr bool) []float64 {
	n := len(betas)
	sig := make([]float64, n)
	ac := 1.0
	for i, b := range betas {
		ac *= 1 - b
		sig[i] = math.Sqrt((1 - ac) / ac)
	}
	if zsnr {
		q := make([]float64, n)
		for i, s := range sig {
			q[i] = math.Sqrt(1 / (s*s + 1))
		}
		q0, qT := q[0], q[n-1]
		for i := range q {
			v := (q[i] - qT) * q0 / (q0 - qT)
			a := v * v
			if i == n-1 {
				a = 4.8973451890853435e-08
			}
			sig[i] = math.Sqrt((1 - a) / a)
		}
	}
	return sig
}

// Config selects a model sampling (mirrors models.SamplingConfig, which callers convert):
// Type is "eps", "v_prediction", "lcm", "x0" or "img_to_img"; zero numbers mean SD defaults.
type Config struct {
	Type                   string
	ZSNR                   bool
	LinearStart, LinearEnd float64
	Timesteps              int
}

// NewModelSampling builds the model sampling of cfg (ModelSamplingDiscrete with the linear beta
// schedule; "lcm" selects ModelSamplingDiscreteDistilled with the LCM parameterization).
func NewModelSampling(cfg Config) (*ModelSampling, error) {
	return NewModelSamplingSchedule(cfg, "linear")
}

// NewModelSamplingSchedule is NewModelSampling with an explicit beta schedule name.
func NewModelSamplingSchedule(cfg Config, betaSchedule string) (*ModelSampling, error) {
	param := cfg.Type
	if param == "" {
		param = "eps"
	}
	known := false
	for _, p := range Parameterizations {
		known = known || p == param
	}
	if !known {
		return nil, fmt.Errorf("model sampling: unknown sampling type %q", param)
	}
	ls, le, T := cfg.LinearStart, cfg.LinearEnd, cfg.Timesteps
	if ls == 0 {
		ls = 0.00085
	}
	if le == 0 {
		le = 0.012
	}
	if T == 0 {
		T = 1000
	}
	betas, err := Betas(betaSchedule, T, ls, le)
	if err != nil {
		return nil, fmt.Errorf("model sampling: %w", err)
	}
	s64 := DiscreteSigmas(betas, cfg.ZSNR)
	ms := &ModelSampling{Param: param, Skip: 1, Offset: 0}
	ms.Sigmas = make([]float32, T)
	ms.LogSigmas = make([]float32, T)
	for i, s := range s64 {
		ms.Sigmas[i] = float32(s)
		ms.LogSigmas[i] = float32(math.Log(s))
	}
	if param == "lcm" {
		const orig = 50
		skip := T / orig
		tab := make([]float32, orig)
		logs := make([]float32, orig)
		for x := 0; x < orig; x++ {
			tab[orig-1-x] = ms.Sigmas[T-1-skip*x]
		}
		for k, s := range tab {
			logs[k] = logf32(s)
		}
		ms.Sigmas, ms.LogSigmas, ms.Skip, ms.Offset = tab, logs, skip, skip-1
	}
	return ms, nil
}

// logf32 is a float32 natural log (torch's float32 log is correctly rounded in practice).
func logf32(v float32) float32 { return float32(math.Log(float64(v))) }

// SigmaMin is the smallest table sigma.
func (m *ModelSampling) SigmaMin() float64 { return float64(m.Sigmas[0]) }

// SigmaMax is the largest table sigma.
func (m *ModelSampling) SigmaMax() float64 { return float64(m.Sigmas[len(m.Sigmas)-1]) }

// Timestep is timestep(sigma): the integer UNet timestep nearest to sigma in log space.
func (m *ModelSampling) Timestep(sigma float64) float64 {
	ls := logf32(float32(sigma))
	best, bi := float32(math.Inf(1)), 0
	for j, l := range m.LogSigmas {
		d := ls - l
		if d < 0 {
			d = -d
		}
		if d < best {
			best, bi = d, j
		}
	}
	return float64(bi*m.Skip + m.Offset)
}

// Sigma is sigma(t) for a real timestep t: log-linear interpolation of the table (float32).
func (m *ModelSampling) Sigma(t float64) float64 {
	tf := float32(t)
	if m.Skip != 1 {
		tf = (tf - float32(m.Offset)) / float32(m.Skip)
	}
	n := float32(len(m.Sigmas) - 1)
	if tf < 0 {
		tf = 0
	}
	if tf > n {
		tf = n
	}
	lo := float32(math.Floor(float64(tf)))
	hi := float32(math.Ceil(float64(tf)))
	w := tf - lo
	ls := (1-w)*m.LogSigmas[int(lo)] + w*m.LogSigmas[int(hi)]
	return float64(float32(math.Exp(float64(ls))))
}

// PercentToSigma maps a start/end percent to a sigma (conditioning timestep ranges).
func (m *ModelSampling) PercentToSigma(p float64) float64 {
	if p <= 0 {
		return 999999999.9
	}
	if p >= 1 {
		return 0
	}
	return m.Sigma((1 - p) * float64(len(m.Sigmas)*m.Skip-1))
}

// CIn is the input scaling c_in(sigma) applied to x before the UNet.
func (m *ModelSampling) CIn(sigma float64) float64 {
	if m.Param == "img_to_img" {
		return 1
	}
	return 1 / math.Sqrt(sigma*sigma+1)
}

// ScaleInput returns x*c_in(sigma_b) per batch row (computed as a division, as ComfyUI does).
func (m *ModelSampling) ScaleInput(x *tensor.Tensor, sigma []float64) *tensor.Tensor {
	out := tensor.New(x.Shape...)
	row := rowLen(x)
	for b := 0; b < x.Shape[0]; b++ {
		if m.Param == "img_to_img" {
			copy(out.Data[b*row:(b+1)*row], x.Data[b*row:(b+1)*row])
			continue
		}
		s := float32(sigma[b])
		div := float32(math.Sqrt(float64(s*s + 1)))
		for i := b * row; i < (b+1)*row; i++ {
			out.Data[i] = x.Data[i] / div
		}
	}
	return out
}

// Denoised converts the raw network output F (per-row sigma) into the denoised prediction,
// given the unscaled input x.
func (m *ModelSampling) Denoised(x, F *tensor.Tensor, sigma []float64) *tensor.Tensor {
	out := tensor.New(x.Shape...)
	row := rowLen(x)
	for b := 0; b < x.Shape[0]; b++ {
		s := float64(float32(sigma[b]))
		xs, fs, os := x.Data[b*row:(b+1)*row], F.Data[b*row:(b+1)*row], out.Data[b*row:(b+1)*row]
		switch m.Param {
		case "v_prediction":
			a := float32(1 / (s*s + 1))
			c := float32(s / math.Sqrt(s*s+1))
			for i := range os {
				os[i] = xs[i]*a - fs[i]*c
			}
		case "x0", "img_to_img":
			copy(os, fs)
		case "lcm":
			ts := m.Timestep(s) * 10
			cskip := float32(0.25 / (ts*ts + 0.25))
			cout := float32(ts / math.Sqrt(ts*ts+0.25))
			sf := float32(s)
			for i := range os {
				x0 := xs[i] - fs[i]*sf
				os[i] = cout*x0 + cskip*xs[i]
			}
		default: // eps
			sf := float32(s)
			for i := range os {
				os[i] = xs[i] - fs[i]*sf
			}
		}
	}
	return out
}

// NoiseScaling returns latent + noise*sqrt(1+sigma^2) when maxDenoise, else latent + noise*sigma.
func (m *ModelSampling) NoiseScaling(sigma float64, noise, latent *tensor.Tensor, maxDenoise bool) *tensor.Tensor {
	s := float32(sigma)
	f := s
	if maxDenoise {
		f = float32(math.Sqrt(float64(1 + s*s)))
	}
	out := tensor.New(noise.Shape...)
	for i := range out.Data {
		v := noise.Data[i] * f
		if latent != nil {
			v += latent.Data[i]
		}
		out.Data[i] = v
	}
	return out
}

// IsMaxDenoise reports whether sigma is (within relative 1e-5) at or above sigma_max.
func (m *ModelSampling) IsMaxDenoise(sigma float64) bool {
	smax := m.SigmaMax()
	return math.Abs(sigma-smax) <= 1e-5*math.Max(math.Abs(sigma), math.Abs(smax)) || sigma > smax
}

func rowLen(x *tensor.Tensor) int {
	if len(x.Shape) == 0 || x.Shape[0] == 0 {
		return 0
	}
	return len(x.Data) / x.Shape[0]
}
