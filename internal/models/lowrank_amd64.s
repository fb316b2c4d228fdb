#include "textflag.h"

// func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eaxArg+0(FP), AX
	MOVL ecxArg+4(FP), CX
	CPUID
	MOVL AX, eax+8(FP)
	MOVL BX, ebx+12(FP)
	MOVL CX, ecx+16(FP)
	MOVL DX, edx+20(FP)
	RET

// func xgetbv0() (eax uint32)
TEXT ·xgetbv0(SB), NOSPLIT, $0-4
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	RET

// func dot64AVX2(acc, u, d *float32, r, ldd int)
// acc[0:64] = Σ_{p<r} u[p]·d[p·ldd : p·ldd+64]
TEXT ·dot64AVX2(SB), NOSPLIT, $0-40
	MOVQ acc+0(FP), DI
	MOVQ u+8(FP), SI
	MOVQ d+16(FP), DX
	MOVQ r+24(FP), CX
	MOVQ ldd+32(FP), BX
	SHLQ $2, BX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	TESTQ CX, CX
	JEQ   done64

loop64:
	VBROADCASTSS (SI), Y8
	VFMADD231PS (DX), Y8, Y0
	VFMADD231PS 32(DX), Y8, Y1
	VFMADD231PS 64(DX), Y8, Y2
	VFMADD231PS 96(DX), Y8, Y3
	VFMADD231PS 128(DX), Y8, Y4
	VFMADD231PS 160(DX), Y8, Y5
	VFMADD231PS 192(DX), Y8, Y6
	VFMADD231PS 224(DX), Y8, Y7
	ADDQ $4, SI
	ADDQ BX, DX
	DECQ CX
	JNE  loop64

done64:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	VZEROUPPER
	RET

// func dot8AVX2(acc, u, d *float32, r, ldd int)
// acc[0:8] = Σ_{p<r} u[p]·d[p·ldd : p·ldd+8]
TEXT ·dot8AVX2(SB), NOSPLIT, $0-40
	MOVQ acc+0(FP), DI
	MOVQ u+8(FP), SI
	MOVQ d+16(FP), DX
	MOVQ r+24(FP), CX
	MOVQ ldd+32(FP), BX
	SHLQ $2, BX
	VXORPS Y0, Y0, Y0
	TESTQ CX, CX
	JEQ   done8

loop8:
	VBROADCASTSS (SI), Y8
	VFMADD231PS (DX), Y8, Y0
	ADDQ $4, SI
	ADDQ BX, DX
	DECQ CX
	JNE  loop8

done8:
	VMOVUPS Y0, (DI)
	VZEROUPPER
	RET

// func addScaledF32AVX2(dst, w, acc *float32, n int, s float32, pf int)
// dst[i] = w[i] + s·acc[i] (w nil: s·acc[i]); n is a multiple of 8. The cache lines pf bytes
// ahead of dst and w are prefetched.
TEXT ·addScaledF32AVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ acc+16(FP), DX
	MOVQ n+24(FP), CX
	VBROADCASTSS s+32(FP), Y8
	MOVQ pf+40(FP), BX
	SHRQ $3, CX
	JEQ  doneF32
	TESTQ SI, SI
	JEQ  loopF32nil

loopF32:
	PREFETCHT0 (SI)(BX*1)
	PREFETCHT0 (DI)(BX*1)
	VMULPS  (DX), Y8, Y0
	VADDPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DX
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNE  loopF32
	JMP  doneF32

loopF32nil:
	PREFETCHT0 (DI)(BX*1)
	VMULPS  (DX), Y8, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ CX
	JNE  loopF32nil

doneF32:
	VZEROUPPER
	RET

// func addScaledF16AVX2(dst, w *uint16, acc *float32, n int, s float32, pf int)
// dst[i] = f16(f32(w[i]) + s·acc[i]) (round to nearest even); n is a multiple of 8. The cache
// lines pf bytes ahead of dst and w are prefetched.
TEXT ·addScaledF16AVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ acc+16(FP), DX
	MOVQ n+24(FP), CX
	VBROADCASTSS s+32(FP), Y8
	MOVQ pf+40(FP), BX
	SHRQ $3, CX
	JEQ  doneF16

loopF16:
	PREFETCHT0 (SI)(BX*1)
	PREFETCHT0 (DI)(BX*1)
	VCVTPH2PS (SI), Y1
	VMULPS    (DX), Y8, Y0
	VADDPS    Y0, Y1, Y0
	VCVTPS2PH $0, Y0, (DI)
	ADDQ $32, DX
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ CX
	JNE  loopF16

