// Package sd holds the Stable Diffusion model nodes: checkpoint and VAE loaders, VAE decode and
// encode (plain, tiled, for inpainting) and LatentComposite, with ComfyUI's names, inputs,
// outputs and defaults. Loaded checkpoints and their ONNX Runtime sessions are shared through
// the environment's "models" service (a *models.Manager), so re-queued prompts never reload.
package sd

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/comfygo/comfygo/internal/imageops"
	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/internal/textenc"
	"github.com/comfygo/comfygo/nodes"
	"github.com/comfygo/comfygo/nodes/conditioning"
)

const maxResolution = 16384

func files(kind string) func(env *nodes.Env) []string {
	return func(env *nodes.Env) []string {
		if env == nil || env.Folders == nil {
			return nil
		}
		return env.Folders.List(kind)
	}
}

func init() {
	nodes.Register(
		&nodes.Def{
			Name: "CheckpointLoaderSimple", DisplayName: "Load Checkpoint", Category: "loaders",
			Description: "Loads a diffusion model checkpoint, diffusion models are used to denoise latents.",
			Required: []nodes.Input{
				{Name: "ckpt_name", Type: nodes.TypeCombo, OptionsFunc: files("checkpoints"), Tooltip: "The name of the checkpoint (model) to load."},
			},
			Outputs: []nodes.Output{
				{Type: nodes.TypeModel, Tooltip: "The model used for denoising latents."},
				{Type: nodes.TypeClip, Tooltip: "The CLIP model used for encoding text prompts."},
				{Type: nodes.TypeVAE, Tooltip: "The VAE model used for encoding and decoding images to and from latent space."},
			},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return loadCheckpoint(ctx, in.String("ckpt_name"))
			},
		},
		&nodes.Def{
			Name: "CheckpointLoader", DisplayName: "Load Checkpoint With Config (DEPRECATED)", Category: "advanced/loaders",
			Deprecated: true,
			Required: []nodes.Input{
				{Name: "config_name", Type: nodes.TypeCombo, OptionsFunc: files("configs")},
				{Name: "ckpt_name", Type: nodes.TypeCombo, OptionsFunc: files("checkpoints")},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeModel}, {Type: nodes.TypeClip}, {Type: nodes.TypeVAE}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				// comfygo detects the architecture from the weights; the config file is ignored.
				return loadCheckpoint(ctx, in.String("ckpt_name"))
			},
		},
		&nodes.Def{
			Name: "VAELoader", DisplayName: "Load VAE", Category: "loaders",
			Required: []nodes.Input{{Name: "vae_name", Type: nodes.TypeCombo, OptionsFunc: files("vae")}},
			Outputs:  []nodes.Output{{Type: nodes.TypeVAE}},
			Execute:  loadVAE,
		},
		&nodes.Def{
			Name: "VAEDecode", DisplayName: "VAE Decode", Category: "latent",
			Description: "Decodes latent images back into pixel space images.",
			Required: []nodes.Input{
				{Name: "samples", Type: nodes.TypeLatent, Tooltip: "The latent to be decoded."},
				{Name: "vae", Type: nodes.TypeVAE, Tooltip: "The VAE model used for decoding the latent."},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeImage, Tooltip: "The decoded image."}},
			Execute: vaeDecode,
		},
		&nodes.Def{
			Name: "VAEEncode", DisplayName: "VAE Encode", Category: "latent",
			Required: []nodes.Input{{Name: "pixels", Type: nodes.TypeImage}, {Name: "vae", Type: nodes.TypeVAE}},
			Outputs:  []nodes.Output{{Type: nodes.TypeLatent}},
			Execute:  vaeEncode,
		},
		&nodes.Def{
			Name: "VAEDecodeTiled", DisplayName: "VAE Decode (Tiled)", Category: "_for_testing",
			Required: []nodes.Input{
				{Name: "samples", Type: nodes.TypeLatent},
				{Name: "vae", Type: nodes.TypeVAE},
				{Name: "tile_size", Type: nodes.TypeInt, Default: 512, Min: 64, Max: 4096, Step: 32},
				{Name: "overlap", Type: nodes.TypeInt, Default: 64, Min: 0, Max: 4096, Step: 32},
				{Name: "temporal_size", Type: nodes.TypeInt, Default: 64, Min: 8, Max: 4096, Step: 4, Tooltip: "Only used for video VAEs: Amount of frames to decode at a time."},
				{Name: "temporal_overlap", Type: nodes.TypeInt, Default: 8, Min: 4, Max: 4096, Step: 4, Tooltip: "Only used for video VAEs: Amount of frames to overlap."},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeImage}},
			Execute: vaeDecodeTiled,
		},
		&nodes.Def{
			Name: "VAEEncodeForInpaint", DisplayName: "VAE Encode (for Inpainting)", Category: "latent/inpaint",
			Required: []nodes.Input{
				{Name: "pixels", Type: nodes.TypeImage},
				{Name: "vae", Type: nodes.TypeVAE},
				{Name: "mask", Type: nodes.TypeMask},
				{Name: "grow_mask_by", Type: nodes.TypeInt, Default: 6, Min: 0, Max: 64, Step: 1},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeLatent}},
			Execute: vaeEncodeForInpaint,
		},
		&nodes.Def{
			Name: "LatentComposite", DisplayName: "Latent Composite", Category: "latent",
			Required: []nodes.Input{
				{Name: "samples_to", Type: nodes.TypeLatent},
				{Name: "samples_from", Type: nodes.TypeLatent},
				{Name: "x", Type: nodes.TypeInt, Default: 0, Min: 0, Max: maxResolution, Step: 8},
				{Name: "y", Type: nodes.TypeInt, Default: 0, Min: 0, Max: maxResolution, Step: 8},
				{Name: "feather", Type: nodes.TypeInt, Default: 0, Min: 0, Max: maxResolution, Step: 8},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeLatent}},
			Execute: latentComposite,
		},
	)
}

