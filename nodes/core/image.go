package core

import (
	"fmt"
	"math"
	"slices"

	"github.com/comfygo/comfygo/internal/imageops"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

var imageUpscaleMethods = []string{"nearest-exact", "bilinear", "area", "bicubic", "lanczos"}

func init() {
	nodes.Register(
		&nodes.Def{
			Name: "ImageScale", DisplayName: "Upscale Image", Category: "image/upscaling",
			Required: []nodes.Input{
				{Name: "image", Type: nodes.TypeImage},
				{Name: "upscale_method", Type: nodes.TypeCombo, Options: imageUpscaleMethods},
				{Name: "width", Type: nodes.TypeInt, Default: 512, Min: 0, Max: maxResolution, Step: 1},
				{Name: "height", Type: nodes.TypeInt, Default: 512, Min: 0, Max: maxResolution, Step: 1},
				{Name: "crop", Type: nodes.TypeCombo, Options: cropMethods},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeImage}},
			Execute: imageScale,
		},
		&nodes.Def{
			Name: "ImageScaleBy", DisplayName: "Upscale Image By", Category: "image/upscaling",
			Required: []nodes.Input{
				{Name: "image", Type: nodes.TypeImage},
				{Name: "upscale_method", Type: nodes.TypeCombo, Options: imageUpscaleMethods},
				{Name: "scale_by", Type: nodes.TypeFloat, Default: 1.0, Min: 0.01, Max: 8.0, Step: 0.01},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeImage}},
			Execute: imageScaleBy,
		},
		&nodes.Def{
			Name: "ImageInvert", DisplayName: "Invert Image", Category: "image",
			Required: []nodes.Input{{Name: "image", Type: nodes.TypeImage}},
			Outputs:  []nodes.Output{{Type: nodes.TypeImage}},
			Execute:  imageInvert,
		},
		&nodes.Def{
			Name: "ImageBatch", DisplayName: "Batch Images", Category: "image",
			Required: []nodes.Input{{Name: "image1", Type: nodes.TypeImage}, {Name: "image2", Type: nodes.TypeImage}},
			Outputs:  []nodes.Output{{Type: nodes.TypeImage}},
			Execute:  imageBatch,
		},
	)
}

func imageInput(in nodes.Inputs, name string) (*tensor.Tensor, error) {
	t := in.Tensor(name)
	if t == nil || len(t.Shape) != 4 {
		return nil, fmt.Errorf("input %q is not an image [B,H,W,C]", name)
	}
	return t, nil
}

// scaleImage resizes an IMAGE [B,H,W,C] through common_upscale on its NCHW form.
func scaleImage(img *tensor.Tensor, w, h int, method, crop string) (*tensor.Tensor, error) {
	s, err := imageops.Upscale(imageops.NHWCToNCHW(img), w, h, method, crop)
	if err != nil {
		return nil, err
	}
	return imageops.NCHWToNHWC(s), nil
}

func imageScale(_ *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	img, err := imageInput(in, "image")
	if err != nil {
		return nodes.Result{}, err
	}
	w, h := int(in.Int("width")), int(in.Int("height"))
	if w == 0 && h == 0 {
		return nodes.Out(img)
	}
	ih, iw := img.Shape[1], img.Shape[2]
	if w == 0 {
		w = max(1, int(math.RoundToEven(float64(iw)*float64(h)/float64(ih))))
	} else if h == 0 {
		h = max(1, int(math.RoundToEven(float64(ih)*float64(w)/float64(iw))))
	}
	s, err := scaleImage(img, w, h, in.String("upscale_method"), in.String("crop"))
	if err != nil {
		return nodes.Result{}, err
	}
	return nodes.Out(s)
}

func imageScaleBy(_ *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	img, err := imageInput(in, "image")
	if err != nil {
		return nodes.Result{}, err
	}
	f := in.Float("scale_by")
	w := int(math.RoundToEven(float64(img.Shape[2]) * f))
	h := int(math.RoundToEven(float64(img.Shape[1]) * f))
	s, err := scaleImage(img, w, h, in.String("upscale_method"), "disabled")
	if err != nil {
		return nodes.Result{}, err
	}
	return nodes.Out(s)
}

func imageInvert(_ *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	img, err := imageInput(in, "image")
	if err != nil {
		return nodes.Result{}, err
	}
	out := tensor.New(img.Shape...)
	for i, v := range img.Data {
		out.Data[i] = 1 - v
	}
	return nodes.Out(out)
}

func imageBatch(_ *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	a, err := imageInput(in, "image1")
	if err != nil {
		return nodes.Result{}, err
	}
	b, err := imageInput(in, "image2")
	if err != nil {
		return nodes.Result{}, err
	}
	if !slices.Equal(a.Shape[1:], b.Shape[1:]) {
		if a.Shape[3] != b.Shape[3] {
			return nodes.Result{}, fmt.Errorf("image batch: channel counts differ (%d vs %d)", a.Shape[3], b.Shape[3])
		}
		if b, err = scaleImage(b, a.Shape[2], a.Shape[1], "bilinear", "center"); err != nil {
			return nodes.Result{}, err
		}
	}
	out := tensor.New(append([]int{a.Shape[0] + b.Shape[0]}, a.Shape[1:]...)...)
	copy(out.Data, a.Data)
	copy(out.Data[len(a.Data):], b.Data)
	return nodes.Out(out)
}
