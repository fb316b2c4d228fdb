package tokenizer

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// EmbeddingFile is a loaded textual-inversion file: its tensors by name (safetensors: sorted
// names, as load_file yields them; torch files: the dict's order), or Param for an A1111 file
// ("string_to_param").
type EmbeddingFile struct {
	Names   []string
	Tensors map[string]*tensor.Tensor
	Param   *tensor.Tensor
}

// Select picks the tensor an encoder uses, with upstream load_embed's rules for a
// safetensors file: the encoder's key ("clip_l", "clip_g", "clip_h"); else LoRA-bundled
// embeddings ("bundle_emb.*.string_to_param.*", then "bundle_emb.*.<key>", concatenated);
// else the first tensor.
func (e *EmbeddingFile) Select(key string) (*tensor.Tensor, error) {
	if e.Param != nil {
		return e.Param, nil
	}
	if t, ok := e.Tensors[key]; ok && key != "" {
		return t, nil
	}
	if t, err := e.bundled(func(k string) bool {
		return strings.HasPrefix(k, "bundle_emb.") && strings.HasSuffix(k, ".string_to_param.*")
	}); t != nil || err != nil {
		return t, err
	}
	if t, err := e.bundled(func(k string) bool {
		return strings.HasPrefix(k, "bundle_emb.") && strings.HasSuffix(k, "."+key)
	}); t != nil || err != nil {
		return t, err
	}
	if len(e.Names) == 0 {
		return nil, fmt.Errorf("embedding file holds no tensors")
	}
	return e.Tensors[e.Names[0]], nil
}

// bundled concatenates, along the first axis, the tensors whose names match.
func (e *EmbeddingFile) bundled(match func(string) bool) (*tensor.Tensor, error) {
	var out *tensor.Tensor
	for _, n := range e.Names {
		if !match(n) {
			continue
		}
		t := e.Tensors[n]
		if len(t.Shape) == 1 {
			t = tensor.FromData(t.Data, 1, t.Shape[0])
		}
		if out == nil {
			out = t.Clone()
			continue
		}
		if len(t.Shape) != len(out.Shape) || tensor.Numel(t.Shape[1:]) != tensor.Numel(out.Shape[1:]) {
			return nil, fmt.Errorf("bundled embedding %q: shape %v does not concatenate with %v", n, t.Shape, out.Shape)
		}
		out.Data = append(out.Data, t.Data...)
		out.Shape[0] += t.Shape[0]
	}
	return out, nil
}

// LoadEmbeddingFile reads a textual-inversion file: .safetensors, or a torch.save zip archive
// (A1111 .pt, diffusers .bin) read by a restricted unpickler. Legacy non-zip torch files and
// list-of-dicts layouts are refused with an error.
func LoadEmbeddingFile(path string) (*EmbeddingFile, error) {
	if !strings.EqualFold(filepath.Ext(path), ".safetensors") {
		if st, err := os.Stat(path); err == nil && st.Size() > maxTorchEmbedding {
			return nil, fmt.Errorf("embedding %q: %d bytes is too large for a textual-inversion file", filepath.Base(path), st.Size())
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("embedding %q: %w", filepath.Base(path), err)
		}
		obj, err := loadTorchZip(raw)
		if err != nil {
			return nil, fmt.Errorf("embedding %q: %w", filepath.Base(path), err)
		}
		e, err := embeddingFromPickle(obj)
		if err != nil {
			return nil, fmt.Errorf("embedding %q: %w", filepath.Base(path), err)
		}
		return e, nil
	}
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("embedding %q: %w", filepath.Base(path), err)
	}
	defer f.Close()
	e := &EmbeddingFile{Names: f.Keys(), Tensors: map[string]*tensor.Tensor{}}
	for _, k := range e.Names {
		t, err := f.Float32(k)
		if err != nil {
			return nil, fmt.Errorf("embedding %q: %w", filepath.Base(path), err)
		}
		e.Tensors[k] = t
	}
	return e, nil
}

// maxTorchEmbedding bounds the torch files read whole into memory.
const maxTorchEmbedding = 256 << 20

// Embeddings finds and caches textual-inversion files in a list of directories, as upstream
// load_embed does: every directory and each of its sub-directories is tried in turn, with NAME
// as given, then NAME + ".safetensors", ".pt", ".bin"; names escaping a directory are refused.
// It is safe for concurrent use.
type Embeddings struct {
	Dirs []string

	mu    sync.Mutex
	cache map[string]*EmbeddingFile
}

// NewEmbeddings returns a finder over dirs.
func NewEmbeddings(dirs []string) *Embeddings { return &Embeddings{Dirs: dirs} }

// Find resolves name to a file path ("" if none).
func (e *Embeddings) Find(name string) string {
	if name == "" {
		return ""
	}
	for _, root := range e.Dirs {
		rootAbs, err := filepath.Abs(root)
		if err != nil {
			continue
		}
		if st, err := os.Stat(rootAbs); err != nil || !st.IsDir() {
			continue
		}
		var found string
		_ = filepath.WalkDir(rootAbs, func(dir string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() || found != "" {
				if found != "" {
					return filepath.SkipAll
				}
				return nil
			}
			p := filepath.Join(dir, filepath.FromSlash(name))
			if rel, err := filepath.Rel(dir, p); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
				return nil
			}
			for _, cand := range []string{p, p + ".safetensors", p + ".pt", p + ".bin"} {
				if st, err := os.Stat(cand); err == nil && st.Mode().IsRegular() {
					found = cand
					return filepath.SkipAll
				}
			}
			return nil
		})
		if found != "" {
			return found
		}
	}
	return ""
}

// Load returns the parsed file for name: found=false when no file matches.
func (e *Embeddings) Load(name string) (f *EmbeddingFile, found bool, err error) {
	p := e.Find(name)
	if p == "" {
		return nil, false, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if f, ok := e.cache[p]; ok {
		return f, true, nil
	}
	f, err = LoadEmbeddingFile(p)
	if err != nil {
		return nil, true, err
	}
	if e.cache == nil {
		e.cache = map[string]*EmbeddingFile{}
	}
	e.cache[p] = f
	return f, true, nil
}

// Lookup returns the EmbeddingLookup of one encoder (key "clip_l", "clip_g" or "clip_h").
func (e *Embeddings) Lookup(key string) EmbeddingLookup {
	return func(name string) ([]float32, []int, bool, error) {
		f, found, err := e.Load(name)
		if err != nil || !found {
			return nil, nil, found, err
		}
		t, err := f.Select(key)
		if err != nil {
			return nil, nil, true, fmt.Errorf("embedding %q: %w", name, err)
		}
		return t.Data, t.Shape, true, nil
	}
}