doneF16:
	VZEROUPPER
	RET

// func f16ToF32AVX2(dst *float32, src *uint16, n int)   (n multiple of 8)
TEXT ·f16ToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JEQ  doneH2S

loopH2S:
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	ADDQ $16, SI
	ADDQ $32, DI
	DECQ CX
	JNE  loopH2S

doneH2S:
	VZEROUPPER
	RET

// func f32ToF16AVX2(dst *uint16, src *float32, n int)   (n multiple of 8)
TEXT ·f32ToF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JEQ  doneS2H

loopS2H:
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, (DI)
	ADDQ $32, SI
	ADDQ $16, DI
	DECQ CX
	JNE  loopS2H

doneS2H:
	VZEROUPPER
	RET

// func dot64x2AVX512(acc0, acc1, u0, u1, d *float32, r, ldd int)
// Two rows at once: acc0[0:64] = Σ_p u0[p]·d[p·ldd:], acc1 likewise with u1. Uses the
// AVX-512VL register file (Y16–Y31) for sixteen accumulators with D's tile row in Y0–Y7.
TEXT ·dot64x2AVX512(SB), NOSPLIT, $0-56
	MOVQ acc0+0(FP), DI
	MOVQ acc1+8(FP), R8
	MOVQ u0+16(FP), SI
	MOVQ u1+24(FP), R9
	MOVQ d+32(FP), DX
	MOVQ r+40(FP), CX
	MOVQ ldd+48(FP), BX
	SHLQ $2, BX
	VPXORD Y16, Y16, Y16
	VPXORD Y17, Y17, Y17
	VPXORD Y18, Y18, Y18
	VPXORD Y19, Y19, Y19
	VPXORD Y20, Y20, Y20
	VPXORD Y21, Y21, Y21
	VPXORD Y22, Y22, Y22
	VPXORD Y23, Y23, Y23
	VPXORD Y24, Y24, Y24
	VPXORD Y25, Y25, Y25
	VPXORD Y26, Y26, Y26
	VPXORD Y27, Y27, Y27
	VPXORD Y28, Y28, Y28
	VPXORD Y29, Y29, Y29
	VPXORD Y30, Y30, Y30
	VPXORD Y31, Y31, Y31
	TESTQ CX, CX
	JEQ   donex2

loopx2:
	VMOVUPS 0(DX), Y0
	VMOVUPS 32(DX), Y1
	VMOVUPS 64(DX), Y2
	VMOVUPS 96(DX), Y3
	VMOVUPS 128(DX), Y4
	VMOVUPS 160(DX), Y5
	VMOVUPS 192(DX), Y6
	VMOVUPS 224(DX), Y7
	VBROADCASTSS (SI), Y8
	VBROADCASTSS (R9), Y9
	VFMADD231PS Y0, Y8, Y16
	VFMADD231PS Y1, Y8, Y17
	VFMADD231PS Y2, Y8, Y18
	VFMADD231PS Y3, Y8, Y19
	VFMADD231PS Y4, Y8, Y20
	VFMADD231PS Y5, Y8, Y21
	VFMADD231PS Y6, Y8, Y22
	VFMADD231PS Y7, Y8, Y23
	VFMADD231PS Y0, Y9, Y24
	VFMADD231PS Y1, Y9, Y25
	VFMADD231PS Y2, Y9, Y26
	VFMADD231PS Y3, Y9, Y27
	VFMADD231PS Y4, Y9, Y28
	VFMADD231PS Y5, Y9, Y29
	VFMADD231PS Y6, Y9, Y30
	VFMADD231PS Y7, Y9, Y31
	ADDQ $4, SI
	ADDQ $4, R9
	ADDQ BX, DX
	DECQ CX
	JNE  loopx2

donex2:
	VMOVUPS Y16, 0(DI)
	VMOVUPS Y17, 32(DI)
	VMOVUPS Y18, 64(DI)
	VMOVUPS Y19, 96(DI)
	VMOVUPS Y20, 128(DI)
	VMOVUPS Y21, 160(DI)
	VMOVUPS Y22, 192(DI)
	VMOVUPS Y23, 224(DI)
	VMOVUPS Y24, 0(R8)
	VMOVUPS Y25, 32(R8)
	VMOVUPS Y26, 64(R8)
	VMOVUPS Y27, 96(R8)
	VMOVUPS Y28, 128(R8)
	VMOVUPS Y29, 160(R8)
	VMOVUPS Y30, 192(R8)
	VMOVUPS Y31, 224(R8)
	VZEROUPPER
	RET
