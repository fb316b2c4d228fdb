package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/gif"
	_ "image/jpeg" // LoadImage decoders
	_ "image/png"
	"os"
	"path/filepath"
	"sort"
	"strings"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"

	"github.com/comfygo/comfygo/internal/imageops"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

func init() {
	nodes.Register(&nodes.Def{
		Name: "LoadImage", DisplayName: "Load Image", Category: "image",
		Required: []nodes.Input{{Name: "image", Type: nodes.TypeCombo, OptionsFunc: inputImages, ImageUpload: true}},
		Outputs:  []nodes.Output{{Type: nodes.TypeImage}, {Type: nodes.TypeMask}},
		Execute:  loadImage,
		IsChanged: func(ctx *nodes.Context, in nodes.Inputs) (any, error) {
			p, err := AnnotatedPath(ctx.Env.Folders, in.String("image"))
			if err != nil {
				return nil, err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			sum := sha256.Sum256(data)
			return hex.EncodeToString(sum[:]), nil
		},
		Validate: &nodes.Validator{
			Inputs: []string{"image"},
			Func: func(ctx *nodes.Context, in nodes.Inputs, _ map[string]string) error {
				name := in.String("image")
				p, err := AnnotatedPath(ctx.Env.Folders, name)
				if err == nil {
					var st os.FileInfo
					if st, err = os.Stat(p); err == nil && st.IsDir() {
						err = errors.New("is a directory")
					}
				}
				if err != nil {
					return fmt.Errorf("Invalid image file: %s", name)
				}
				return nil
			},
		},
	})
}

// inputImages lists the files of the input folder (LoadImage's combo), sorted.
func inputImages(env *nodes.Env) []string {
	if env == nil || env.Folders == nil {
		return nil
	}
	entries, err := os.ReadDir(env.Folders.Input)
	if err != nil {
		return []string{}
	}
	out := []string{}
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// AnnotatedPath resolves ComfyUI's annotated file names ("x.png", "sub/x.png [output]",
// "x.png [temp]", "x.png [input]") to a path inside the matching folder; names that would leave
// it are refused.
func AnnotatedPath(f *nodes.Folders, name string) (string, error) {
	root := f.Input
	switch {
	case strings.HasSuffix(name, " [output]"):
		root, name = f.Output, strings.TrimSuffix(name, " [output]")
	case strings.HasSuffix(name, " [input]"):
		name = strings.TrimSuffix(name, " [input]")
	case strings.HasSuffix(name, " [temp]"):
		root, name = f.Temp, strings.TrimSuffix(name, " [temp]")
	}
	clean := filepath.Clean(filepath.FromSlash(name))
	if name == "" || filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("invalid file name %q", name)
	}
	return filepath.Join(root, clean), nil
}

func loadImage(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	p, err := AnnotatedPath(ctx.Env.Folders, in.String("image"))
	if err != nil {
		return nodes.Result{}, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nodes.Result{}, fmt.Errorf("load image: %w", err)
	}
	frames, err := decodeFrames(data)
	if err != nil {
		return nodes.Result{}, fmt.Errorf("load image %q: %w", in.String("image"), err)
	}
	var imgs, masks []*tensor.Tensor
	for _, fr := range frames {
		rgb, mask, ok := imageops.FromImage(fr)
		if len(imgs) > 0 && !sameShape(rgb, imgs[0]) {
			continue // ComfyUI skips frames whose size differs from the first
		}
		if !ok {
			mask = tensor.New(1, 64, 64)
		}
		imgs = append(imgs, rgb)
		masks = append(masks, mask)
	}
	return nodes.Out(concatBatch(imgs), concatBatch(masks))
}

// decodeFrames decodes an image file; animated GIFs give every frame.
func decodeFrames(data []byte) ([]image.Image, error) {
	if bytes.HasPrefix(data, []byte("GIF8")) {
		g, err := gif.DecodeAll(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		out := make([]image.Image, len(g.Image))
		for i, fr := range g.Image {
			out[i] = fr
		}
		return out, nil
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return []image.Image{img}, nil
}

func sameShape(a, b *tensor.Tensor) bool {
	if len(a.Shape) != len(b.Shape) {
		return false
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	return true
}

// concatBatch concatenates same-shaped batched tensors along the batch axis. Masks of different
// sizes (64×64 placeholders next to real ones) are not concatenated: the first is kept.
func concatBatch(ts []*tensor.Tensor) *tensor.Tensor {
	if len(ts) == 1 {
		return ts[0]
	}
	for _, t := range ts[1:] {
		if !sameShape(t, ts[0]) {
			return ts[0]
		}
	}
	shape := append([]int{0}, ts[0].Shape[1:]...)
	var data []float32
	for _, t := range ts {
		shape[0] += t.Shape[0]
		data = append(data, t.Data...)
	}
	return tensor.FromData(data, shape...)
}
