package sampling

import "testing"

func TestBrownianVector(t *testing.T) {
	raw := []float64{14.614643, 9.1029291, 5.4783921, 3.1686049, 1.749418, 0.91407269, 0.44691837, 0.20139836, 0.081910297, 0.029167177, 0}
	s := make([]float64, len(raw))
	for i, v := range raw {
		s[i] = float64(float32(v))
	}
	bn := NewBrownianNoise([]int{1, 4, 4, 5}, s[9], s[0], 0)
	n0 := bn.Noise(s[0], s[1])
	for i, w := range []float32{0.071745627, -1.1973678, -0.10586658, 1.1643318} {
		if d := n0.Data[i] - w; d > 2e-7 || d < -2e-7 {
			t.Errorf("noise(s0,s1)[%d] = %.9g, want %.9g", i, n0.Data[i], w)
		}
	}
	n8 := bn.Noise(s[8], s[9])
	for i, w := range []float32{-1.0867695, 0.024519153, 0.52069604, 0.12762322} {
		if d := n8.Data[i] - w; d > 2e-7 || d < -2e-7 {
			t.Errorf("noise(s8,s9)[%d] = %.9g, want %.9g", i, n8.Data[i], w)
		}
	}
}

func TestSeedSequenceDeterministic(t *testing.T) {
	a := seedSequence(0, nil, 3)
	b := seedSequence(0, nil, 3)
	c := seedSequence(1<<32+7, []uint64{1, 1}, 4)
	if a[0] != b[0] || a[0] == a[1] || c[0] == a[0] {
		t.Errorf("seed sequence states %v %v %v", a, b, c)
	}
}
