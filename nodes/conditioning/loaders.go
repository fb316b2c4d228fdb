package conditioning

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/comfygo/comfygo/internal/ort"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/textenc"
	"github.com/comfygo/comfygo/internal/tokenizer"
	"github.com/comfygo/comfygo/nodes"
)

// CLIP types as ComfyUI's loaders list them; comfygo loads "stable_diffusion" (one CLIP-L,
// ViT-H or bigG file) and "sdxl" (CLIP-L + bigG) and reports the others as unsupported.
var (
	clipTypes = []string{"stable_diffusion", "stable_cascade", "sd3", "stable_audio", "mochi", "ltxv", "pixart",
		"cosmos", "lumina2", "wan", "hidream", "chroma", "ace", "omnigen2", "qwen_image", "hunyuan_image", "flux2", "ovis"}
	dualClipTypes = []string{"sdxl", "sd3", "flux", "hunyuan_video", "hidream", "hunyuan_image", "hunyuan_video_15",
		"kandinsky5", "kandinsky5_image", "newbie"}
)

func textEncoderFiles(env *nodes.Env) []string {
	if env == nil || env.Folders == nil {
		return nil
	}
	return env.Folders.List("text_encoders")
}

func init() {
	device := nodes.Input{Name: "device", Type: nodes.TypeCombo, Options: []string{"default", "cpu"}, Extra: map[string]any{"advanced": true}}
	nodes.Register(
		&nodes.Def{
			Name: "CLIPLoader", DisplayName: "Load CLIP", Category: "advanced/loaders",
			Description: "[Recipes]\n\nstable_diffusion: clip-l\nstable_cascade: clip-g\nsd3: t5 xxl/ clip-g / clip-l\nstable_audio: t5 base\nmochi: t5 xxl\ncosmos: old t5 xxl\nlumina2: gemma 2 2B\nwan: umt5 xxl\n hidream: llama-3.1 (Recommend) or t5\nomnigen2: qwen vl 2.5 3B",
			Required: []nodes.Input{
				{Name: "clip_name", Type: nodes.TypeCombo, OptionsFunc: textEncoderFiles},
				{Name: "type", Type: nodes.TypeCombo, Options: clipTypes},
			},
			Optional: []nodes.Input{device},
			Outputs:  []nodes.Output{{Type: nodes.TypeClip}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return loadCLIP(ctx, []string{in.String("clip_name")}, in.String("type"))
			},
		},
		&nodes.Def{
			Name: "DualCLIPLoader", DisplayName: "DualCLIPLoader", Category: "advanced/loaders",
			Description: "[Recipes]\n\nsdxl: clip-l, clip-g\nsd3: clip-l, clip-g / clip-l, t5 / clip-g, t5\nflux: clip-l, t5\nhidream: at least one of t5 or llama, recommended t5 and llama\nhunyuan_image: qwen2.5vl 7b and byt5 small",
			Required: []nodes.Input{
				{Name: "clip_name1", Type: nodes.TypeCombo, OptionsFunc: textEncoderFiles},
				{Name: "clip_name2", Type: nodes.TypeCombo, OptionsFunc: textEncoderFiles},
				{Name: "type", Type: nodes.TypeCombo, Options: dualClipTypes},
			},
			Optional: []nodes.Input{device},
			Outputs:  []nodes.Output{{Type: nodes.TypeClip}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return loadCLIP(ctx, []string{in.String("clip_name1"), in.String("clip_name2")}, in.String("type"))
			},
		},
	)
}

// Runtime returns the environment's shared ONNX Runtime (service "ort"), opened from Env.Options
// ("provider", "onnxruntime-lib", "device-id", "threads").
func Runtime(env *nodes.Env) (*ort.Runtime, error) {
	v, err := env.Service("ort", func() (any, error) {
		cfg := ort.Config{Provider: env.Options["provider"], LibPath: env.Options["onnxruntime-lib"], Logger: env.Logger()}
		cfg.DeviceID, _ = strconv.Atoi(env.Options["device-id"])
		cfg.Threads, _ = strconv.Atoi(env.Options["threads"])
		rt, err := ort.Open(cfg)
		if err != nil {
			return nil, err
		}
		return rt, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*ort.Runtime), nil
}

// Embeddings returns the environment's shared textual-inversion finder over the "embeddings"
// model folders (service "embeddings").
func Embeddings(env *nodes.Env) *tokenizer.Embeddings {
	v, _ := env.Service("embeddings", func() (any, error) {
		var dirs []string
		if env.Folders != nil {
			dirs = env.Folders.Models["embeddings"]
		}
		return tokenizer.NewEmbeddings(dirs), nil
	})
	e, _ := v.(*tokenizer.Embeddings)
	return e
}

// CLIPOptions are the textenc options for a CLIP made in env: the shared runtime, embeddings
// and logger. CheckpointLoaderSimple passes them to textenc.FromCheckpoint.
func CLIPOptions(env *nodes.Env) (textenc.Options, error) {
	rt, err := Runtime(env)
	if err != nil {
		return textenc.Options{}, err
	}
	return textenc.Options{Runtime: rt, Embeddings: Embeddings(env), Logger: env.Logger()}, nil
}

// clipCache keeps the CLIPs loaded by CLIPLoader/DualCLIPLoader (their files stay open), keyed
// by type, paths and modification times.
type clipCache struct {
	mu sync.Mutex
	m  map[string]*textenc.CLIP
}

func loadCLIP(ctx *nodes.Context, names []string, typ string) (nodes.Result, error) {
	env := ctx.Env
	switch {
	case len(names) == 1 && typ != "stable_diffusion":
		return nodes.Result{}, fmt.Errorf("CLIPLoader: type %q is not supported by comfygo (supported: stable_diffusion)", typ)
	case len(names) == 2 && typ != "sdxl":
		return nodes.Result{}, fmt.Errorf("DualCLIPLoader: type %q is not supported by comfygo (supported: sdxl)", typ)
	}
	var paths []string
	key := typ
	for _, n := range names {
		p, err := env.Folders.Find("text_encoders", n)
		if err != nil {
			return nodes.Result{}, err
		}
		st, err := os.Stat(p)
		if err != nil {
			return nodes.Result{}, err
		}
		paths = append(paths, p)
		key += "\x00" + p + "\x00" + st.ModTime().String() + "\x00" + strconv.FormatInt(st.Size(), 10)
	}
	v, err := env.Service("clip-files", func() (any, error) { return &clipCache{m: map[string]*textenc.CLIP{}}, nil })
	if err != nil {
		return nodes.Result{}, err
	}
	cache := v.(*clipCache)
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if c, ok := cache.m[key]; ok {
		return nodes.Out(c)
	}
	opts, err := CLIPOptions(env)
	if err != nil {
		return nodes.Result{}, err
	}
	var files []*safetensors.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, p := range paths {
		if !strings.EqualFold(ext(p), ".safetensors") && !strings.EqualFold(ext(p), ".sft") {
			closeAll()
			return nodes.Result{}, fmt.Errorf("load clip %q: only .safetensors text encoders are supported", p)
		}
		f, err := safetensors.Open(p)
		if err != nil {
			closeAll()
			return nodes.Result{}, fmt.Errorf("load clip: %w", err)
		}
		files = append(files, f)
	}
	c, err := textenc.FromFiles(files, typ, opts)
	if err != nil {
		closeAll()
		return nodes.Result{}, err
	}
	cache.m[key] = c
	return nodes.Out(c)
}

func ext(p string) string {
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[i:]
	}
	return ""
}
