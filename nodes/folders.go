package nodes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Folders is ComfyUI's folder_paths: the input, output, temp and user folders, and for each model
// folder name ("checkpoints", "loras", "vae", "embeddings", "clip", ...) the directories searched,
// in order (--models-dir first, then extra_model_paths.yaml entries).
type Folders struct {
	Input, Output, Temp, User string
	Models                    map[string][]string
}

// ModelFolderNames are the model folders ComfyUI users know, created under --models-dir.
var ModelFolderNames = []string{"checkpoints", "loras", "vae", "embeddings", "clip", "text_encoders",
	"diffusion_models", "unet", "upscale_models", "controlnet", "clip_vision", "configs"}

// modelExts are the file extensions listed for model folders (ComfyUI's supported_pt_extensions).
var modelExts = map[string]bool{".safetensors": true, ".ckpt": true, ".pt": true, ".pt2": true,
	".bin": true, ".pth": true, ".pkl": true, ".sft": true}

// NewFolders lays out ComfyUI's standard folders: models under modelsDir, the rest as given.
func NewFolders(modelsDir, input, output, temp, user string) *Folders {
	f := &Folders{Input: input, Output: output, Temp: temp, User: user, Models: map[string][]string{}}
	for _, name := range ModelFolderNames {
		f.Models[name] = []string{filepath.Join(modelsDir, name)}
	}
	// ComfyUI aliases: text_encoders also searches clip, diffusion_models also searches unet.
	f.Models["text_encoders"] = append(f.Models["text_encoders"], filepath.Join(modelsDir, "clip"))
	f.Models["diffusion_models"] = append(f.Models["diffusion_models"], filepath.Join(modelsDir, "unet"))
	return f
}

// AddModelDir appends dir to the search list of model folder kind.
func (f *Folders) AddModelDir(kind, dir string) {
	f.Models[kind] = append(f.Models[kind], dir)
}

// List returns the model files of folder kind, as names relative to their search directory
// (forward slashes, sub-folders included), sorted and de-duplicated like ComfyUI's combos.
func (f *Folders) List(kind string) []string {
	seen := map[string]bool{}
	var out []string
	for _, dir := range f.Models[kind] {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if !modelExts[strings.ToLower(filepath.Ext(p))] {
				return nil
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return nil
			}
			rel = filepath.ToSlash(rel)
			if !seen[rel] {
				seen[rel] = true
				out = append(out, rel)
			}
			return nil
		})
	}
	sort.Strings(out)
	return out
}

// ErrModelNotFound is wrapped by Find when no folder holds the file.
var ErrModelNotFound = errors.New("model file not found")

// Find resolves name (as listed by List) in folder kind to a path. Names that escape the folder
// ("..", absolute paths) are refused.
func (f *Folders) Find(kind, name string) (string, error) {
	clean := filepath.Clean(filepath.FromSlash(name))
	if name == "" || filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("invalid %s file name %q", kind, name)
	}
	dirs := f.Models[kind]
	for _, dir := range dirs {
		p := filepath.Join(dir, clean)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %q in %s (put it in one of: %s)", ErrModelNotFound, name, kind, strings.Join(dirs, ", "))
}
