package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/comfygo/comfygo/nodes"
)

// envFlags are the folder and runtime flags shared by the commands that execute prompts.
type envFlags struct {
	modelsDir, inputDir, outputDir, tempDir, userDir string
	provider, ortLib                                 string
	deviceID, threads                                int
	testNodes                                        bool
}

// register adds the flags to fs with ComfyUI's defaults (folders under the current directory).
func (f *envFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.modelsDir, "models-dir", "models", "models folder (checkpoints/, loras/, vae/, embeddings/, clip/ ...)")
	fs.StringVar(&f.inputDir, "input-dir", "input", "input folder (LoadImage, uploads)")
	fs.StringVar(&f.outputDir, "output-dir", "output", "output folder (SaveImage)")
	fs.StringVar(&f.tempDir, "temp-dir", "temp", "temp folder (PreviewImage)")
	fs.StringVar(&f.userDir, "user-dir", "user", "user folder (settings, workflows, queue database)")
	fs.StringVar(&f.provider, "provider", "cpu", "ONNX Runtime execution provider: cpu, cuda or auto (cuda if available, else cpu)")
	fs.StringVar(&f.ortLib, "onnxruntime-lib", "", "ONNX Runtime shared library (default: $ONNXRUNTIME_LIB, else third_party/onnxruntime/libonnxruntime.so.1)")
	fs.IntVar(&f.deviceID, "device-id", 0, "CUDA device id")
	fs.IntVar(&f.threads, "threads", 0, "CPU intra-op threads (0: one per physical core)")
	fs.BoolVar(&f.testNodes, "enable-test-nodes", false, "register ComfyUI's execution-test node pack")
}

// env creates the folders and returns the node environment.
func (f *envFlags) env() (*nodes.Env, error) {
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	folders := nodes.NewFolders(abs(f.modelsDir), abs(f.inputDir), abs(f.outputDir), abs(f.tempDir), abs(f.userDir))
	for _, d := range []string{folders.Input, folders.Output, folders.Temp, folders.User} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create folder: %w", err)
		}
	}
	if f.testNodes {
		registerTestNodes()
	}
	opts := map[string]string{"provider": f.provider, "device-id": strconv.Itoa(f.deviceID)}
	if f.ortLib != "" {
		opts["onnxruntime-lib"] = f.ortLib
	}
	if f.threads > 0 {
		opts["threads"] = strconv.Itoa(f.threads)
	}
	return &nodes.Env{Folders: folders, Log: slog.Default(), Options: opts}, nil
}
