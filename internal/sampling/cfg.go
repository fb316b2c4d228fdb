package sampling

import (
	"context"
	"fmt"
	"math"

	"github.com/comfygo/comfygo/internal/tensor"
)

// UNetCall is one batched network evaluation (c_in already applied to X).
type UNetCall struct {
	X         *tensor.Tensor // [N,C,H,W]
	Timesteps []float32      // [N], the integer UNet timesteps
	Context   *tensor.Tensor // [N,T,D]
	Y         *tensor.Tensor // [N,adm] or nil
}

// UNetFunc runs the raw network (eps / v output) on one batch.
type UNetFunc func(ctx context.Context, in UNetCall) (*tensor.Tensor, error)

// Cond is one conditioning entry as the sampler uses it.
type Cond struct {
	Cross *tensor.Tensor // [1 or B, T, D]
	Y     *tensor.Tensor // [1 or B, adm] or nil
	// Strength multiplies the entry's contribution (ComfyUI "strength", default 1 when 0 and
	// HasStrength is false).
	Strength    float64
	HasStrength bool
	// Area is (h, w, y, x) in latent pixels (ConditioningSetArea), or nil for the whole latent.
	Area *[4]int
	// Mask (optional) is [1 or B, H, W] at latent resolution; MaskStrength scales it (default 1).
	Mask         *tensor.Tensor
	MaskStrength float64
	// SigmaStart/SigmaEnd (optional, HasRange) limit the entry to sigmas in [SigmaEnd, SigmaStart].
	SigmaStart, SigmaEnd float64
	HasRange             bool
}

// Guider is ComfyUI's CFGGuider for discrete models: it batches conditioning entries into UNet
// calls ([uncond rows, cond rows]), combines areas/strengths and applies classifier-free guidance
// on denoised predictions.
type Guider struct {
	MS       *ModelSampling
	UNet     UNetFunc
	Positive []Cond
	Negative []Cond
	CFG      float64
	// MaxBatch bounds the rows of one UNet call (0 = no bound), standing in for ComfyUI's
	// free-memory check.
	MaxBatch int
	// DisableCFG1 turns off the cfg == 1 shortcut that skips the negative pass.
	DisableCFG1 bool
	// OnUncond, if set, receives the uncond denoised prediction of every evaluation that
	// computed one (ComfyUI's post-cfg hook, used by the *_cfg_pp samplers).
	OnUncond func(*tensor.Tensor)
}

// CFG1 reports whether cfg is 1 within ComfyUI's math.isclose tolerance.
func CFG1(cfg float64) bool { return math.Abs(cfg-1) <= 1e-9*math.Max(1, math.Abs(cfg)) }

type condRun struct {
	x     *tensor.Tensor // input crop [B,C,h,w]
	mult  *tensor.Tensor // [B,C,h,w]
	area  *[4]int
	cross *tensor.Tensor // [B,T,D]
	y     *tensor.Tensor
	side  int // 0 = cond, 1 = uncond
}

// Denoise is D(x, sigma) with CFG: a Denoiser for the samplers.
func (g *Guider) Denoise(ctx context.Context, x *tensor.Tensor, sigma float64) (*tensor.Tensor, error) {
	sides := [][]Cond{g.Positive, g.Negative}
	if CFG1(g.CFG) && !g.DisableCFG1 {
		sides[1] = nil
	}
	outs, err := g.calcCondBatch(ctx, sides, x, sigma)
	if err != nil {
		return nil, err
	}
	if sides[1] == nil {
		return outs[0], nil
	}
	c, u := outs[0], outs[1]
	if g.OnUncond != nil {
		g.OnUncond(u)
	}
	res := tensor.New(x.Shape...)
	cfg := float32(g.CFG)
	for i := range res.Data {
		res.Data[i] = u.Data[i] + (c.Data[i]-u.Data[i])*cfg
	}
	return res, nil
}

