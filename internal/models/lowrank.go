package models

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/comfygo/comfygo/internal/tensor"
)

// Merge kernels for low-rank patches: W + s·(U·D) computed tile by tile (one output row × 64
// columns at a time, the rank loop in eight AVX/FMA3 accumulators on amd64, or two rows in
// sixteen with AVX-512VL; pure Go elsewhere), the result written
// straight into the destination dtype. Rows are handed out in blocks to GOMAXPROCS goroutines;
// within a block the column tiles run outermost so a packed 64×64 tile of D stays in L1, and
// the block's products are then added to W in one contiguous stream.

const (
	lrTile     = 64 // columns per kernel call
	lrRowBlock = 32 // rows per work item
)

// AddLowRankF32 sets dst = w + s·(u·d) for u [m,r] and d [r,n] (row-major) and w, dst [m,n].
// A nil w counts as zero; dst may be w. The sum is formed as in PyTorch: w + (s·(u·d)).
func AddLowRankF32(dst, w, u, d []float32, m, r, n int, s float32) {
	checkLowRank(len(dst), w == nil || len(w) == m*n, len(u), len(d), m, r, n)
	lowRankTiles(u, d, m, r, n, func(o int, acc []float32) {
		var wp []float32
		if w != nil {
			wp = w[o : o+len(acc)]
		}
		addScaledF32(dst[o:o+len(acc)], wp, acc, s, 512)
	})
}

// AddLowRankF16 is AddLowRankF32 for IEEE half weights (dst and w hold the bits): the sum is
// formed in float32 and rounded to nearest even once.
func AddLowRankF16(dst, w []uint16, u, d []float32, m, r, n int, s float32) {
	checkLowRank(len(dst), len(w) == m*n, len(u), len(d), m, r, n)
	lowRankTiles(u, d, m, r, n, func(o int, acc []float32) {
		addScaledF16(dst[o:o+len(acc)], w[o:o+len(acc)], acc, s, 512)
	})
}

// MatMulF32 returns a [m,k] · b [k,n] (row-major) on the same kernel.
func MatMulF32(a, b []float32, m, k, n int) []float32 {
	c := make([]float32, m*n)
	AddLowRankF32(c, nil, a, b, m, k, n, 1)
	return c
}

func checkLowRank(dst int, wOK bool, u, d, m, r, n int) {
	if dst != m*n || !wOK || u != m*r || d != r*n {
		panic(fmt.Sprintf("models: low-rank merge sizes dst %d u %d d %d for [%d,%d]·[%d,%d]", dst, u, d, m, r, r, n))
	}
}

