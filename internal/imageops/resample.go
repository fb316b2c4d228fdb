package imageops

import (
	"math"

	"github.com/comfygo/comfygo/internal/tensor"
)

// lanczos resizes like ComfyUI's "lanczos": each image goes through 8-bit pixels and PIL's
// Lanczos (a=3) filter, horizontal pass then vertical pass, rounding to 8 bits after each.
func lanczos(t *tensor.Tensor, width, height int) *tensor.Tensor {
	n, c, h, w := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	wx := lanczosWeights(w, width)
	wy := lanczosWeights(h, height)
	out := tensor.New(n, c, height, width)
	src8 := make([]float32, h*w)
	tmp := make([]float32, h*width)
	for p := 0; p < n*c; p++ {
		for i, v := range t.Data[p*h*w : (p+1)*h*w] {
			src8[i] = float32(to8bit(v))
		}
		for r := 0; r < h; r++ {
			for x, taps := range wx {
				var s float32
				for _, tp := range taps {
					s += src8[r*w+tp.idx] * tp.w
				}
				tmp[r*width+x] = clampRound8(s)
			}
		}
		dst := out.Data[p*height*width : (p+1)*height*width]
		for y, taps := range wy {
			for x := 0; x < width; x++ {
				var s float32
				for _, tp := range taps {
					s += tmp[tp.idx*width+x] * tp.w
				}
				dst[y*width+x] = clampRound8(s) / 255
			}
		}
	}
	return out
}

// to8bit is SaveImage's pixel conversion: clip(255·v, 0, 255) truncated, in float32.
func to8bit(v float32) uint8 {
	x := 255 * v
	if !(x > 0) {
		return 0
	}
	if x >= 255 {
		return 255
	}
	return uint8(x)
}

func clampRound8(s float32) float32 {
	r := float32(math.Floor(float64(s) + 0.5))
	return min(max(r, 0), 255)
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x *= math.Pi
	return math.Sin(x) / x
}

// lanczosWeights are PIL's resampling coefficients for the Lanczos filter (support 3).
func lanczosWeights(in, out int) [][]tap {
	scale := float64(in) / float64(out)
	filterScale := max(scale, 1)
	support := 3 * filterScale
	res := make([][]tap, out)
	for x := range res {
		center := (float64(x) + 0.5) * scale
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), in)
		var taps []tap
		var sum float64
		ws := make([]float64, 0, xmax-xmin)
		for i := xmin; i < xmax; i++ {
			d := (float64(i) - center + 0.5) / filterScale
			v := 0.0
			if d > -3 && d < 3 {
				v = sinc(d) * sinc(d/3)
			}
			ws = append(ws, v)
			sum += v
		}
		for k, v := range ws {
			if sum != 0 {
				v /= sum
			}
			taps = append(taps, tap{xmin + k, float32(v)})
		}
		res[x] = taps
	}
	return res
}

// bislerp is ComfyUI's spherical bilinear resize: along each axis, neighbouring channel vectors
// are slerped by direction and linearly interpolated by norm (width first, then height).
func bislerp(t *tensor.Tensor, width, height int) *tensor.Tensor {
	n, c, h, w := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	// width pass: [n,c,h,w] -> [n,c,h,width]
	mid := tensor.New(n, c, h, width)
	r1, i1, i2 := bislerpCoords(w, width)
	a, b, res := make([]float32, c), make([]float32, c), make([]float32, c)
	for bi := 0; bi < n; bi++ {
		for y := 0; y < h; y++ {
			for x := 0; x < width; x++ {
				for ch := 0; ch < c; ch++ {
					base := ((bi*c+ch)*h + y) * w
					a[ch], b[ch] = t.Data[base+i1[x]], t.Data[base+i2[x]]
				}
				slerp(a, b, r1[x], res)
				for ch := 0; ch < c; ch++ {
					mid.Data[((bi*c+ch)*h+y)*width+x] = res[ch]
				}
			}
		}
	}
	out := tensor.New(n, c, height, width)
	r1, i1, i2 = bislerpCoords(h, height)
	for bi := 0; bi < n; bi++ {
		for y := 0; y < height; y++ {
			for x := 0; x < width; x++ {
				for ch := 0; ch < c; ch++ {
					base := (bi*c + ch) * h * width
					a[ch], b[ch] = mid.Data[base+i1[y]*width+x], mid.Data[base+i2[y]*width+x]
				}
				slerp(a, b, r1[y], res)
				for ch := 0; ch < c; ch++ {
					out.Data[((bi*c+ch)*height+y)*width+x] = res[ch]
				}
			}
		}
	}
	return out
}

// bislerpCoords bilinearly resizes the index ramps 0..in-1 and 1..in (last clamped) to out
// samples, giving for each output the fractional ratio and the two source indices.
func bislerpCoords(in, out int) (ratio []float32, c1, c2 []int) {
	s := scaleOf(in, out)
	lin := func(vals func(int) float32, x int) float32 {
		i0, l := linearSource(x, s)
		j := i0
		if i0 < in-1 {
			j = i0 + 1
		}
		return vals(i0)*(1-l) + vals(j)*l
	}
	ramp1 := func(i int) float32 { return float32(i) }
	ramp2 := func(i int) float32 {
		if i == in-1 {
			return float32(i)
		}
		return float32(i + 1)
	}
	ratio, c1, c2 = make([]float32, out), make([]int, out), make([]int, out)
	for x := 0; x < out; x++ {
		v := lin(ramp1, x)
		ratio[x] = v - float32(math.Floor(float64(v)))
		c1[x] = int(v)
		c2[x] = int(lin(ramp2, x))
	}
	return ratio, c1, c2
}

// slerp writes into res the spherical interpolation of channel vectors a and b at ratio r.
func slerp(a, b []float32, r float32, res []float32) {
	var na, nb float32
	for i := range a {
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	na, nb = float32(math.Sqrt(float64(na))), float32(math.Sqrt(float64(nb)))
	var dot float32
	for i := range a {
		var an, bn float32
		if na != 0 {
			an = a[i] / na
		}
		if nb != 0 {
			bn = b[i] / nb
		}
		dot += an * bn
	}
	switch {
	case dot > 1-1e-5:
		copy(res, a)
		return
	case dot < 1e-5-1:
		for i := range a {
			res[i] = a[i]*(1-r) + b[i]*r
		}
		return
	}
	omega := math.Acos(float64(dot))
	so := math.Sin(omega)
	ca := float32(math.Sin((1-float64(r))*omega) / so)
	cb := float32(math.Sin(float64(r)*omega) / so)
	norm := na*(1-r) + nb*r
	for i := range a {
		var an, bn float32
		if na != 0 {
			an = a[i] / na
		}
		if nb != 0 {
			bn = b[i] / nb
		}
		res[i] = (ca*an + cb*bn) * norm
	}
}