// Conds evaluates the positive and negative sides separately (cond, uncond denoised), without
// the cfg == 1 shortcut; used by tests and cfg_pp-style samplers.
func (g *Guider) Conds(ctx context.Context, x *tensor.Tensor, sigma float64) (cond, uncond *tensor.Tensor, err error) {
	outs, err := g.calcCondBatch(ctx, [][]Cond{g.Positive, g.Negative}, x, sigma)
	if err != nil {
		return nil, nil, err
	}
	return outs[0], outs[1], nil
}

func repeatRows(t *tensor.Tensor, b int) *tensor.Tensor {
	if t == nil || t.Shape[0] == b {
		return t
	}
	row := len(t.Data) / t.Shape[0]
	out := tensor.New(append([]int{b}, t.Shape[1:]...)...)
	for i := 0; i < b; i++ {
		src := i % t.Shape[0]
		copy(out.Data[i*row:(i+1)*row], t.Data[src*row:(src+1)*row])
	}
	return out
}

// crop returns x[:, :, y:y+h, x0:x0+w].
func crop(x *tensor.Tensor, h, w, y, x0 int) *tensor.Tensor {
	B, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	out := tensor.New(B, C, h, w)
	for bc := 0; bc < B*C; bc++ {
		for r := 0; r < h; r++ {
			copy(out.Data[(bc*h+r)*w:(bc*h+r+1)*w], x.Data[(bc*H+y+r)*W+x0:(bc*H+y+r)*W+x0+w])
		}
	}
	return out
}

// areaAndMult is get_area_and_mult: the entry's input crop and weight, or nil when the entry is
// inactive at this sigma.
func areaAndMult(c Cond, x *tensor.Tensor, sigma float64, side int) *condRun {
	if c.HasRange && (sigma > c.SigmaStart || sigma < c.SigmaEnd) {
		return nil
	}
	B, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	strength := 1.0
	if c.HasStrength {
		strength = c.Strength
	}
	in := x
	var area *[4]int
	h, w, y0, x0 := H, W, 0, 0
	if c.Area != nil {
		a := *c.Area
		a[0] = min(H-a[2], a[0])
		a[1] = min(W-a[3], a[1])
		area = &a
		h, w, y0, x0 = a[0], a[1], a[2], a[3]
		if h <= 0 || w <= 0 {
			return nil
		}
		in = crop(x, h, w, y0, x0)
	}
	mult := tensor.New(B, C, h, w)
	if c.Mask != nil {
		ms := c.MaskStrength
		if ms == 0 {
			ms = 1
		}
		m := c.Mask
		mh, mw := m.Shape[len(m.Shape)-2], m.Shape[len(m.Shape)-1]
		mb := len(m.Data) / (mh * mw)
		for b := 0; b < B; b++ {
			mi := b % mb
			for ch := 0; ch < C; ch++ {
				for r := 0; r < h; r++ {
					for q := 0; q < w; q++ {
						v := m.Data[(mi*mh+y0+r)*mw+x0+q] * float32(ms)
						mult.Data[((b*C+ch)*h+r)*w+q] = v * float32(strength)
					}
				}
			}
		}
	} else {
		for i := range mult.Data {
			mult.Data[i] = float32(strength)
		}
		if area != nil {
			// Feather 8 latent pixels at edges that are not the latent's border.
			const rr = 8
			mulLine := func(dim, idx int, f float32) {
				if dim == 0 {
					if idx < 0 || idx >= h {
						return
					}
					for bc := 0; bc < B*C; bc++ {
						for q := 0; q < w; q++ {
							mult.Data[(bc*h+idx)*w+q] *= f
						}
					}
				} else {
					if idx < 0 || idx >= w {
						return
					}
					for bc := 0; bc < B*C; bc++ {
						for r := 0; r < h; r++ {
							mult.Data[(bc*h+r)*w+idx] *= f
						}
					}
				}
			}
			dims := [2]int{H, W}
			for d := 0; d < 2; d++ {
				size, off := area[d], area[2+d]
				if off != 0 {
					for t := 0; t < rr; t++ {
						mulLine(d, t, float32((1.0/rr)*float64(t+1)))
					}
				}
				if size+off < dims[d] {
					for t := 0; t < rr; t++ {
						mulLine(d, size-1-t, float32((1.0/rr)*float64(t+1)))
					}
				}
			}
		}
	}
	return &condRun{x: in, mult: mult, area: area, cross: repeatRows(c.Cross, B), y: repeatRows(c.Y, B), side: side}
}

