package cli

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/comfygo/comfygo/executor"
	"github.com/comfygo/comfygo/nodes"
	"github.com/comfygo/comfygo/nodes/testpack"
	"github.com/comfygo/comfygo/web"
)

// envFlags are the folder, cache and runtime flags shared by the commands that execute prompts
// (serve, run), with ComfyUI's names and defaults.
type envFlags struct {
	modelsDir, inputDir, outputDir, tempDir, userDir string
	extraPaths                                       string
	cacheLRU                                         int
	cacheNone                                        bool
	provider, ortLib, previewMethod                  string
	deviceID, threads                                int
	testNodes                                        bool
}

// register adds the flags to fs (folders default to the current directory, as in ComfyUI).
func (f *envFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.modelsDir, "models-dir", "models", "models folder (ComfyUI layout: checkpoints/, loras/, vae/, embeddings/, clip/ ...)")
	fs.StringVar(&f.inputDir, "input-dir", "input", "input folder (uploads, LoadImage)")
	fs.StringVar(&f.outputDir, "output-dir", "output", "output folder (SaveImage)")
	fs.StringVar(&f.tempDir, "temp-dir", "temp", "temp folder (PreviewImage; emptied when the server starts)")
	fs.StringVar(&f.userDir, "user-dir", "user", "user folder (settings, workflows, queue/history database)")
	fs.StringVar(&f.extraPaths, "extra-model-paths-config", "", "ComfyUI extra_model_paths.yaml adding model folders (e.g. an existing ComfyUI install's)")
	fs.IntVar(&f.cacheLRU, "cache-lru", 0, "keep up to N node results across prompts (LRU) instead of the classic cache (0 = classic)")
	fs.BoolVar(&f.cacheNone, "cache-none", false, "cache no node results")
	fs.StringVar(&f.provider, "provider", "cpu", "ONNX Runtime execution provider: cpu, cuda, or auto (cuda if the library has it, else cpu)")
	fs.StringVar(&f.ortLib, "onnxruntime-lib", "", "ONNX Runtime shared library (default: $ONNXRUNTIME_LIB, else third_party/onnxruntime/libonnxruntime.so.1)")
	fs.IntVar(&f.deviceID, "device-id", 0, "CUDA device id")
	fs.IntVar(&f.threads, "threads", 0, "CPU intra-op threads (0: one per physical core)")
	fs.StringVar(&f.previewMethod, "preview-method", "auto", "latent previews while sampling: none, auto or latent2rgb")
	fs.BoolVar(&f.testNodes, "enable-test-nodes", false, "register ComfyUI's execution-test node pack (for tests)")
}

// env creates the folders, loads extra model paths and returns the node environment.
func (f *envFlags) env(log *slog.Logger) (*nodes.Env, error) {
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	folders := nodes.NewFolders(abs(f.modelsDir), abs(f.inputDir), abs(f.outputDir), abs(f.tempDir), abs(f.userDir))
	for _, d := range []string{folders.Input, folders.Output, folders.User} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create folder: %w", err)
		}
	}
	for _, dirs := range folders.Models {
		for _, d := range dirs {
			_ = os.MkdirAll(d, 0o755)
		}
	}
	if f.extraPaths != "" {
		if err := web.LoadExtraModelPaths(f.extraPaths, folders); err != nil {
			return nil, err
		}
	}
	if f.testNodes {
		testpack.Register()
	}
	opts := map[string]string{"provider": f.provider, "device-id": strconv.Itoa(f.deviceID), "preview-method": f.previewMethod}
	if f.ortLib != "" {
		opts["onnxruntime-lib"] = f.ortLib
	}
	if f.threads > 0 {
		opts["threads"] = strconv.Itoa(f.threads)
	}
	return &nodes.Env{Folders: folders, Log: log, Options: opts}, nil
}

// executor returns an executor with the cache mode the flags ask for.
func (f *envFlags) executor(env *nodes.Env) *executor.Executor {
	cfg := executor.Config{Env: env, Cache: executor.CacheClassic}
	switch {
	case f.cacheLRU > 0:
		cfg.Cache, cfg.LRUSize = executor.CacheLRU, f.cacheLRU
	case f.cacheNone:
		cfg.Cache = executor.CacheNone
	}
	return executor.New(cfg)
}
