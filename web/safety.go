package web

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// tokenCookie is the cookie that carries --auth-token for browsers (set by visiting /?token=...).
const tokenCookie = "comfygo_token"

// errOutside is returned when a path would leave its base folder.
var errOutside = errors.New("path escapes its folder")

// errBadName is returned for an invalid file name.
var errBadName = errors.New("invalid file name")

// recoverer turns a handler panic into a 500 so one bad request never stops the server.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// guard applies the safety checks every request passes: the auth token, the origin check (or
// the CORS headers), the body size limit and ComfyUI's cache headers.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.LoopbackOnly && !loopbackHost(r.Host) {
			http.Error(w, "403 Forbidden: this server only answers requests for a loopback host name (DNS rebinding protection)", http.StatusForbidden)
			return
		}
		if s.cfg.CORSOrigin != "" {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", s.cfg.CORSOrigin)
			h.Set("Access-Control-Allow-Methods", "POST, GET, DELETE, PUT, OPTIONS, PATCH")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
			h.Set("Access-Control-Allow-Credentials", "true")
			if r.Method == http.MethodOptions {
				w.WriteHeader(http.StatusOK)
				return
			}
		} else {
			if !originAllowed(r) {
				w.WriteHeader(http.StatusForbidden)
				return
			}
			if r.Method == http.MethodOptions {
				w.WriteHeader(http.StatusOK)
				return
			}
		}
		if s.cfg.AuthToken != "" && !s.authorized(w, r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="comfygo"`)
			http.Error(w, "401 Unauthorized: pass the --auth-token as 'Authorization: Bearer <token>' or visit /?token=<token> once", http.StatusUnauthorized)
			return
		}
		if r.Body != nil && r.ContentLength != 0 {
			if r.ContentLength > s.cfg.MaxUploadSize {
				http.Error(w, "413 Request Entity Too Large", http.StatusRequestEntityTooLarge)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadSize)
		}
		p := r.URL.Path
		switch {
		case strings.HasSuffix(p, ".js") || strings.HasSuffix(p, ".css") || isIndexJSON(p):
			w.Header().Set("Cache-Control", "no-cache")
		case isImagePath(p):
			w = &imageCacheWriter{ResponseWriter: w}
		}
		next.ServeHTTP(w, r)
	})
}

func isIndexJSON(p string) bool {
	b := p[strings.LastIndexByte(p, '/')+1:]
	return strings.HasPrefix(b, "index") && strings.HasSuffix(b, ".json")
}

func isImagePath(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp":
		return true
	}
	return false
}

// imageCacheWriter sets ComfyUI's Cache-Control for image paths by status code.
type imageCacheWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *imageCacheWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if w.Header().Get("Cache-Control") == "" {
			switch {
			case code == 404:
				w.Header().Set("Cache-Control", "public, max-age=3600")
			case code == 302 || code == 303 || code == 307:
				w.Header().Set("Cache-Control", "no-cache")
			case code >= 200 && code < 300 || code == 301 || code == 308:
				w.Header().Set("Cache-Control", "public, max-age=86400")
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *imageCacheWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *imageCacheWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// originAllowed is ComfyUI's origin check, applied to every Host (not only loopback ones):
// a browser request whose Origin names another host than the Host header is refused, and so
// is one the browser marks Sec-Fetch-Site: cross-site. Non-browser clients send no Origin.
func originAllowed(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" || r.Host == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false // "null" (file://, sandboxed frames) and garbage
	}
	hh, hp := splitHostPort(strings.ToLower(r.Host))
	oh, op := splitHostPort(strings.ToLower(u.Host))
	if hh != oh {
		return false
	}
	return hp == "" || op == "" || hp == op
}

func splitHostPort(hp string) (host, port string) {
	if h, p, err := net.SplitHostPort(hp); err == nil {
		return strings.Trim(h, "[]"), p
	}
	return strings.Trim(hp, "[]"), ""
}

// authorized checks the bearer token, the cookie, or ?token= (which also sets the cookie so the
// browser page and its websocket work after one visit with the token).
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	want := []byte(s.cfg.AuthToken)
	eq := func(got string) bool { return got != "" && subtle.ConstantTimeCompare([]byte(got), want) == 1 }
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") && eq(strings.TrimPrefix(a, "Bearer ")) {
		return true
	}
	if c, err := r.Cookie(tokenCookie); err == nil && eq(c.Value) {
		return true
	}
	if t := r.URL.Query().Get("token"); eq(t) {
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: t, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
		return true
	}
	return false
}

// loopbackHost reports whether a Host header names a loopback host (localhost, *.localhost,
// 127.0.0.0/8, ::1). An empty Host (HTTP/1.0) is accepted.
func loopbackHost(hostport string) bool {
	if hostport == "" {
		return true
	}
	h, _ := splitHostPort(strings.ToLower(hostport))
	return IsLoopback(h) || strings.HasSuffix(h, ".localhost")
}

// IsLoopback reports whether listen address host is a loopback address (or "localhost").
func IsLoopback(host string) bool {
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// cleanRel validates a client-supplied relative path (subfolder or file path, '/'-separated):
// no NUL, no absolute path, no drive letter, no ".." element, no backslash tricks. It returns the
// cleaned OS path ("" for empty).
func cleanRel(p string) (string, error) {
	if strings.ContainsRune(p, 0) || strings.Contains(p, "\\") {
		return "", errBadName
	}
	if p == "" {
		return "", nil
	}
	if strings.HasPrefix(p, "/") || filepath.IsAbs(p) || filepath.VolumeName(p) != "" {
		return "", errOutside
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", errOutside
		}
	}
	c := filepath.Clean(filepath.FromSlash(p))
	if c == "." {
		return "", nil
	}
	if c == ".." || strings.HasPrefix(c, ".."+string(filepath.Separator)) {
		return "", errOutside
	}
	return c, nil
}

// within resolves rel under base and makes sure the result, with every symlink resolved, is
// still inside base (also resolved). The target need not exist; its deepest existing ancestor
// is resolved instead.
func within(base, rel string) (string, error) {
	c, err := cleanRel(rel)
	if err != nil {
		return "", err
	}
	absBase, err := filepath.Abs(base)
	if err != nil {
		return "", err
	}
	realBase, err := filepath.EvalSymlinks(absBase)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			realBase = absBase
		} else {
			return "", err
		}
	}
	full := filepath.Join(absBase, c)
	// Resolve the deepest existing ancestor.
	probe, rest := full, ""
	for {
		real, err := filepath.EvalSymlinks(probe)
		if err == nil {
			if rest != "" {
				real = filepath.Join(real, rest)
			}
			if !inside(realBase, real) {
				return "", errOutside
			}
			return full, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("resolve %s: %w", probe, err)
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			return full, nil
		}
		rest = filepath.Join(filepath.Base(probe), rest)
		probe = parent
	}
}

func inside(base, p string) bool {
	if p == base {
		return true
	}
	r, err := filepath.Rel(base, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) && !filepath.IsAbs(r)
}

// sanitizeFilename reduces a client-supplied file name to a safe base name: the last path
// element, no NUL/control characters, not "", "." or "..".
func sanitizeFilename(name string) (string, error) {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", errBadName
		}
	}
	if name == "" || name == "." || name == ".." {
		return "", errBadName
	}
	return name, nil
}
