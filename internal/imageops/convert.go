package imageops

import (
	"fmt"
	"image"
	"image/draw"

	"github.com/comfygo/comfygo/internal/tensor"
)

// ToImage converts item b of an IMAGE tensor [B,H,W,C] (C = 1, 3 or 4) to an 8-bit image with
// SaveImage's pixel rule (clip(255·v) truncated, in float32).
func ToImage(t *tensor.Tensor, b int) (image.Image, error) {
	if len(t.Shape) != 4 {
		return nil, fmt.Errorf("image tensor: want [B,H,W,C], got shape %v", t.Shape)
	}
	h, w, c := t.Shape[1], t.Shape[2], t.Shape[3]
	if b < 0 || b >= t.Shape[0] {
		return nil, fmt.Errorf("image tensor: batch index %d out of range %d", b, t.Shape[0])
	}
	px := t.Data[b*h*w*c : (b+1)*h*w*c]
	switch c {
	case 1:
		img := image.NewGray(image.Rect(0, 0, w, h))
		for i := range img.Pix {
			img.Pix[i] = to8bit(px[i])
		}
		return img, nil
	case 3:
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for i := 0; i < h*w; i++ {
			img.Pix[4*i] = to8bit(px[3*i])
			img.Pix[4*i+1] = to8bit(px[3*i+1])
			img.Pix[4*i+2] = to8bit(px[3*i+2])
			img.Pix[4*i+3] = 255
		}
		return img, nil
	case 4:
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for i := range img.Pix {
			img.Pix[i] = to8bit(px[i])
		}
		return img, nil
	}
	return nil, fmt.Errorf("image tensor: %d channels not supported", c)
}

// FromImage converts a Go image to an RGB IMAGE tensor [1,H,W,3] in 0..1 and, if the image has an
// alpha channel, the LoadImage mask 1-alpha as [1,H,W] (hasAlpha false: mask nil).
func FromImage(img image.Image) (rgb *tensor.Tensor, mask *tensor.Tensor, hasAlpha bool) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	n := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.Draw(n, n.Bounds(), img, b.Min, draw.Src)
	hasAlpha = imageHasAlpha(img)
	rgb = tensor.New(1, h, w, 3)
	if hasAlpha {
		mask = tensor.New(1, h, w)
	}
	for i := 0; i < w*h; i++ {
		rgb.Data[3*i] = float32(n.Pix[4*i]) / 255
		rgb.Data[3*i+1] = float32(n.Pix[4*i+1]) / 255
		rgb.Data[3*i+2] = float32(n.Pix[4*i+2]) / 255
		if hasAlpha {
			mask.Data[i] = 1 - float32(n.Pix[4*i+3])/255
		}
	}
	return rgb, mask, hasAlpha
}

// imageHasAlpha reports whether a decoded image has an alpha band (PIL's 'A' in getbands()):
// Go's decoders return non-premultiplied types for files with alpha and premultiplied RGBA or
// YCbCr for opaque ones; a palette counts when it has a transparent entry.
func imageHasAlpha(img image.Image) bool {
	switch m := img.(type) {
	case *image.NRGBA, *image.NRGBA64, *image.NYCbCrA, *image.Alpha, *image.Alpha16:
		return true
	case *image.Paletted:
		for _, c := range m.Palette {
			if _, _, _, a := c.RGBA(); a != 0xffff {
				return true
			}
		}
	}
	return false
}

// NHWCToNCHW moves channels first ([B,H,W,C] -> [B,C,H,W]).
func NHWCToNCHW(t *tensor.Tensor) *tensor.Tensor {
	b, h, w, c := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	out := tensor.New(b, c, h, w)
	for n := 0; n < b; n++ {
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				for ch := 0; ch < c; ch++ {
					out.Data[((n*c+ch)*h+y)*w+x] = t.Data[((n*h+y)*w+x)*c+ch]
				}
			}
		}
	}
	return out
}

// NCHWToNHWC moves channels last ([B,C,H,W] -> [B,H,W,C]).
func NCHWToNHWC(t *tensor.Tensor) *tensor.Tensor {
	b, c, h, w := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	out := tensor.New(b, h, w, c)
	for n := 0; n < b; n++ {
		for ch := 0; ch < c; ch++ {
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					out.Data[((n*h+y)*w+x)*c+ch] = t.Data[((n*c+ch)*h+y)*w+x]
				}
			}
		}
	}
	return out
}
