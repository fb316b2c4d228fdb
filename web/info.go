package web

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/comfygo/comfygo/nodes"
)

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "cannot encode response", http.StatusInternalServerError)
		return
	}
	writeRaw(w, code, b)
}

func writeRaw(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// readJSON decodes the request body leniently (any Content-Type), keeping numbers exact.
func readJSON(r *http.Request, v any) error {
	if r.Body == nil {
		return errors.New("empty body")
	}
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	return nil
}

// badJSON answers a malformed body with a ComfyUI-style 400 error object.
func badJSON(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		http.Error(w, "413 Request Entity Too Large", http.StatusRequestEntityTooLarge)
		return
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{
		"error": map[string]any{"type": "invalid_json", "message": "Invalid JSON in request body",
			"details": err.Error(), "extra_info": map[string]any{}},
		"node_errors": map[string]any{}})
}

func sortSlice[T any](s []T, less func(a, b T) bool) {
	sort.SliceStable(s, func(i, j int) bool { return less(s[i], s[j]) })
}

// memInfo reads total and available RAM from /proc/meminfo (zeros elsewhere).
func memInfo() (total, free uint64) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 2 {
			continue
		}
		v, _ := strconv.ParseUint(fs[1], 10, 64)
		switch fs[0] {
		case "MemTotal:":
			total = v * 1024
		case "MemAvailable:":
			free = v * 1024
		}
	}
	return total, free
}

func (s *Server) handleSystemStats(w http.ResponseWriter, r *http.Request) {
	total, free := memInfo()
	argv := s.cfg.Argv
	if argv == nil {
		argv = []string{"comfygo", "serve"}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"system": map[string]any{
			"os": runtime.GOOS, "ram_total": total, "ram_free": free,
			"comfyui_version": Version, "required_frontend_version": "1.35.9",
			"installed_templates_version": "", "required_templates_version": "",
			"python_version": "comfygo (" + runtime.Version() + ")", "pytorch_version": "n/a",
			"embedded_python": false, "argv": argv,
		},
		"devices": []any{map[string]any{
			"name": "cpu", "type": "cpu", "index": 0,
			"vram_total": total, "vram_free": free, "torch_vram_total": 0, "torch_vram_free": 0,
		}},
	})
}

func (s *Server) handleFeatures(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.features())
}

func (s *Server) handleEmbeddings(w http.ResponseWriter, r *http.Request) {
	out := []string{}
	for _, f := range s.env.Folders.List("embeddings") {
		out = append(out, strings.TrimSuffix(f, filepath.Ext(f)))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleExtensions lists the JS files under the frontend's extensions/ folder.
func (s *Server) handleExtensions(w http.ResponseWriter, r *http.Request) {
	out := []string{}
	if root := s.cfg.FrontEndRoot; root != "" {
		ext := filepath.Join(root, "extensions")
		_ = filepath.WalkDir(ext, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".js") {
				rel, _ := filepath.Rel(root, p)
				out = append(out, "/"+filepath.ToSlash(rel))
			}
			return nil
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// modelFolders returns the model folder names: ComfyUI's well-known ones first, then others.
func (s *Server) modelFolders() []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range nodes.ModelFolderNames {
		if _, ok := s.env.Folders.Models[n]; ok && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	var rest []string
	for n := range s.env.Folders.Models {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.modelFolders())
}

func (s *Server) handleModelFolder(w http.ResponseWriter, r *http.Request) {
	folder := r.PathValue("folder")
	if _, ok := s.env.Folders.Models[folder]; !ok {
		http.NotFound(w, r)
		return
	}
	out := s.env.Folders.List(folder)
	if out == nil {
		out = []string{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleExperimentModels(w http.ResponseWriter, r *http.Request) {
	out := []any{}
	for _, n := range s.modelFolders() {
		if n == "configs" || n == "custom_nodes" {
			continue
		}
		dirs := []string{}
		for _, d := range s.env.Folders.Models[n] {
			if a, err := filepath.Abs(d); err == nil {
				dirs = append(dirs, a)
			}
		}
		out = append(out, map[string]any{"name": n, "folders": dirs})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleExperimentModelFolder(w http.ResponseWriter, r *http.Request) {
	folder := r.PathValue("folder")
	dirs, ok := s.env.Folders.Models[folder]
	if !ok {
		http.NotFound(w, r)
		return
	}
	out := []any{}
	for i, dir := range dirs {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			rel, _ := filepath.Rel(dir, p)
			mt := float64(info.ModTime().UnixNano()) / 1e9
			out = append(out, map[string]any{"name": filepath.ToSlash(rel), "pathIndex": i,
				"modified": mt, "created": mt, "size": info.Size()})
			return nil
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleFolderPaths(w http.ResponseWriter, r *http.Request) {
	out := map[string][]string{}
	for n, dirs := range s.env.Folders.Models {
		abs := []string{}
		for _, d := range dirs {
			if a, err := filepath.Abs(d); err == nil {
				abs = append(abs, a)
			}
		}
		out[n] = abs
	}
	writeJSON(w, http.StatusOK, out)
}

// handleViewMetadata returns the __metadata__ object of a safetensors model file.
func (s *Server) handleViewMetadata(w http.ResponseWriter, r *http.Request) {
	folder := r.PathValue("folder")
	name := r.URL.Query().Get("filename")
	if _, ok := s.env.Folders.Models[folder]; !ok || !strings.HasSuffix(name, ".safetensors") {
		http.NotFound(w, r)
		return
	}
	p, err := s.env.Folders.Find(folder, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	meta, err := safetensorsMetadata(p)
	if err != nil || meta == nil {
		http.NotFound(w, r)
		return
	}
	writeRaw(w, http.StatusOK, meta)
}

// safetensorsMetadata reads the header's __metadata__ (nil if none).
func safetensorsMetadata(p string) (json.RawMessage, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return nil, err
	}
	if n > 100<<20 {
		return nil, errors.New("safetensors header too large")
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return nil, err
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, err
	}
	return h["__metadata__"], nil
}

func emptyObject(w http.ResponseWriter, r *http.Request) { writeRaw(w, http.StatusOK, []byte("{}")) }

func (s *Server) handleGlobalSubgraph(w http.ResponseWriter, r *http.Request) {
	writeRaw(w, http.StatusOK, []byte("null"))
}
