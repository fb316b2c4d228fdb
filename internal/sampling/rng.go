// Package sampling is comfygo's port of ComfyUI's sampling stack: PyTorch's CPU random numbers,
// discrete noise schedules and model sampling (eps, v, lcm, ...), the schedulers, the
// k-diffusion samplers, Brownian-tree noise and classifier-free guidance.
package sampling

import (
	"math"

	"github.com/comfygo/comfygo/internal/tensor"
)

// Generator reproduces torch.Generator on the CPU: MT19937 seeded with the low 32 bits of the
// seed, plus the cached second normal of the double-precision Box-Muller path.
type Generator struct {
	mt     [624]uint32
	idx    int
	cached bool
	cache  float64
}

// NewGenerator returns a generator in the state torch.manual_seed(seed) leaves.
func NewGenerator(seed uint64) *Generator {
	g := &Generator{}
	g.Seed(seed)
	return g
}

// Seed re-seeds the generator (torch.manual_seed): only the low 32 bits matter.
func (g *Generator) Seed(seed uint64) {
	g.mt[0] = uint32(seed)
	for i := 1; i < 624; i++ {
		p := g.mt[i-1]
		g.mt[i] = 1812433253*(p^(p>>30)) + uint32(i)
	}
	g.idx = 624
	g.cached = false
}

// Uint32 returns the next tempered MT19937 output.
func (g *Generator) Uint32() uint32 {
	if g.idx >= 624 {
		g.twist()
	}
	y := g.mt[g.idx]
	g.idx++
	y ^= y >> 11
	y ^= (y << 7) & 0x9D2C5680
	y ^= (y << 15) & 0xEFC60000
	y ^= y >> 18
	return y
}

func (g *Generator) twist() {
	const upper, lower = 0x80000000, 0x7fffffff
	for i := 0; i < 624; i++ {
		y := (g.mt[i] & upper) | (g.mt[(i+1)%624] & lower)
		v := g.mt[(i+397)%624] ^ (y >> 1)
		if y&1 != 0 {
			v ^= 0x9908B0DF
		}
		g.mt[i] = v
	}
	g.idx = 0
}

// Uint64 is torch's random64: the first draw in the high word.
func (g *Generator) Uint64() uint64 {
	hi := uint64(g.Uint32())
	lo := uint64(g.Uint32())
	return hi<<32 | lo
}

// Uniform32 is torch's float32 uniform in [0,1): the low 24 bits of one draw.
func (g *Generator) Uniform32() float32 {
	return float32(g.Uint32()&0xFFFFFF) * (1.0 / (1 << 24))
}

// Uniform64 is torch's float64 uniform in [0,1): 53 bits of random64.
func (g *Generator) Uniform64() float64 {
	return float64(g.Uint64()&(1<<53-1)) * (1.0 / (1 << 53))
}

// normal64 is torch's scalar normal_distribution<double> with its one-value cache.
func (g *Generator) normal64() float64 {
	if g.cached {
		g.cached = false
		return g.cache
	}
	u1 := g.Uniform64()
	u2 := g.Uniform64()
	r := math.Sqrt(-2 * math.Log(1-u2))
	theta := 2 * math.Pi * u1
	g.cache = r * math.Sin(theta)
	g.cached = true
	return r * math.Cos(theta)
}

// Randn is torch.randn(shape) (float32) drawn from g, bit for bit as PyTorch's x86 AVX2 kernel.
func (g *Generator) Randn(shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	g.FillRandn(t.Data)
	return t
}

// FillRandn fills data as torch.randn of len(data) float32 elements would.
func (g *Generator) FillRandn(data []float32) {
	n := len(data)
	if n < 16 {
		for i := range data {
			data[i] = float32(g.normal64())
		}
		return
	}
	for i := range data {
		data[i] = g.Uniform32()
	}
	for i := 0; i+16 <= n; i += 16 {
		boxMuller16(data[i : i+16])
	}
	if n%16 != 0 {
		tail := data[n-16:]
		for i := range tail {
			tail[i] = g.Uniform32()
		}
		boxMuller16(tail)
	}
}

// RandnFloat64 is torch.randn(n, dtype=float64).
func (g *Generator) RandnFloat64(n int) []float64 {
	data := make([]float64, n)
	if n < 16 {
		for i := range data {
			data[i] = g.normal64()
		}
		return data
	}
	for i := range data {
		data[i] = g.Uniform64()
	}
	block := func(d []float64) {
		for j := 0; j < 8; j++ {
			u1 := 1 - d[j]
			u2 := d[j+8]
			r := math.Sqrt(-2 * math.Log(u1))
			th := 2 * math.Pi * u2
			d[j] = r * math.Cos(th)
			d[j+8] = r * math.Sin(th)
		}
	}
	for i := 0; i+16 <= n; i += 16 {
		block(data[i : i+16])
	}
	if n%16 != 0 {
		tail := data[n-16:]
		for i := range tail {
			tail[i] = g.Uniform64()
		}
		block(tail)
	}
	return data
}

