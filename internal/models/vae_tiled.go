package models

import (
	"context"
	"fmt"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/tensor"
)

// TiledVAE is implemented by VAEs that decode in overlapping tiles (VAEDecodeTiled).
type TiledVAE interface {
	// DecodeTiled decodes latents [B,C,h,w] with tiles of tileX×tileY latent pixels overlapping by
	// overlap, averaging ComfyUI's three tilings ((tx/2, 2ty), (2tx, ty/2), (tx, ty)).
	DecodeTiled(ctx context.Context, latent *tensor.Tensor, tileX, tileY, overlap int) (*tensor.Tensor, error)
}

// decodeRaw runs post_quant_conv + decoder on one latent [1,C,h,w] -> [1,3,fh,fw] (no clamp).
func (v *vaeModel) decodeRaw(ctx context.Context, z *tensor.Tensor) (*tensor.Tensor, error) {
	h, w := z.Shape[2], z.Shape[3]
	f := v.cfg.Downscale()
	key := fmt.Sprintf("vaedec|%s|%s|%d,%d", v.f.ident, v.prefix, h, w)
	est := weightBytes(v.f.header, v.prefix+"decoder.")*6/5 + int64(h*w*f*f)*int64(v.cfg.Ch)*4*12 + int64(h*w)*int64(h*w)*4*2
	return v.m.run(ctx, key, est, func() (*onnx.Model, error) {
		g, err := BuildVAEDecoder(v.cfg, 1, h, w, vaeResolver(v.f.header, v.prefix, len(v.cfg.ChMult)), v.m.opt.VAEAttention == "mha")
		if err != nil {
			return nil, err
		}
		return g.Lower("vae_decoder", v.f.file)
	}, map[string]*tensor.Tensor{"z": z})
}

// DecodeTiled implements TiledVAE.
func (v *vaeModel) DecodeTiled(ctx context.Context, latent *tensor.Tensor, tileX, tileY, overlap int) (*tensor.Tensor, error) {
	if latent == nil || len(latent.Shape) != 4 || latent.Shape[1] != v.cfg.EmbedDim {
		return nil, fmt.Errorf("vae decode: latent must be [B,%d,h,w], got %v", v.cfg.EmbedDim, shapeOf(latent))
	}
	if tileX < 1 || tileY < 1 || overlap < 0 {
		return nil, fmt.Errorf("vae decode tiled: bad tile %dx%d overlap %d", tileX, tileY, overlap)
	}
	b, c, h, w := latent.Shape[0], latent.Shape[1], latent.Shape[2], latent.Shape[3]
	f := v.cfg.Downscale()
	H, W := h*f, w*f
	out := tensor.New(b, H, W, 3)
	for i := 0; i < b; i++ {
		z := tensor.FromData(latent.Data[i*c*h*w:(i+1)*c*h*w], 1, c, h, w)
		sum := make([]float32, 3*H*W)
		for _, t := range [][2]int{{max(tileY*2, 1), max(tileX/2, 1)}, {max(tileY/2, 1), max(tileX*2, 1)}, {tileY, tileX}} {
			r, err := tiledScale(ctx, z, t[0], t[1], overlap, f, v.decodeRaw)
			if err != nil {
				return nil, fmt.Errorf("vae decode tiled: %w", err)
			}
			for j := range sum {
				sum[j] += r[j]
			}
		}
		dst := out.Data[i*H*W*3:]
		for ch := 0; ch < 3; ch++ {
			for p := 0; p < H*W; p++ {
				x := (sum[ch*H*W+p]/3 + 1) / 2
				dst[p*3+ch] = min(max(x, 0), 1)
			}
		}
	}
	return out, nil
}

// tiledScale is ComfyUI's tiled_scale_multidim for one [1,C,h,w] sample and a 2-D tile
// (tileH, tileW): overlapping tiles, feathered masks, weighted average. It returns [3,H,W].
func tiledScale(ctx context.Context, s *tensor.Tensor, tileH, tileW, overlap, up int, fn func(context.Context, *tensor.Tensor) (*tensor.Tensor, error)) ([]float32, error) {
	c, h, w := s.Shape[1], s.Shape[2], s.Shape[3]
	H, W := h*up, w*up
	if h <= tileH && w <= tileW {
		r, err := fn(ctx, s)
		if err != nil {
			return nil, err
		}
		return r.Data[:3*H*W], nil
	}
	positions := func(size, tile int) []int {
		var ps []int
		step := tile - overlap
		if step < 1 {
			step = 1
		}
		for p := 0; p < max(size-overlap, 1); p += step {
			ps = append(ps, max(0, min(size-overlap, p)))
		}
		return ps
	}
	out := make([]float32, 3*H*W)
	div := make([]float32, 3*H*W)
	feather := overlap * up
	for _, py := range positions(h, tileH) {
		for _, px := range positions(w, tileW) {
			lh, lw := min(tileH, h-py), min(tileW, w-px)
			in := tensor.New(1, c, lh, lw)
			for ch := 0; ch < c; ch++ {
				for y := 0; y < lh; y++ {
					copy(in.Data[(ch*lh+y)*lw:(ch*lh+y+1)*lw], s.Data[(ch*h+py+y)*w+px:(ch*h+py+y)*w+px+lw])
				}
			}
			r, err := fn(ctx, in)
			if err != nil {
				return nil, err
			}
			oh, ow := lh*up, lw*up
			my := featherMask(oh, feather)
			mx := featherMask(ow, feather)
			for ch := 0; ch < 3; ch++ {
				for y := 0; y < oh; y++ {
					for x := 0; x < ow; x++ {
						m := my[y] * mx[x]
						o := (ch*H+py*up+y)*W + px*up + x
						out[o] += r.Data[(ch*oh+y)*ow+x] * m
						div[o] += m
					}
				}
			}
		}
	}
	for i := range out {
		out[i] /= div[i]
	}
	return out, nil
}

// featherMask is the per-axis feather: the first and last f entries ramp (t+1)/f.
func featherMask(n, f int) []float32 {
	m := make([]float32, n)
	for i := range m {
		m[i] = 1
	}
	if f <= 0 || f >= n {
		return m
	}
	for t := 0; t < f; t++ {
		a := float32(float64(t+1) / float64(f))
		m[t] *= a
		m[n-1-t] *= a
	}
	return m
}