// Manager returns the environment's shared model manager (service "models"), creating it on the
// shared ONNX Runtime.
func Manager(env *nodes.Env) (*models.Manager, error) {
	// Env.Service is not re-entrant: resolve the runtime service before the manager's.
	rt, err := conditioning.Runtime(env)
	if err != nil {
		return nil, err
	}
	v, err := env.Service("models", func() (any, error) {
		return models.NewManager(models.ORTFactory{RT: rt}, models.ManagerOptions{Log: env.Logger()}), nil
	})
	if err != nil {
		return nil, err
	}
	m, ok := v.(*models.Manager)
	if !ok {
		return nil, fmt.Errorf("service \"models\" holds %T, not a model manager", v)
	}
	return m, nil
}

// clipCache keeps one CLIP per loaded checkpoint so re-running a loader keeps the text
// encoder sessions.
type clipCache struct {
	mu sync.Mutex
	m  map[string]models.CLIP
}

func checkpointCLIP(env *nodes.Env, ck *models.Checkpoint) (models.CLIP, error) {
	opts, err := conditioning.CLIPOptions(env)
	if err != nil {
		return nil, err
	}
	v, _ := env.Service("sd.clips", func() (any, error) { return &clipCache{m: map[string]models.CLIP{}}, nil })
	cc := v.(*clipCache)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	key := fmt.Sprintf("%s|%p", ck.Path, ck.File)
	if c, ok := cc.m[key]; ok {
		return c, nil
	}
	c, err := textenc.FromCheckpoint(ck.File, ck.Family, opts)
	if err != nil {
		return nil, err
	}
	cc.m[key] = c
	return c, nil
}

func findModel(env *nodes.Env, kind, name string) (string, error) {
	if env == nil || env.Folders == nil {
		return "", fmt.Errorf("no model folders configured")
	}
	p, err := env.Folders.Find(kind, name)
	if errors.Is(err, nodes.ErrModelNotFound) {
		return "", fmt.Errorf("%w (download the .safetensors file into the %s folder of your models directory)", err, kind)
	}
	return p, err
}

func loadCheckpoint(ctx *nodes.Context, name string) (nodes.Result, error) {
	path, err := findModel(ctx.Env, "checkpoints", name)
	if err != nil {
		return nodes.Result{}, err
	}
	mgr, err := Manager(ctx.Env)
	if err != nil {
		return nodes.Result{}, err
	}
	ck, err := mgr.LoadCheckpoint(path, models.DetectOptions{})
	if err != nil {
		return nodes.Result{}, err
	}
	clip, err := checkpointCLIP(ctx.Env, ck)
	if err != nil {
		return nodes.Result{}, fmt.Errorf("load checkpoint %q: %w", name, err)
	}
	ctx.Env.Logger().Info("checkpoint loaded", "name", name, "family", ck.Family.Name, "prediction", ck.Family.Prediction)
	var vae any
	if ck.VAE != nil {
		vae = ck.VAE
	}
	return nodes.Out(ck.Model, clip, vae)
}

