package web

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/comfygo/comfygo/nodes"
)

// legacyFolders maps ComfyUI's old folder names to the current ones (folder_paths.map_legacy).
var legacyFolders = map[string]string{"clip": "text_encoders", "unet": "diffusion_models"}

// ExtraPath is one directory from extra_model_paths.yaml.
type ExtraPath struct {
	Folder    string // model folder name ("checkpoints", "loras", ...)
	Dir       string
	IsDefault bool // is_default: searched first
}

// ParseExtraModelPaths parses ComfyUI's extra_model_paths.yaml. Relative paths resolve against
// base_path, or (without one) against yamlDir. A folder value may list several directories, one
// per line. Keys that are not folders (custom_nodes, download_model_base) are kept; the caller
// decides what to use.
func ParseExtraModelPaths(data []byte, yamlDir string) ([]ExtraPath, error) {
	var doc map[string]map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse extra model paths: %w", err)
	}
	names := make([]string, 0, len(doc))
	for n := range doc {
		names = append(names, n)
	}
	sort.Strings(names) // YAML maps are unordered in Go; sort for determinism
	var out []ExtraPath
	for _, n := range names {
		conf := doc[n]
		if conf == nil {
			continue
		}
		base := ""
		if b, ok := conf["base_path"].(string); ok && b != "" {
			base = expandPath(b)
			if !filepath.IsAbs(base) {
				base = filepath.Join(yamlDir, base)
			}
		}
		isDefault, _ := conf["is_default"].(bool)
		keys := make([]string, 0, len(conf))
		for k := range conf {
			if k != "base_path" && k != "is_default" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			s, ok := conf[k].(string)
			if !ok {
				continue
			}
			for _, line := range strings.Split(s, "\n") {
				line = strings.TrimSpace(line)
				if line == "" {
					continue
				}
				p := expandPath(line)
				if base != "" {
					p = filepath.Join(base, p)
				} else if !filepath.IsAbs(p) {
					p = filepath.Join(yamlDir, p)
				}
				out = append(out, ExtraPath{Folder: k, Dir: filepath.Clean(p), IsDefault: isDefault})
			}
		}
	}
	return out, nil
}

func expandPath(p string) string {
	p = os.ExpandEnv(p)
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			p = filepath.Join(home, strings.TrimPrefix(p, "~"))
		}
	}
	return p
}

// LoadExtraModelPaths reads an extra_model_paths.yaml and adds its directories to f (is_default
// ones in front). Legacy names (clip, unet) also feed their current folders.
func LoadExtraModelPaths(path string, f *nodes.Folders) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("extra model paths: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("extra model paths: %w", err)
	}
	eps, err := ParseExtraModelPaths(data, filepath.Dir(abs))
	if err != nil {
		return fmt.Errorf("extra model paths %s: %w", path, err)
	}
	front := map[string][]string{} // is_default dirs, kept in file order, go in front
	for _, ep := range eps {
		if ep.Folder == "custom_nodes" || ep.Folder == "download_model_base" {
			continue
		}
		kinds := []string{ep.Folder}
		if cur, ok := legacyFolders[ep.Folder]; ok {
			kinds = append(kinds, cur)
		}
		for _, k := range kinds {
			if ep.IsDefault {
				front[k] = append(front[k], ep.Dir)
			} else {
				f.AddModelDir(k, ep.Dir)
			}
		}
	}
	for k, dirs := range front {
		f.Models[k] = append(dirs, f.Models[k]...)
	}
	return nil
}
