package web

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/comfygo/comfygo/nodes"
)

func TestLoadExtraModelPaths(t *testing.T) {
	dir := t.TempDir()
	yml := `
comfyui:
    base_path: /opt/ComfyUI/
    is_default: true
    checkpoints: models/checkpoints/
    clip: models/clip/
    loras: |
         models/loras/
         models/other_loras/
    custom_nodes: custom_nodes/
a1111:
    base_path: sd
    vae: models/VAE
other:
    embeddings: /abs/emb
`
	p := filepath.Join(dir, "extra_model_paths.yaml")
	os.WriteFile(p, []byte(yml), 0o644)
	f := nodes.NewFolders(filepath.Join(dir, "models"), "in", "out", "tmp", "user")
	if err := LoadExtraModelPaths(p, f); err != nil {
		t.Fatal(err)
	}
	if got := f.Models["checkpoints"][0]; got != "/opt/ComfyUI/models/checkpoints" {
		t.Errorf("is_default checkpoints not first: %v", f.Models["checkpoints"])
	}
	loras := f.Models["loras"]
	if len(loras) != 3 || loras[0] != "/opt/ComfyUI/models/loras" || loras[1] != "/opt/ComfyUI/models/other_loras" {
		t.Errorf("multi-line loras: %v", loras)
	}
	te := f.Models["text_encoders"]
	if te[0] != "/opt/ComfyUI/models/clip" {
		t.Errorf("legacy clip should feed text_encoders: %v", te)
	}
	vae := f.Models["vae"]
	if vae[len(vae)-1] != filepath.Join(dir, "sd/models/VAE") {
		t.Errorf("relative base_path: %v", vae)
	}
	emb := f.Models["embeddings"]
	if emb[len(emb)-1] != "/abs/emb" {
		t.Errorf("absolute path without base: %v", emb)
	}
	if _, ok := f.Models["custom_nodes"]; ok {
		t.Errorf("custom_nodes must not become a model folder")
	}
	if _, err := ParseExtraModelPaths([]byte("a: [1, 2"), dir); err == nil {
		t.Error("malformed YAML accepted")
	}
}

func FuzzParseExtraModelPaths(f *testing.F) {
	f.Add([]byte("comfyui:\n  base_path: /x\n  loras: |\n    a\n    b\n"))
	f.Add([]byte("x: 1"))
	f.Add([]byte("- a\n- b"))
	f.Fuzz(func(t *testing.T, data []byte) {
		eps, err := ParseExtraModelPaths(data, "/base")
		if err != nil {
			return
		}
		for _, e := range eps {
			if e.Dir == "" || e.Folder == "" {
				t.Fatalf("empty entry %+v", e)
			}
		}
	})
}
