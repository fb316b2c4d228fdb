package models

//go:noescape
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

func xgetbv0() (eax uint32)

//go:noescape
func dot64AVX2(acc, u, d *float32, r, ldd int)

//go:noescape
func dot64x2AVX512(acc0, acc1, u0, u1, d *float32, r, ldd int)

//go:noescape
func dot8AVX2(acc, u, d *float32, r, ldd int)

//go:noescape
func addScaledF32AVX2(dst, w, acc *float32, n int, s float32, pf int)

//go:noescape
func addScaledF16AVX2(dst, w *uint16, acc *float32, n int, s float32, pf int)

//go:noescape
func f16ToF32AVX2(dst *float32, src *uint16, n int)

//go:noescape
func f32ToF16AVX2(dst *uint16, src *float32, n int)

// hasAVX512 reports AVX-512F+VL with the OS saving the ZMM/opmask state (two-row kernel).
var hasAVX512 = hasFMA && detectAVX512()

func detectAVX512() bool {
	if maxID, _, _, _ := cpuid(0, 0); maxID < 7 {
		return false
	}
	_, b7, _, _ := cpuid(7, 0)
	const f, vl = 1 << 16, 1 << 31
	return b7&f != 0 && b7&vl != 0 && xgetbv0()&0xe6 == 0xe6
}

// hasFMA reports AVX + FMA3 + F16C with the OS saving YMM state: all the "AVX2" kernels use
// (no AVX2 integer instructions), so CPUs or VMs that hide the AVX2 flag still get them.
var hasFMA = detectFMA()

func detectFMA() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 1 {
		return false
	}
	_, _, c1, _ := cpuid(1, 0)
	const fma, osxsave, avx, f16c = 1 << 12, 1 << 27, 1 << 28, 1 << 29
	if c1&fma == 0 || c1&osxsave == 0 || c1&avx == 0 || c1&f16c == 0 {
		return false
	}
	return xgetbv0()&6 == 6 // XMM and YMM state enabled
}