// lowRankTiles calls emit(offset, acc) with acc = (u·d)[i0:i1, :] flattened and offset i0·n,
// for row blocks covering the [m,n] product, from several goroutines (each row exactly once).
// The products of a block are formed tile by tile into a scratch buffer so that emit (adding W,
// converting) streams whole contiguous rows.
func lowRankTiles(u, d []float32, m, r, n int, emit func(o int, acc []float32)) {
	if m == 0 || n == 0 {
		return
	}
	rowBlock := max(2, min(lrRowBlock, (1<<17)/n)) // scratch ≤ 512 KiB (L2) when n allows
	blocks := (m + rowBlock - 1) / rowBlock
	workers := min(runtime.GOMAXPROCS(0), blocks)
	if int64(m)*int64(n)*int64(max(r, 1)) < 1<<18 {
		workers = 1
	}
	// D's 64-column tiles packed contiguously ([n/64][r][64]): rows of D a power-of-two
	// multiple apart would share a few L1 sets and evict each other.
	tiles := n / lrTile
	packed := make([]float32, tiles*r*lrTile)
	for t := range tiles {
		for p := 0; p < r; p++ {
			copy(packed[(t*r+p)*lrTile:(t*r+p+1)*lrTile], d[p*n+t*lrTile:])
		}
	}
	var next atomic.Int64
	work := func() {
		acc := make([]float32, rowBlock*n)
		for {
			b := int(next.Add(1)) - 1
			if b >= blocks {
				return
			}
			lo, hi := b*rowBlock, min((b+1)*rowBlock, m)
			j0 := 0
			for ; j0+lrTile <= n; j0 += lrTile {
				pack := packed[j0*r : (j0+lrTile)*r]
				i := lo
				if hasAVX512 && r > 0 {
					for ; i+2 <= hi; i += 2 {
						a0 := acc[(i-lo)*n+j0 : (i-lo)*n+j0+lrTile]
						a1 := acc[(i+1-lo)*n+j0 : (i+1-lo)*n+j0+lrTile]
						dot64x2AVX512(&a0[0], &a1[0], &u[i*r], &u[(i+1)*r], &pack[0], r, lrTile)
					}
				}
				for ; i < hi; i++ {
					dotTile(acc[(i-lo)*n+j0:(i-lo)*n+j0+lrTile], u[i*r:(i+1)*r], pack, 0, r, lrTile)
				}
			}
			for ; j0 < n; j0 += 8 {
				w := min(8, n-j0)
				for i := lo; i < hi; i++ {
					dotTile(acc[(i-lo)*n+j0:(i-lo)*n+j0+w], u[i*r:(i+1)*r], d, j0, r, n)
				}
			}
			emit(lo*n, acc[:(hi-lo)*n])
		}
	}
	if workers <= 1 {
		work()
		return
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	wg.Wait()
}

// dotTile sets acc[j] = Σ_p u[p]·d[p·n + j0 + j].
func dotTile(acc, u, d []float32, j0, r, n int) {
	if r == 0 {
		clear(acc)
		return
	}
	_ = d[(r-1)*n+j0+len(acc)-1] // bounds for the assembly
	if hasFMA {
		switch len(acc) {
		case lrTile:
			dot64AVX2(&acc[0], &u[0], &d[j0], r, n)
			return
		case 8:
			dot8AVX2(&acc[0], &u[0], &d[j0], r, n)
			return
		}
	}
	clear(acc)
	for p := 0; p < r; p++ {
		a := u[p]
		row := d[p*n+j0 : p*n+j0+len(acc)]
		for j := range acc {
			acc[j] += a * row[j]
		}
	}
}

// addScaledF32 sets dst = w + s·acc (w nil: s·acc), prefetching pf bytes ahead.
func addScaledF32(dst, w, acc []float32, s float32, pf int) {
	k := 0
	if hasFMA && len(acc) >= 8 {
		k = len(acc) &^ 7
		var wp *float32
		if w != nil {
			wp = &w[0]
		}
		addScaledF32AVX2(&dst[0], wp, &acc[0], k, s, pf)
	}
	for j := k; j < len(acc); j++ {
		v := s * acc[j]
		if w != nil {
			v = w[j] + v
		}
		dst[j] = v
	}
}

// addScaledF16 sets dst = f16(f32(w) + s·acc), prefetching pf bytes ahead.
func addScaledF16(dst, w []uint16, acc []float32, s float32, pf int) {
	k := 0
	if hasFMA && len(acc) >= 8 {
		k = len(acc) &^ 7
		addScaledF16AVX2(&dst[0], &w[0], &acc[0], k, s, pf)
	}
	for j := k; j < len(acc); j++ {
		dst[j] = tensor.F32ToF16(tensor.F16ToF32(w[j]) + s*acc[j])
	}
}

// f16ToF32 converts IEEE half bits to float32.
func f16ToF32(dst []float32, src []uint16) {
	k := 0
	if hasFMA && len(src) >= 8 {
		k = len(src) &^ 7
		f16ToF32AVX2(&dst[0], &src[0], k)
	}
	for j := k; j < len(src); j++ {
		dst[j] = tensor.F16ToF32(src[j])
	}
}

// f32ToF16 converts float32 to IEEE half bits (round to nearest even).
func f32ToF16(dst []uint16, src []float32) {
	k := 0
	if hasFMA && len(src) >= 8 {
		k = len(src) &^ 7
		f32ToF16AVX2(&dst[0], &src[0], k)
	}
	for j := k; j < len(src); j++ {
		dst[j] = tensor.F32ToF16(src[j])
	}
}