func lcmInt(a, b int) int {
	g, h := a, b
	for h != 0 {
		g, h = h, g%h
	}
	return a / g * b
}

func canConcat(a, b *condRun) bool {
	if !sameShape(a.x.Shape, b.x.Shape) || (a.y == nil) != (b.y == nil) {
		return false
	}
	if a.y != nil && !sameShape(a.y.Shape, b.y.Shape) {
		return false
	}
	s1, s2 := a.cross.Shape, b.cross.Shape
	if !sameShape(s1, s2) {
		if s1[0] != s2[0] || s1[2] != s2[2] {
			return false
		}
		if lcmInt(s1[1], s2[1])/min(s1[1], s2[1]) > 4 {
			return false
		}
	}
	return true
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// catRows concatenates tensors along dim 0.
func catRows(ts []*tensor.Tensor) *tensor.Tensor {
	n := 0
	for _, t := range ts {
		n += t.Shape[0]
	}
	out := tensor.New(append([]int{n}, ts[0].Shape[1:]...)...)
	off := 0
	for _, t := range ts {
		copy(out.Data[off:], t.Data)
		off += len(t.Data)
	}
	return out
}

// catCross concatenates cross-attention tensors, repeating each along the token axis up to the
// least common multiple of the lengths.
func catCross(ts []*tensor.Tensor) *tensor.Tensor {
	L := ts[0].Shape[1]
	for _, t := range ts[1:] {
		L = lcmInt(L, t.Shape[1])
	}
	var parts []*tensor.Tensor
	for _, t := range ts {
		if t.Shape[1] == L {
			parts = append(parts, t)
			continue
		}
		B, T, D := t.Shape[0], t.Shape[1], t.Shape[2]
		r := tensor.New(B, L, D)
		for b := 0; b < B; b++ {
			for k := 0; k < L/T; k++ {
				copy(r.Data[(b*L+k*T)*D:(b*L+(k+1)*T)*D], t.Data[b*T*D:(b+1)*T*D])
			}
		}
		parts = append(parts, r)
	}
	return catRows(parts)
}

func (g *Guider) calcCondBatch(ctx context.Context, sides [][]Cond, x *tensor.Tensor, sigma float64) ([]*tensor.Tensor, error) {
	if len(x.Shape) != 4 {
		return nil, fmt.Errorf("guider: latent must be [B,C,H,W], got %v", x.Shape)
	}
	B, C, H, W := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	outs := make([]*tensor.Tensor, len(sides))
	counts := make([]*tensor.Tensor, len(sides))
	var toRun []*condRun
	for i, side := range sides {
		outs[i] = tensor.New(x.Shape...)
		counts[i] = tensor.New(x.Shape...)
		for k := range counts[i].Data {
			counts[i].Data[k] = 1e-37
		}
		for _, c := range side {
			if c.Cross == nil {
				return nil, fmt.Errorf("guider: conditioning entry without a cross-attention tensor")
			}
			if p := areaAndMult(c, x, sigma, i); p != nil {
				toRun = append(toRun, p)
			}
		}
	}
	for len(toRun) > 0 {
		first := toRun[0]
		var idx []int
		for k := range toRun {
			if canConcat(toRun[k], first) {
				idx = append(idx, k)
			}
		}
		for i, j := 0, len(idx)-1; i < j; i, j = i+1, j-1 {
			idx[i], idx[j] = idx[j], idx[i]
		}
		batch := idx[:1]
		for d := 1; d <= len(idx); d++ {
			cand := idx[:len(idx)/d]
			if g.MaxBatch <= 0 || len(cand)*first.x.Shape[0] <= g.MaxBatch {
				batch = cand
				break
			}
		}
		if len(batch) == 0 {
			batch = idx[:1]
		}
		var runs []*condRun
		taken := map[int]bool{}
		for _, k := range batch {
			runs = append(runs, toRun[k])
			taken[k] = true
		}
		rest := toRun[:0:0]
		for k, r := range toRun {
			if !taken[k] {
				rest = append(rest, r)
			}
		}
		toRun = rest

		xs := make([]*tensor.Tensor, len(runs))
		cs := make([]*tensor.Tensor, len(runs))
		var ys []*tensor.Tensor
		for k, r := range runs {
			xs[k], cs[k] = r.x, r.cross
			if r.y != nil {
				ys = append(ys, r.y)
			}
		}
		in := catRows(xs)
		rows := in.Shape[0]
		sig := make([]float64, rows)
		ts := make([]float32, rows)
		t := float32(g.MS.Timestep(sigma))
		for k := range sig {
			sig[k], ts[k] = sigma, t
		}
		call := UNetCall{X: g.MS.ScaleInput(in, sig), Timesteps: ts, Context: catCross(cs)}
		if len(ys) > 0 {
			call.Y = catRows(ys)
		}
		F, err := g.UNet(ctx, call)
		if err != nil {
			return nil, err
		}
		if len(F.Data) != len(in.Data) {
			return nil, fmt.Errorf("guider: model output shape %v for input %v", F.Shape, in.Shape)
		}
		den := g.MS.Denoised(in, F, sig)
		per := len(den.Data) / len(runs)
		for k, r := range runs {
			o := den.Data[k*per : (k+1)*per]
			oc, cc := outs[r.side], counts[r.side]
			if r.area == nil {
				for i, v := range o {
					m := r.mult.Data[i]
					oc.Data[i] += v * m
					cc.Data[i] += m
				}
				continue
			}
			h, w, y0, x0 := r.area[0], r.area[1], r.area[2], r.area[3]
			for bc := 0; bc < B*C; bc++ {
				for rr := 0; rr < h; rr++ {
					for q := 0; q < w; q++ {
						src := (bc*h+rr)*w + q
						dst := (bc*H+y0+rr)*W + x0 + q
						m := r.mult.Data[src]
						oc.Data[dst] += o[src] * m
						cc.Data[dst] += m
					}
				}
			}
		}
	}
	for i := range outs {
		for k := range outs[i].Data {
			outs[i].Data[k] /= counts[i].Data[k]
		}
	}
	return outs, nil
}

// PairAreas is create_cond_with_same_area_if_none applied both ways: for every entry with an
// area, the other side gets a copy of its smallest entry covering that area (with the area),
// unless one with exactly that area exists.
func PairAreas(pos, neg []Cond) ([]Cond, []Cond) {
	sides := [2][]Cond{append([]Cond(nil), pos...), append([]Cond(nil), neg...)}
	inside := func(a, cmp [4]int) bool {
		return a[2] >= cmp[2] && a[3] >= cmp[3] && a[0]+a[2] <= cmp[0]+cmp[2] && a[1]+a[3] <= cmp[1]+cmp[3]
	}
	for k := 0; k < 2; k++ {
		other := 1 - k
		for i := 0; i < len(sides[k]); i++ {
			c := sides[k][i]
			if c.Area == nil {
				continue
			}
			var smallest *Cond
			for j := range sides[other] {
				x := &sides[other][j]
				if x.Area != nil {
					if inside(*c.Area, *x.Area) {
						if smallest == nil || smallest.Area == nil || smallest.Area[0]*smallest.Area[1] > x.Area[0]*x.Area[1] {
							smallest = x
						}
					}
				} else if smallest == nil {
					smallest = x
				}
			}
			if smallest == nil || (smallest.Area != nil && *smallest.Area == *c.Area) {
				continue
			}
			out := c
			out.Cross, out.Y = smallest.Cross, smallest.Y
			sides[other] = append(sides[other], out)
		}
	}
	return sides[0], sides[1]
}
