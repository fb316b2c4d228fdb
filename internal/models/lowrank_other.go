//go:build !amd64

package models

// The kernels' pure-Go paths (vars so tests can flip them on every arch).
var (
	hasFMA    = false
	hasAVX512 = false
)

func dot64AVX2(acc, u, d *float32, r, ldd int)                                { panic("unreachable") }
func dot8AVX2(acc, u, d *float32, r, ldd int)                                 { panic("unreachable") }
func addScaledF32AVX2(dst, w, acc *float32, n int, s float32, pf int)         { panic("unreachable") }
func addScaledF16AVX2(dst, w *uint16, acc *float32, n int, s float32, pf int) { panic("unreachable") }
func f16ToF32AVX2(dst *float32, src *uint16, n int)                           { panic("unreachable") }
func f32ToF16AVX2(dst *uint16, src *float32, n int)                           { panic("unreachable") }
func dot64x2AVX512(acc0, acc1, u0, u1, d *float32, r, ldd int)                { panic("unreachable") }
