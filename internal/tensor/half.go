package tensor

import "math"

// F16ToF32 converts one IEEE binary16 value (as its bit pattern) to float32, exactly.
func F16ToF32(h uint16) float32 { return f16Table[h] }

// BF16ToF32 converts one bfloat16 value (the top 16 bits of a float32) to float32, exactly.
func BF16ToF32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// F32ToBF16 converts float32 to bfloat16 with round-to-nearest-even (NaN stays NaN).
func F32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 { // NaN: keep quiet NaN with sign
		return uint16(u>>16) | 0x40
	}
	u += 0x7fff + (u>>16)&1
	return uint16(u >> 16)
}

// F32ToF16 converts float32 to IEEE binary16 with round-to-nearest-even; values beyond the
// binary16 range become ±Inf, NaN stays NaN, tiny values become subnormals or ±0.
func F32ToF16(f float32) uint16 {
	u := math.Float32bits(f)
	sign := uint16(u>>16) & 0x8000
	exp := int32(u>>23) & 0xff
	man := u & 0x7fffff
	if exp == 0xff { // Inf or NaN
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint32(14 - e) // 24-bit mantissa -> (11+e-1) bits
		half := uint32(1) << (shift - 1)
		rest := man & ((uint32(1) << shift) - 1)
		m := man >> shift
		if rest > half || (rest == half && m&1 == 1) {
			m++
		}
		return sign | uint16(m)
	}
	m := man >> 13
	rest := man & 0x1fff
	h := uint32(e)<<10 | m
	if rest > 0x1000 || (rest == 0x1000 && m&1 == 1) {
		h++ // may carry into the exponent, giving Inf correctly
	}
	return sign | uint16(h)
}

var f16Table = func() *[65536]float32 {
	var t [65536]float32
	for i := range t {
		t[i] = f16ToF32Slow(uint16(i))
	}
	return &t
}()

func f16ToF32Slow(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		v := float32(man) / 1024 / 16384 // man * 2^-24
		if sign != 0 {
			return -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// F16SliceToF32 converts little-endian binary16 bytes (len(src) == 2*len(dst)) into dst.
func F16SliceToF32(dst []float32, src []byte) {
	_ = src[2*len(dst)-1:]
	for i := range dst {
		dst[i] = f16Table[uint16(src[2*i])|uint16(src[2*i+1])<<8]
	}
}

// BF16SliceToF32 converts little-endian bfloat16 bytes (len(src) == 2*len(dst)) into dst.
func BF16SliceToF32(dst []float32, src []byte) {
	_ = src[2*len(dst)-1:]
	for i := range dst {
		dst[i] = math.Float32frombits(uint32(src[2*i])<<16 | uint32(src[2*i+1])<<24)
	}
}

// F32SliceToF16 converts dst values to little-endian binary16 bytes (len(dst) == 2*len(src)).
func F32SliceToF16(dst []byte, src []float32) {
	_ = dst[2*len(src)-1:]
	for i, v := range src {
		h := F32ToF16(v)
		dst[2*i], dst[2*i+1] = byte(h), byte(h>>8)
	}
}

// F32SliceToBF16 converts src values to little-endian bfloat16 bytes (len(dst) == 2*len(src)).
func F32SliceToBF16(dst []byte, src []float32) {
	_ = dst[2*len(src)-1:]
	for i, v := range src {
		h := F32ToBF16(v)
		dst[2*i], dst[2*i+1] = byte(h), byte(h>>8)
	}
}