func loadVAE(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	name := in.String("vae_name")
	path, err := findModel(ctx.Env, "vae", name)
	if err != nil {
		return nodes.Result{}, err
	}
	mgr, err := Manager(ctx.Env)
	if err != nil {
		return nodes.Result{}, err
	}
	v, err := mgr.LoadVAE(path)
	if err != nil {
		return nodes.Result{}, err
	}
	return nodes.Out(v)
}

func vaeInput(in nodes.Inputs) (models.VAE, error) {
	v, ok := in["vae"].(models.VAE)
	if !ok || v == nil {
		return nil, errors.New("no VAE: the checkpoint has no VAE weights; load one with VAELoader")
	}
	return v, nil
}

func latentInput(in nodes.Inputs, name string) (*nodes.Latent, error) {
	l := in.Latent(name)
	if l == nil || l.Samples == nil || len(l.Samples.Shape) != 4 {
		return nil, fmt.Errorf("%s: expected a LATENT with [B,C,H,W] samples", name)
	}
	return l, nil
}

func vaeDecode(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	vae, err := vaeInput(in)
	if err != nil {
		return nodes.Result{}, err
	}
	l, err := latentInput(in, "samples")
	if err != nil {
		return nodes.Result{}, err
	}
	img, err := vae.Decode(ctx, l.Samples)
	if err != nil {
		return nodes.Result{}, err
	}
	return nodes.Out(img)
}

func vaeEncode(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	vae, err := vaeInput(in)
	if err != nil {
		return nodes.Result{}, err
	}
	px := in.Tensor("pixels")
	if px == nil {
		return nodes.Result{}, errors.New("pixels: expected an IMAGE")
	}
	t, err := vae.Encode(ctx, px)
	if err != nil {
		return nodes.Result{}, err
	}
	return nodes.Out(&nodes.Latent{Samples: t})
}

func vaeDecodeTiled(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	vae, err := vaeInput(in)
	if err != nil {
		return nodes.Result{}, err
	}
	l, err := latentInput(in, "samples")
	if err != nil {
		return nodes.Result{}, err
	}
	tv, ok := vae.(models.TiledVAE)
	if !ok {
		return nodes.Result{}, fmt.Errorf("VAEDecodeTiled: this VAE (%T) cannot decode in tiles", vae)
	}
	tile, overlap := int(in.Int("tile_size")), int(in.Int("overlap"))
	if tile < overlap*4 {
		overlap = tile / 4
	}
	c := vae.Downscale()
	img, err := tv.DecodeTiled(ctx, l.Samples, tile/c, tile/c, overlap/c)
	if err != nil {
		return nodes.Result{}, err
	}
	return nodes.Out(img)
}

// vaeEncodeForInpaint is ComfyUI's VAEEncodeForInpaint: crop to multiples of the VAE factor,
// grey out the masked pixels, encode, and return the grown mask as noise_mask.
func vaeEncodeForInpaint(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	vae, err := vaeInput(in)
	if err != nil {
		return nodes.Result{}, err
	}
	px, mask := in.Tensor("pixels"), in.Tensor("mask")
	if px == nil || len(px.Shape) != 4 || px.Shape[3] < 3 {
		return nodes.Result{}, errors.New("pixels: expected an IMAGE [B,H,W,C]")
	}
	if mask == nil || len(mask.Shape) < 2 {
		return nodes.Result{}, errors.New("mask: expected a MASK")
	}
	grow := int(in.Int("grow_mask_by"))
	b, H, W, C := px.Shape[0], px.Shape[1], px.Shape[2], px.Shape[3]
	f := vae.Downscale()
	x, y := H/f*f, W/f*f
	if x == 0 || y == 0 {
		return nodes.Result{}, fmt.Errorf("image %dx%d is smaller than the VAE factor %d", W, H, f)
	}
	mh, mw := mask.Shape[len(mask.Shape)-2], mask.Shape[len(mask.Shape)-1]
	mb := len(mask.Data) / (mh * mw)
	m4, err := imageops.Upscale(tensor.FromData(mask.Data, mb, 1, mh, mw), W, H, "bilinear", "disabled")
	if err != nil {
		return nodes.Result{}, err
	}
	if mb != 1 && mb != b {
		return nodes.Result{}, fmt.Errorf("mask batch %d does not match image batch %d", mb, b)
	}
	oy, ox := (H%f)/2, (W%f)/2
	// cropped pixels and mask
	pix := tensor.New(b, x, y, 3)
	mk := tensor.New(mb, 1, x, y)
	for n := 0; n < mb; n++ {
		for i := 0; i < x; i++ {
			copy(mk.Data[(n*x+i)*y:(n*x+i+1)*y], m4.Data[(n*H+i+oy)*W+ox:(n*H+i+oy)*W+ox+y])
		}
	}
	for n := 0; n < b; n++ {
		mn := n % mb
		for i := 0; i < x; i++ {
			for j := 0; j < y; j++ {
				keep := 1 - float32(math.RoundToEven(float64(mk.Data[(mn*x+i)*y+j])))
				src := px.Data[((n*H+i+oy)*W+j+ox)*C:]
				dst := pix.Data[((n*x+i)*y+j)*3:]
				for c := 0; c < 3; c++ {
					dst[c] = (src[c]-0.5)*keep + 0.5
				}
			}
		}
	}
	noise := growMask(mk, grow)
	t, err := vae.Encode(ctx, pix)
	if err != nil {
		return nodes.Result{}, err
	}
	return nodes.Out(&nodes.Latent{Samples: t, NoiseMask: noise})
}

