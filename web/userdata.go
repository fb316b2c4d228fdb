package web

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/comfygo/comfygo/internal/fsutil"
)

// Single-user mode: every request is user "default", as in ComfyUI without --multi-user.
const defaultUser = "default"

var settingsMu sync.Mutex

func (s *Server) userRoot() string { return filepath.Join(s.env.Folders.User, defaultUser) }

func (s *Server) handleGetUsers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"storage": "server", "migrated": true})
}

func (s *Server) handlePostUsers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": "comfygo runs in single-user mode"})
}

func (s *Server) settingsPath() string { return filepath.Join(s.userRoot(), "comfy.settings.json") }

func (s *Server) loadSettings() map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	b, err := os.ReadFile(s.settingsPath())
	if err == nil {
		if json.Unmarshal(b, &m) != nil {
			m = map[string]json.RawMessage{}
		}
	}
	return m
}

func (s *Server) saveSettings(m map[string]json.RawMessage) error {
	if err := os.MkdirAll(s.userRoot(), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(m, "", "    ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(s.settingsPath(), b, 0o644)
}

func (s *Server) handleGetSettings(w http.ResponseWriter, r *http.Request) {
	settingsMu.Lock()
	defer settingsMu.Unlock()
	writeJSON(w, http.StatusOK, s.loadSettings())
}

func (s *Server) handleGetSetting(w http.ResponseWriter, r *http.Request) {
	settingsMu.Lock()
	defer settingsMu.Unlock()
	v, ok := s.loadSettings()[r.PathValue("id")]
	if !ok {
		v = json.RawMessage("null")
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) handlePostSettings(w http.ResponseWriter, r *http.Request) {
	var upd map[string]json.RawMessage
	if err := readJSON(r, &upd); err != nil {
		badJSON(w, err)
		return
	}
	settingsMu.Lock()
	defer settingsMu.Unlock()
	m := s.loadSettings()
	for k, v := range upd {
		m[k] = v
	}
	if err := s.saveSettings(m); err != nil {
		http.Error(w, "cannot save settings", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handlePostSetting(w http.ResponseWriter, r *http.Request) {
	var v json.RawMessage
	if err := readJSON(r, &v); err != nil {
		badJSON(w, err)
		return
	}
	settingsMu.Lock()
	defer settingsMu.Unlock()
	m := s.loadSettings()
	m[r.PathValue("id")] = v
	if err := s.saveSettings(m); err != nil {
		http.Error(w, "cannot save settings", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// userPath resolves a userdata path (percent-decoded once more if it still holds '%', as
// ComfyUI does) inside the user root. code is 0 on success.
func (s *Server) userPath(p string) (string, string, int) {
	if strings.Contains(p, "%") {
		if u, err := url.PathUnescape(p); err == nil {
			p = u
		}
	}
	if p == "" {
		return "", "", http.StatusBadRequest
	}
	full, err := within(s.userRoot(), p)
	if err != nil {
		if errors.Is(err, errBadName) {
			return "", "", http.StatusBadRequest
		}
		return "", "", http.StatusForbidden
	}
	rel, _ := filepath.Rel(s.userRoot(), full)
	return full, filepath.ToSlash(rel), 0
}

type fileInfo struct {
	Path     string  `json:"path"`
	Size     int64   `json:"size"`
	Modified float64 `json:"modified"`
	Created  float64 `json:"created"`
}

func infoOf(rel string, st os.FileInfo) fileInfo {
	mt := float64(st.ModTime().UnixNano()) / 1e9
	return fileInfo{Path: rel, Size: st.Size(), Modified: mt, Created: mt}
}

func (s *Server) handleListUserdata(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := q.Get("dir")
	if d == "" {
		http.Error(w, "Directory not provided", http.StatusBadRequest)
		return
	}
	dir, _, code := s.userPath(d)
	if code != 0 {
		w.WriteHeader(code)
		return
	}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		http.Error(w, "Directory not found", http.StatusNotFound)
		return
	}
	recurse := q.Get("recurse") == "true"
	full := q.Get("full_info") == "true"
	split := q.Get("split") == "true"
	var out []any
	_ = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if e.IsDir() {
			if p != dir && !recurse {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case full:
			if info, err := e.Info(); err == nil {
				out = append(out, infoOf(rel, info))
			}
		case split:
			parts := []any{rel}
			for _, x := range strings.Split(rel, "/") {
				parts = append(parts, x)
			}
			out = append(out, parts)
		default:
			out = append(out, rel)
		}
		return nil
	})
	if out == nil {
		out = []any{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleListUserdataV2(w http.ResponseWriter, r *http.Request) {
	root := s.userRoot()
	if _, err := os.Stat(root); err != nil {
		writeJSON(w, http.StatusOK, []any{})
		return
	}
	p := r.URL.Query().Get("path")
	dir := root
	if p != "" {
		d, _, code := s.userPath(p)
		if code != 0 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		dir = d
	}
	st, err := os.Stat(dir)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if !st.IsDir() {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	type entry struct {
		Name     string   `json:"name"`
		Path     string   `json:"path"`
		Type     string   `json:"type"`
		Size     *int64   `json:"size,omitempty"`
		Modified *float64 `json:"modified,omitempty"`
	}
	var out []entry
	_ = filepath.WalkDir(dir, func(fp string, e fs.DirEntry, err error) error {
		if err != nil || fp == dir {
			return nil
		}
		rel, _ := filepath.Rel(root, fp)
		en := entry{Name: e.Name(), Path: filepath.ToSlash(rel), Type: "file"}
		if e.IsDir() {
			en.Type = "directory"
		} else if info, err := e.Info(); err == nil {
			sz, mt := info.Size(), float64(info.ModTime().UnixNano())/1e9
			en.Size, en.Modified = &sz, &mt
		}
		out = append(out, en)
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool {
		if (out[i].Type == "directory") != (out[j].Type == "directory") {
			return out[i].Type == "directory"
		}
		return strings.ToLower(out[i].Name) < strings.ToLower(out[j].Name)
	})
	if out == nil {
		out = []entry{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleGetUserdata(w http.ResponseWriter, r *http.Request) {
	p, rel, code := s.userPath(r.PathValue("file"))
	if code != 0 {
		w.WriteHeader(code)
		return
	}
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(p)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	if strings.HasSuffix(rel, ".json") {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, filepath.Base(p), st.ModTime(), f)
}

func (s *Server) writeUserResult(w http.ResponseWriter, r *http.Request, p, rel string) {
	if r.URL.Query().Get("full_info") == "true" {
		st, err := os.Stat(p)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, infoOf(rel, st))
		return
	}
	writeJSON(w, http.StatusOK, rel)
}

func (s *Server) handlePostUserdata(w http.ResponseWriter, r *http.Request) {
	p, rel, code := s.userPath(r.PathValue("file"))
	if code != 0 {
		w.WriteHeader(code)
		return
	}
	overwrite := r.URL.Query().Get("overwrite") != "false"
	if _, err := os.Stat(p); err == nil && !overwrite {
		http.Error(w, "File already exists", http.StatusConflict)
		return
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		http.Error(w, "cannot create folder", http.StatusBadRequest)
		return
	}
	if _, _, code := s.userPath(rel); code != 0 { // re-check after MkdirAll
		w.WriteHeader(code)
		return
	}
	if err := fsutil.WriteFileAtomic(p, data, 0o644); err != nil {
		http.Error(w, "cannot write file", http.StatusBadRequest)
		return
	}
	s.writeUserResult(w, r, p, rel)
}

func (s *Server) handleDeleteUserdata(w http.ResponseWriter, r *http.Request) {
	p, _, code := s.userPath(r.PathValue("file"))
	if code != 0 {
		w.WriteHeader(code)
		return
	}
	st, err := os.Lstat(p)
	if err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	if err := os.Remove(p); err != nil {
		http.Error(w, "cannot delete", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleMoveUserdata(w http.ResponseWriter, r *http.Request) {
	src, _, code := s.userPath(r.PathValue("file"))
	if code != 0 {
		w.WriteHeader(code)
		return
	}
	dst, rel, code := s.userPath(r.PathValue("dest"))
	if code != 0 {
		w.WriteHeader(code)
		return
	}
	if st, err := os.Lstat(src); err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	overwrite := r.URL.Query().Get("overwrite") != "false"
	if _, err := os.Lstat(dst); err == nil && !overwrite {
		http.Error(w, "File already exists", http.StatusConflict)
		return
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		http.Error(w, "cannot create folder", http.StatusBadRequest)
		return
	}
	if err := os.Rename(src, dst); err != nil {
		http.Error(w, "cannot move", http.StatusBadRequest)
		return
	}
	s.writeUserResult(w, r, dst, rel)
}
