package sampling

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/comfygo/comfygo/internal/lora"
	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/nodes"
)

func loraFiles(env *nodes.Env) []string {
	if env == nil || env.Folders == nil {
		return nil
	}
	return env.Folders.List("loras")
}

// loraCache keeps parsed LoRA files by (path, size, mtime), so re-loading a LoRA yields the same
// patch values and the model's compiled-session cache (keyed by checkpoint, patch set and
// strengths) is reused.
type loraCache struct {
	mu    sync.Mutex
	files map[string]*lora.File
	order []string
}

const loraCacheSize = 16

func openLoRA(env *nodes.Env, name string) (*lora.File, error) {
	if env == nil || env.Folders == nil {
		return nil, errors.New("no model folders configured")
	}
	path, err := env.Folders.Find("loras", name)
	if err != nil {
		if errors.Is(err, nodes.ErrModelNotFound) {
			return nil, fmt.Errorf("%w (put the .safetensors file into the loras folder of your models directory)", err)
		}
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load lora %q: %w", name, err)
	}
	v, err := env.Service("sampling.loras", func() (any, error) { return &loraCache{files: map[string]*lora.File{}}, nil })
	if err != nil {
		return nil, err
	}
	c := v.(*loraCache)
	key := fmt.Sprintf("%s|%d|%d", path, st.Size(), st.ModTime().UnixNano())
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.files[key]; ok {
		return f, nil
	}
	f, err := lora.Open(path)
	if err != nil {
		return nil, err
	}
	c.files[key] = f
	c.order = append(c.order, key)
	if len(c.order) > loraCacheSize {
		delete(c.files, c.order[0])
		c.order = c.order[1:]
	}
	return f, nil
}

// applyLoRA is load_lora_for_models: one key map over the model and/or CLIP, "lora key not
// loaded" warnings for unconsumed keys, patches added with the two strengths.
func applyLoRA(ctx *nodes.Context, m models.Model, clip models.CLIP, name string, sm, sc float64) (models.Model, models.CLIP, error) {
	f, err := openLoRA(ctx.Env, name)
	if err != nil {
		return nil, nil, err
	}
	var um, cm map[string]string
	if m != nil {
		um = lora.ModelKeyMap(m)
	}
	if clip != nil {
		cm = lora.CLIPKeyMap(clip.Keys())
	}
	l, err := f.Apply(um, cm, sm, sc)
	if err != nil {
		return nil, nil, err
	}
	log := ctx.Env.Logger()
	for _, k := range l.NotLoaded {
		log.Warn("lora key not loaded: " + k)
	}
	log.Info("lora loaded", "name", name, "unet_weights", l.UNetModules, "clip_weights", l.CLIPModules, "not_loaded", len(l.NotLoaded))
	if m != nil && len(l.UNet) > 0 {
		m = m.WithPatches(l.UNet)
	}
	if clip != nil && len(l.CLIP) > 0 {
		clip = clip.WithPatches(l.CLIP)
	}
	return m, clip, nil
}

func executeLoraLoader(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	m, err := modelInput(in)
	if err != nil {
		return nodes.Result{}, err
	}
	clip, ok := in["clip"].(models.CLIP)
	if !ok || clip == nil {
		return nodes.Result{}, fmt.Errorf("input \"clip\" is not a CLIP (got %T)", in["clip"])
	}
	sm, sc := in.Float("strength_model"), in.Float("strength_clip")
	if sm == 0 && sc == 0 {
		return nodes.Out(m, clip)
	}
	nm, nc, err := applyLoRA(ctx, m, clip, in.String("lora_name"), sm, sc)
	if err != nil {
		return nodes.Result{}, err
	}
	return nodes.Out(nm, nc)
}

func executeLoraLoaderModelOnly(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	m, err := modelInput(in)
	if err != nil {
		return nodes.Result{}, err
	}
	sm := in.Float("strength_model")
	if sm == 0 {
		return nodes.Out(m)
	}
	nm, _, err := applyLoRA(ctx, m, nil, in.String("lora_name"), sm, 0)
	if err != nil {
		return nodes.Result{}, err
	}
	return nodes.Out(nm)
}
