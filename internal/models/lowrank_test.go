package models

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/comfygo/comfygo/internal/tensor"
)

func randSlice(rng *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64())
	}
	return out
}

// TestAddLowRank checks the tiled kernels (and their tails) against a float64 reference, on
// every kernel set this CPU has (AVX-512 two-row, AVX2, pure Go).
func TestAddLowRank(t *testing.T) {
	avx2, avx512 := hasFMA, hasAVX512
	defer func() { hasFMA, hasAVX512 = avx2, avx512 }()
	for _, mode := range []struct{ avx2, avx512 bool }{{avx2, avx512}, {avx2, false}, {false, false}} {
		hasFMA, hasAVX512 = mode.avx2, mode.avx512
		testAddLowRank(t)
	}
}

func testAddLowRank(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct{ m, r, n int }{
		{1, 1, 1}, {3, 0, 5}, {5, 3, 13}, {7, 4, 64}, {33, 8, 72}, {70, 64, 130}, {40, 16, 2880 + 5},
	} {
		u, d := randSlice(rng, c.m*c.r), randSlice(rng, c.r*c.n)
		w := randSlice(rng, c.m*c.n)
		s := float32(0.37)
		ref := make([]float64, c.m*c.n)
		for i := 0; i < c.m; i++ {
			for j := 0; j < c.n; j++ {
				var acc float64
				for p := 0; p < c.r; p++ {
					acc += float64(u[i*c.r+p]) * float64(d[p*c.n+j])
				}
				ref[i*c.n+j] = acc
			}
		}
		tol := 1e-5 * math.Sqrt(float64(c.r)+1)
		got := MatMulF32(u, d, c.m, c.r, c.n)
		for i, v := range got {
			if math.Abs(float64(v)-ref[i]) > tol*(1+math.Abs(ref[i])) {
				t.Fatalf("%v matmul[%d] = %v, want %v", c, i, v, ref[i])
			}
		}
		dst := append([]float32(nil), w...)
		AddLowRankF32(dst, dst, u, d, c.m, c.r, c.n, s) // in place
		for i, v := range dst {
			want := float64(w[i]) + float64(s)*ref[i]
			if math.Abs(float64(v)-want) > tol*(1+math.Abs(want)) {
				t.Fatalf("%v add[%d] = %v, want %v", c, i, v, want)
			}
		}
		wh := make([]uint16, len(w))
		f32ToF16(wh, w)
		dh := make([]uint16, len(w))
		AddLowRankF16(dh, wh, u, d, c.m, c.r, c.n, s)
		for i, h := range dh {
			want := tensor.F16ToF32(tensor.F32ToF16(float32(float64(tensor.F16ToF32(wh[i])) + float64(s)*ref[i])))
			if got := tensor.F16ToF32(h); math.Abs(float64(got-want)) > 1e-3*(1+math.Abs(float64(want))) {
				t.Fatalf("%v f16[%d] = %v, want %v", c, i, got, want)
			}
		}
	}
}

// TestHalfConversions checks the vector conversions against the scalar ones bit for bit,
// including subnormals, infinities and ties.
func TestHalfConversions(t *testing.T) {
	var halves []uint16
	for h := 0; h < 1<<16; h++ {
		if v := tensor.F16ToF32(uint16(h)); v == v { // NaN payloads may differ
			halves = append(halves, uint16(h))
		}
	}
	f := make([]float32, len(halves))
	f16ToF32(f, halves)
	for i, h := range halves {
		if math.Float32bits(f[i]) != math.Float32bits(tensor.F16ToF32(h)) {
			t.Fatalf("f16ToF32(%#04x) = %v, want %v", h, f[i], tensor.F16ToF32(h))
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	src := make([]float32, 1<<16+3)
	for i := range src {
		switch i % 4 {
		case 0:
			src[i] = float32(rng.NormFloat64())
		case 1:
			src[i] = float32(rng.NormFloat64() * 1e-6) // subnormal halves
		case 2:
			src[i] = float32(rng.NormFloat64() * 7e4) // overflow to inf
		default: // exact ties between two halves
			h := uint16(rng.IntN(0x7bff))
			a, b := tensor.F16ToF32(h), tensor.F16ToF32(h+1)
			src[i] = (a + b) / 2
		}
	}
	hs := make([]uint16, len(src))
	f32ToF16(hs, src)
	for i, v := range src {
		if want := tensor.F32ToF16(v); hs[i] != want {
			t.Fatalf("f32ToF16(%v) = %#04x, want %#04x", v, hs[i], want)
		}
	}
}

func BenchmarkAddLowRankF16(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	m, r, n := 1280, 64, 1280*9
	u, d := randSlice(rng, m*r), randSlice(rng, r*n)
	w := make([]uint16, m*n)
	dst := make([]uint16, m*n)
	b.SetBytes(int64(m * n * 2))
	for b.Loop() {
		AddLowRankF16(dst, w, u, d, m, r, n, 0.5)
	}
	b.ReportMetric(float64(2*m*n*r)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
