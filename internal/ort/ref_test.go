package ort

import (
	"math"

	"github.com/comfygo/comfygo/internal/tensor"
)

// Float64 reference implementations of the operators SD needs (PyTorch semantics).

func refConv2d(x, w *tensor.Tensor, b []float32, stride, pad int) *tensor.Tensor {
	n, c, h, wd := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	o, kh, kw := w.Shape[0], w.Shape[2], w.Shape[3]
	oh, ow := (h+2*pad-kh)/stride+1, (wd+2*pad-kw)/stride+1
	out := tensor.New(n, o, oh, ow)
	for in := 0; in < n; in++ {
		for oc := 0; oc < o; oc++ {
			for y := 0; y < oh; y++ {
				for xx := 0; xx < ow; xx++ {
					var s float64
					if b != nil {
						s = float64(b[oc])
					}
					for ic := 0; ic < c; ic++ {
						for ky := 0; ky < kh; ky++ {
							iy := y*stride - pad + ky
							if iy < 0 || iy >= h {
								continue
							}
							for kx := 0; kx < kw; kx++ {
								ix := xx*stride - pad + kx
								if ix < 0 || ix >= wd {
									continue
								}
								s += float64(x.Data[((in*c+ic)*h+iy)*wd+ix]) * float64(w.Data[((oc*c+ic)*kh+ky)*kw+kx])
							}
						}
					}
					out.Data[((in*o+oc)*oh+y)*ow+xx] = float32(s)
				}
			}
		}
	}
	return out
}

func refGroupNorm(x *tensor.Tensor, groups int, scale, bias []float32, eps float64) *tensor.Tensor {
	n, c := x.Shape[0], x.Shape[1]
	spatial := len(x.Data) / (n * c)
	per := c / groups * spatial
	out := tensor.New(x.Shape...)
	for i := 0; i < n*groups; i++ {
		seg := x.Data[i*per : (i+1)*per]
		var mean, v float64
		for _, f := range seg {
			mean += float64(f)
		}
		mean /= float64(per)
		for _, f := range seg {
			v += (float64(f) - mean) * (float64(f) - mean)
		}
		v /= float64(per)
		inv := 1 / math.Sqrt(v+eps)
		for j, f := range seg {
			ch := (i%groups)*(c/groups) + j/spatial
			out.Data[i*per+j] = float32((float64(f)-mean)*inv*float64(scale[ch]) + float64(bias[ch]))
		}
	}
	return out
}

func refLayerNorm(x *tensor.Tensor, scale, bias []float32, eps float64) *tensor.Tensor {
	d := x.Shape[len(x.Shape)-1]
	out := tensor.New(x.Shape...)
	for r := 0; r < len(x.Data)/d; r++ {
		row := x.Data[r*d : (r+1)*d]
		var mean, v float64
		for _, f := range row {
			mean += float64(f)
		}
		mean /= float64(d)
		for _, f := range row {
			v += (float64(f) - mean) * (float64(f) - mean)
		}
		v /= float64(d)
		inv := 1 / math.Sqrt(v+eps)
		for j, f := range row {
			out.Data[r*d+j] = float32((float64(f)-mean)*inv*float64(scale[j]) + float64(bias[j]))
		}
	}
	return out
}

// refLinear is x·Wᵀ + b over the last axis, W [out,in].
func refLinear(x, w *tensor.Tensor, b []float32) *tensor.Tensor {
	in, o := w.Shape[1], w.Shape[0]
	rows := len(x.Data) / in
	shape := append(append([]int(nil), x.Shape[:len(x.Shape)-1]...), o)
	out := tensor.New(shape...)
	for r := 0; r < rows; r++ {
		for j := 0; j < o; j++ {
			var s float64
			if b != nil {
				s = float64(b[j])
			}
			for k := 0; k < in; k++ {
				s += float64(x.Data[r*in+k]) * float64(w.Data[j*in+k])
			}
			out.Data[r*o+j] = float32(s)
		}
	}
	return out
}

func refSoftmax(x *tensor.Tensor) *tensor.Tensor {
	d := x.Shape[len(x.Shape)-1]
	out := tensor.New(x.Shape...)
	for r := 0; r < len(x.Data)/d; r++ {
		row := x.Data[r*d : (r+1)*d]
		m := math.Inf(-1)
		for _, f := range row {
			m = math.Max(m, float64(f))
		}
		var s float64
		for _, f := range row {
			s += math.Exp(float64(f) - m)
		}
		for j, f := range row {
			out.Data[r*d+j] = float32(math.Exp(float64(f)-m) / s)
		}
	}
	return out
}