// growMask is round(clamp(conv2d(round(mask), ones(k,k), padding=ceil((k-1)/2)), 0, 1)) cut to
// the mask size (k = 0: round(mask)). mask is [N,1,H,W].
func growMask(mask *tensor.Tensor, k int) *tensor.Tensor {
	n, h, w := mask.Shape[0], mask.Shape[2], mask.Shape[3]
	out := tensor.New(n, 1, h, w)
	if k == 0 {
		for i, v := range mask.Data {
			out.Data[i] = float32(math.RoundToEven(float64(v)))
		}
		return out
	}
	pad := (k - 1 + 1) / 2 // ceil((k-1)/2)
	r := make([]float32, len(mask.Data))
	for i, v := range mask.Data {
		r[i] = float32(math.RoundToEven(float64(v)))
	}
	for b := 0; b < n; b++ {
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				var s float32
				for di := 0; di < k; di++ {
					yy := i + di - pad
					if yy < 0 || yy >= h {
						continue
					}
					for dj := 0; dj < k; dj++ {
						xx := j + dj - pad
						if xx >= 0 && xx < w {
							s += r[(b*h+yy)*w+xx]
						}
					}
				}
				out.Data[(b*h+i)*w+j] = float32(math.RoundToEven(float64(min(max(s, 0), 1))))
			}
		}
	}
	return out
}

// latentComposite pastes samples_from into samples_to at (x, y) pixels (÷8), with an optional
// feathered edge, as ComfyUI's LatentComposite.
func latentComposite(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	to, err := latentInput(in, "samples_to")
	if err != nil {
		return nodes.Result{}, err
	}
	from, err := latentInput(in, "samples_from")
	if err != nil {
		return nodes.Result{}, err
	}
	x, y, feather := int(in.Int("x"))/8, int(in.Int("y"))/8, int(in.Int("feather"))/8
	st, sf := to.Samples, from.Samples
	b, c, th, tw := st.Shape[0], st.Shape[1], st.Shape[2], st.Shape[3]
	fb, fc := sf.Shape[0], sf.Shape[1]
	if fc != c || (fb != b && fb != 1) {
		return nodes.Result{}, fmt.Errorf("LatentComposite: samples_from %v does not fit samples_to %v", sf.Shape, st.Shape)
	}
	// the pasted region: from[:, :, :th-y, :tw-x], clipped to the target
	ph := min(sf.Shape[2], max(th-y, 0))
	pw := min(sf.Shape[3], max(tw-x, 0))
	out := *to
	s := st.Clone()
	out.Samples = s
	my, mx := make([]float32, ph), make([]float32, pw)
	for i := range my {
		my[i] = 1
	}
	for i := range mx {
		mx[i] = 1
	}
	for t := 0; t < feather; t++ {
		a := float32(1.0/float64(feather)) * float32(t+1)
		if y != 0 && t < ph {
			my[t] *= a
		}
		if y+ph < th && ph-1-t >= 0 {
			my[ph-1-t] *= a
		}
		if x != 0 && t < pw {
			mx[t] *= a
		}
		if x+pw < tw && pw-1-t >= 0 {
			mx[pw-1-t] *= a
		}
	}
	fh, fw := sf.Shape[2], sf.Shape[3]
	for n := 0; n < b; n++ {
		fn := n % fb
		for ch := 0; ch < c; ch++ {
			for i := 0; i < ph; i++ {
				for j := 0; j < pw; j++ {
					v := sf.Data[((fn*c+ch)*fh+i)*fw+j]
					o := ((n*c+ch)*th+y+i)*tw + x + j
					if feather == 0 {
						s.Data[o] = v
					} else {
						m := my[i] * mx[j]
						s.Data[o] = v*m + s.Data[o]*(1-m)
					}
				}
			}
		}
	}
	return nodes.Out(&out)
}