// boxMuller16 transforms 16 uniforms in place: pairs (j, j+8) become cos/sin normals.
func boxMuller16(d []float32) {
	for j := 0; j < 8; j++ {
		u1 := 1 - d[j]
		u2 := d[j+8]
		r := float32(math.Sqrt(float64(-2 * logf(u1))))
		theta := float32(6.2831855 * u2)
		s, c := sincosf(theta)
		d[j] = r * c
		d[j+8] = r * s
	}
}

// fma32 is a correctly rounded float32 fused multiply-add.
func fma32(a, b, c float32) float32 {
	p := float64(a) * float64(b) // exact
	cc := float64(c)
	s := p + cc
	// TwoSum: the exact error of the addition.
	bv := s - p
	err := (p - (s - bv)) + (cc - bv)
	if err != 0 && isMidpoint32(s) {
		if err > 0 {
			s = math.Nextafter(s, math.Inf(1))
		} else {
			s = math.Nextafter(s, math.Inf(-1))
		}
	}
	return float32(s)
}

// isMidpoint32 reports whether s lies exactly halfway between two adjacent float32 values.
func isMidpoint32(s float64) bool {
	f := float32(s)
	if float64(f) == s {
		return false
	}
	var other float32
	if float64(f) < s {
		other = math.Nextafter32(f, float32(math.Inf(1)))
	} else {
		other = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return (float64(f)+float64(other))/2 == s
}

// logf is the Cephes-style float32 log of PyTorch's AVX2 kernel (avx_mathfun log256_ps), with
// GCC's multiply-add fusion, for x in (0, 1].
func logf(x float32) float32 {
	bits := math.Float32bits(x)
	e := float32(int32((bits>>23)&0xff) - 126)
	m := math.Float32frombits((bits & 0x807fffff) | 0x3f000000)
	var z float32
	if m < 0.70710677 {
		e--
		z = (m - 1) + m
	} else {
		z = m - 1
	}
	q := z * z
	y := float32(7.0376836292e-2)
	for _, p := range [...]float32{-1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
		1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1} {
		y = fma32(y, z, p)
	}
	y = y * z
	y = fma32(y, q, e*-2.12194440e-4)
	y = fma32(-q, 0.5, y)
	s := z + y
	return fma32(e, 0.693359375, s)
}

// sincosf is the Cephes-style float32 sincos of PyTorch's AVX2 kernel for theta >= 0.
func sincosf(theta float32) (sin, cos float32) {
	j := int32(theta * 1.27323954473516)
	j = (j + 1) &^ 1
	jf := float32(j)
	x := fma32(jf, -0.78515625, theta)
	x = fma32(jf, -2.4187564849853515625e-4, x)
	x = fma32(jf, -3.77489497744594108e-8, x)
	z := x * x
	c := float32(2.443315711809948e-5)
	c = fma32(c, z, -1.388731625493765e-3)
	c = fma32(c, z, 4.166664568298827e-2)
	c = c * z
	c = fma32(c, z, -(z * 0.5))
	c = c + 1
	s := float32(-1.9515295891e-4)
	s = fma32(s, z, 8.3321608736e-3)
	s = fma32(s, z, -1.6666654611e-1)
	s = s * z
	s = fma32(s, x, x)
	if j&2 == 0 {
		sin, cos = s, c
	} else {
		sin, cos = c, s
	}
	if j&4 != 0 {
		sin = -sin
	}
	if (j-2)&4 == 0 {
		cos = -cos
	}
	return sin, cos
}

// PrepareNoise is ComfyUI's prepare_noise: the initial noise for a latent of shape
// [B,C,H,W] from one CPU generator seeded with seed. With batchIndex, row k is the
// batchIndex[k]-th successive randn([1,C,H,W]) draw.
func PrepareNoise(shape []int, seed uint64, batchIndex []int) *tensor.Tensor {
	g := NewGenerator(seed)
	if len(batchIndex) == 0 {
		return g.Randn(shape...)
	}
	row := tensor.Numel(shape[1:])
	maxIdx := 0
	for _, b := range batchIndex {
		if b > maxIdx {
			maxIdx = b
		}
	}
	draws := map[int][]float32{}
	want := map[int]bool{}
	for _, b := range batchIndex {
		want[b] = true
	}
	for i := 0; i <= maxIdx; i++ {
		d := make([]float32, row)
		g.FillRandn(d)
		if want[i] {
			draws[i] = d
		}
	}
	out := tensor.New(append([]int{len(batchIndex)}, shape[1:]...)...)
	for k, b := range batchIndex {
		copy(out.Data[k*row:(k+1)*row], draws[b])
	}
	return out
}
