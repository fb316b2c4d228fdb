// Package imageops holds the host-side image and latent operations of the built-in nodes:
// ComfyUI's common_upscale (nearest-exact, bilinear, area, bicubic, bislerp, lanczos) with its
// center crop, and conversions between IMAGE tensors and Go images.
package imageops

import (
	"fmt"
	"math"

	"github.com/comfygo/comfygo/internal/tensor"
)

// Upscale resizes an NCHW tensor to width×height like ComfyUI's comfy.utils.common_upscale:
// crop "center" first cuts the source to the target aspect ratio, then method resamples
// ("nearest-exact", "bilinear", "area", "bicubic" follow torch's interpolate with
// align_corners=False; "bislerp" is ComfyUI's spherical bilinear; "lanczos" is PIL's Lanczos on
// 8-bit pixels).
func Upscale(t *tensor.Tensor, width, height int, method, crop string) (*tensor.Tensor, error) {
	if len(t.Shape) != 4 {
		return nil, fmt.Errorf("upscale: want an NCHW tensor, got shape %v", t.Shape)
	}
	if width <= 0 || height <= 0 {
		return nil, fmt.Errorf("upscale: invalid size %dx%d", width, height)
	}
	if crop == "center" {
		t = centerCrop(t, width, height)
	}
	switch method {
	case "nearest-exact":
		return separable(t, width, height, nearestWeights), nil
	case "bilinear":
		return separable(t, width, height, bilinearWeights), nil
	case "area":
		return separable(t, width, height, areaWeights), nil
	case "bicubic":
		return separable(t, width, height, bicubicWeights), nil
	case "lanczos":
		return lanczos(t, width, height), nil
	case "bislerp":
		return bislerp(t, width, height), nil
	}
	return nil, fmt.Errorf("upscale: unknown method %q", method)
}

// centerCrop narrows t to the aspect ratio width/height, as common_upscale's crop="center".
func centerCrop(t *tensor.Tensor, width, height int) *tensor.Tensor {
	oldH, oldW := t.Shape[2], t.Shape[3]
	oldAspect := float64(oldW) / float64(oldH)
	newAspect := float64(width) / float64(height)
	x, y := 0, 0
	if oldAspect > newAspect {
		x = int(math.RoundToEven((float64(oldW) - float64(oldW)*(newAspect/oldAspect)) / 2))
	} else if oldAspect < newAspect {
		y = int(math.RoundToEven((float64(oldH) - float64(oldH)*(oldAspect/newAspect)) / 2))
	}
	if x == 0 && y == 0 {
		return t
	}
	n, c := t.Shape[0], t.Shape[1]
	h, w := oldH-2*y, oldW-2*x
	out := tensor.New(n, c, h, w)
	for p := 0; p < n*c; p++ {
		for r := 0; r < h; r++ {
			src := t.Data[p*oldH*oldW+(r+y)*oldW+x:]
			copy(out.Data[p*h*w+r*w:p*h*w+(r+1)*w], src[:w])
		}
	}
	return out
}

// tap is one source index and its weight.
type tap struct {
	idx int
	w   float32
}

// weightsFunc returns, for each output position, the source taps along one axis.
type weightsFunc func(in, out int) [][]tap

// separable resamples the last two axes with per-axis tap tables (width first, then height).
func separable(t *tensor.Tensor, width, height int, wf weightsFunc) *tensor.Tensor {
	n, c, h, w := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	wx := wf(w, width)
	wy := wf(h, height)
	tmp := make([]float32, h*width)
	out := tensor.New(n, c, height, width)
	for p := 0; p < n*c; p++ {
		src := t.Data[p*h*w : (p+1)*h*w]
		for r := 0; r < h; r++ {
			row := src[r*w : (r+1)*w]
			for x, taps := range wx {
				var s float32
				for _, tp := range taps {
					s += row[tp.idx] * tp.w
				}
				tmp[r*width+x] = s
			}
		}
		dst := out.Data[p*height*width : (p+1)*height*width]
		for y, taps := range wy {
			for x := 0; x < width; x++ {
				var s float32
				for _, tp := range taps {
					s += tmp[tp.idx*width+x] * tp.w
				}
				dst[y*width+x] = s
			}
		}
	}
	return out
}

func scaleOf(in, out int) float32 { return float32(in) / float32(out) }

func nearestWeights(in, out int) [][]tap {
	s := scaleOf(in, out)
	res := make([][]tap, out)
	for x := range res {
		i := int(float32(math.Floor(float64((float32(x) + 0.5) * s))))
		res[x] = []tap{{min(i, in-1), 1}}
	}
	return res
}

// linearSource is torch's source index and fraction for align_corners=False linear modes.
func linearSource(x int, s float32) (int, float32) {
	src := (float32(x)+0.5)*s - 0.5
	if src < 0 {
		src = 0
	}
	i0 := int(src)
	return i0, src - float32(i0)
}

func bilinearWeights(in, out int) [][]tap {
	s := scaleOf(in, out)
	res := make([][]tap, out)
	for x := range res {
		i0, l := linearSource(x, s)
		i1 := i0
		if i0 < in-1 {
			i1 = i0 + 1
		}
		res[x] = []tap{{i0, 1 - l}, {i1, l}}
	}
	return res
}

func areaWeights(in, out int) [][]tap {
	res := make([][]tap, out)
	for x := range res {
		start := (x * in) / out
		end := ((x+1)*in + out - 1) / out
		w := 1 / float32(end-start)
		for i := start; i < end; i++ {
			res[x] = append(res[x], tap{i, w})
		}
	}
	return res
}

func cubic(t float32) [4]float32 {
	const a = -0.75
	c1 := func(x float32) float32 { return ((a+2)*x-(a+3))*x*x + 1 }
	c2 := func(x float32) float32 { return ((a*x-5*a)*x+8*a)*x - 4*a }
	return [4]float32{c2(t + 1), c1(t), c1(1 - t), c2(2 - t)}
}

func bicubicWeights(in, out int) [][]tap {
	s := scaleOf(in, out)
	res := make([][]tap, out)
	for x := range res {
		src := (float32(x)+0.5)*s - 0.5
		fl := float32(math.Floor(float64(src)))
		i0 := int(fl)
		co := cubic(src - fl)
		for k := 0; k < 4; k++ {
			i := min(max(i0-1+k, 0), in-1)
			res[x] = append(res[x], tap{i, co[k]})
		}
	}
	return res
}
