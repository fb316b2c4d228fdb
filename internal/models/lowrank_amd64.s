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
// after dst and w (the next row's tile) are prefetched.
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
// lines pf bytes after dst and w are prefetched.
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