func refMap(x *tensor.Tensor, fn func(float64) float64) *tensor.Tensor {
	out := tensor.New(x.Shape...)
	for i, f := range x.Data {
		out.Data[i] = float32(fn(float64(f)))
	}
	return out
}

func gelu(v float64) float64      { return 0.5 * v * (1 + math.Erf(v/math.Sqrt2)) }
func quickGelu(v float64) float64 { return v / (1 + math.Exp(-1.702*v)) }
func silu(v float64) float64      { return v / (1 + math.Exp(-v)) }

// refAttention: q [B,S,H·D], k,v [B,L,H·D] → [B,S,H·D].
func refAttention(q, k, v *tensor.Tensor, heads int) *tensor.Tensor {
	b, s, hd := q.Shape[0], q.Shape[1], q.Shape[2]
	l := k.Shape[1]
	d := hd / heads
	out := tensor.New(b, s, hd)
	scale := 1 / math.Sqrt(float64(d))
	w := make([]float64, l)
	for ib := 0; ib < b; ib++ {
		for h := 0; h < heads; h++ {
			for i := 0; i < s; i++ {
				m := math.Inf(-1)
				for j := 0; j < l; j++ {
					var dot float64
					for e := 0; e < d; e++ {
						dot += float64(q.Data[(ib*s+i)*hd+h*d+e]) * float64(k.Data[(ib*l+j)*hd+h*d+e])
					}
					w[j] = dot * scale
					m = math.Max(m, w[j])
				}
				var sum float64
				for j := range w {
					w[j] = math.Exp(w[j] - m)
					sum += w[j]
				}
				for e := 0; e < d; e++ {
					var acc float64
					for j := 0; j < l; j++ {
						acc += w[j] / sum * float64(v.Data[(ib*l+j)*hd+h*d+e])
					}
					out.Data[(ib*s+i)*hd+h*d+e] = float32(acc)
				}
			}
		}
	}
	return out
}

func refUpsample2(x *tensor.Tensor) *tensor.Tensor {
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	out := tensor.New(n, c, 2*h, 2*w)
	for i := 0; i < n*c; i++ {
		for y := 0; y < 2*h; y++ {
			for xx := 0; xx < 2*w; xx++ {
				out.Data[(i*2*h+y)*2*w+xx] = x.Data[(i*h+y/2)*w+xx/2]
			}
		}
	}
	return out
}

// refPermute transposes x by perm.
func refPermute(x *tensor.Tensor, perm ...int) *tensor.Tensor {
	r := len(x.Shape)
	shape := make([]int, r)
	for i, p := range perm {
		shape[i] = x.Shape[p]
	}
	out := tensor.New(shape...)
	strides := make([]int, r)
	st := 1
	for i := r - 1; i >= 0; i-- {
		strides[i] = st
		st *= x.Shape[i]
	}
	idx := make([]int, r)
	for o := range out.Data {
		rem := o
		for i := r - 1; i >= 0; i-- {
			idx[i] = rem % shape[i]
			rem /= shape[i]
		}
		src := 0
		for i, p := range perm {
			src += idx[i] * strides[p]
		}
		out.Data[o] = x.Data[src]
	}
	return out
}

// refConcat1 concatenates NCHW-like tensors along axis 1.
func refConcat1(a, b *tensor.Tensor) *tensor.Tensor {
	n := a.Shape[0]
	ra, rb := len(a.Data)/n, len(b.Data)/n
	shape := append([]int(nil), a.Shape...)
	shape[1] += b.Shape[1]
	out := tensor.New(shape...)
	for i := 0; i < n; i++ {
		copy(out.Data[i*(ra+rb):], a.Data[i*ra:(i+1)*ra])
		copy(out.Data[i*(ra+rb)+ra:], b.Data[i*rb:(i+1)*rb])
	}
	return out
}

// refAddLowRank is w + s·(up·down) with up [out,r,...] and down [r,rest...] flattened to 2-D.
func refAddLowRank(w, up, down *tensor.Tensor, s float64) *tensor.Tensor {
	out := w.Clone()
	o := w.Shape[0]
	rest := len(w.Data) / o
	r := len(up.Data) / o
	for i := 0; i < o; i++ {
		for j := 0; j < rest; j++ {
			var acc float64
			for k := 0; k < r; k++ {
				acc += float64(up.Data[i*r+k]) * float64(down.Data[k*rest+j])
			}
			out.Data[i*rest+j] = float32(float64(w.Data[i*rest+j]) + s*acc)
		}
	}
	return out
}
