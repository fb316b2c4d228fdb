package models

import (
	"context"
	"fmt"
	"testing"

	"github.com/comfygo/comfygo/internal/tensor"
)

// With a pointwise "decoder" (nearest ×8 upsampling of the first 3 channels) every tiling
// must reproduce the untiled result exactly, and every tile must stay inside the sample.
func TestTiledScalePointwise(t *testing.T) {
	up := 8
	calls := 0
	fn := func(_ context.Context, s *tensor.Tensor) (*tensor.Tensor, error) {
		calls++
		c, h, w := s.Shape[1], s.Shape[2], s.Shape[3]
		out := tensor.New(1, 3, h*up, w*up)
		for ch := 0; ch < 3; ch++ {
			for y := 0; y < h*up; y++ {
				for x := 0; x < w*up; x++ {
					out.Data[(ch*h*up+y)*w*up+x] = s.Data[(ch*h+y/up)*w+x/up]
				}
			}
		}
		_ = c
		return out, nil
	}
	s := tensor.New(1, 4, 11, 13)
	for i := range s.Data {
		s.Data[i] = float32(i%17) - 8
	}
	whole, _ := fn(context.Background(), s)
	for _, c := range [][3]int{{4, 4, 1}, {8, 3, 2}, {5, 16, 0}, {11, 13, 2}, {2, 2, 1}} {
		calls = 0
		got, err := tiledScale(context.Background(), s, c[0], c[1], c[2], up, fn)
		if err != nil {
			t.Fatal(err)
		}
		var d float64
		for i := range got {
			d = max(d, float64(abs32(got[i]-whole.Data[i])))
		}
		if d > 1e-5 {
			t.Errorf("tile %v: max diff %g over %d tiles", c, d, calls)
		}
	}
	if fmt.Sprint(featherMask(6, 2)) != "[0.5 1 1 1 1 0.5]" || fmt.Sprint(featherMask(3, 4)) != "[1 1 1]" {
		t.Errorf("feather masks %v %v", featherMask(6, 2), featherMask(3, 4))
	}
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}
