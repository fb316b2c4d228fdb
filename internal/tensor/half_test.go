package tensor

import (
	"math"
	"testing"
)

func TestF16RoundTripAllValues(t *testing.T) {
	for i := 0; i < 65536; i++ {
		h := uint16(i)
		f := F16ToF32(h)
		if f != f { // NaN
			if g := F32ToF16(f); g&0x7c00 != 0x7c00 || g&0x3ff == 0 {
				t.Fatalf("NaN %04x -> %04x", h, g)
			}
			continue
		}
		if g := F32ToF16(f); g != h {
			t.Fatalf("round trip %04x -> %v -> %04x", h, f, g)
		}
	}
}

func TestF16Known(t *testing.T) {
	cases := []struct {
		f float32
		h uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {65520, 0x7c00}, {1e10, 0x7c00},
		{float32(math.Inf(-1)), 0xfc00}, {5.960464477539063e-08, 0x0001}, {2.9e-08, 0}, {3.0e-08, 1},
		{6.103515625e-05, 0x0400}, {0.333251953125, 0x3555}, {1.0009765625, 0x3c01},
		{1.00048828125, 0x3c00}, // tie -> even
		{1.00146484375, 0x3c02}, // tie -> even (up)
	}
	for _, c := range cases {
		if got := F32ToF16(c.f); got != c.h {
			t.Errorf("F32ToF16(%v) = %04x, want %04x", c.f, got, c.h)
		}
	}
}

func TestBF16(t *testing.T) {
	for _, f := range []float32{0, 1, -3.5, 1e30, -1e-30} {
		if g := BF16ToF32(F32ToBF16(f)); math.Abs(float64(g-f)) > math.Abs(float64(f))/128 {
			t.Errorf("bf16 %v -> %v", f, g)
		}
	}
	if F32ToBF16(1.00390625) != 0x3f80 { // tie to even
		t.Errorf("tie: %04x", F32ToBF16(1.00390625))
	}
	if b := F32ToBF16(float32(math.NaN())); BF16ToF32(b) == BF16ToF32(b) {
		t.Errorf("NaN lost: %04x", b)
	}
	src := []float32{1, -2, 0.5}
	buf := make([]byte, 6)
	F32SliceToBF16(buf, src)
	dst := make([]float32, 3)
	BF16SliceToF32(dst, buf)
	for i := range src {
		if dst[i] != src[i] {
			t.Fatalf("bf16 slice %v", dst)
		}
	}
	F32SliceToF16(buf, src)
	F16SliceToF32(dst, buf)
	for i := range src {
		if dst[i] != src[i] {
			t.Fatalf("f16 slice %v", dst)
		}
	}
}

func BenchmarkF16SliceToF32(b *testing.B) {
	src := make([]byte, 2<<20)
	dst := make([]float32, 1<<20)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		F16SliceToF32(dst, src)
	}
}
