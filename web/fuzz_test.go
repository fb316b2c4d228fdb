package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// FuzzPostPrompt: any body gets 200, 400 or 413 — never a panic or a 5xx.
func FuzzPostPrompt(f *testing.F) {
	for _, s := range []string{
		`{"prompt": {"1": {"class_type": "WebTestText", "inputs": {"value": 3}}}, "client_id": "x"}`,
		`{"prompt": {"1": {"class_type": "WebTestText", "inputs": {"value": [1, 2]}}}}`,
		`{"prompt": {"1": {"class_type": "SaveImage", "inputs": {"images": ["2", 0]}}}}`,
		`{"prompt": {}, "number": 1e400, "front": "yes", "extra_data": {"api_key_comfy_org": 1}}`,
		`{"prompt": {"a": {"class_type": "WebTestImage", "inputs": {"width": 18446744073709551615}}}}`,
		`{"prompt": {"1": {"class_type": "WebTestText", "inputs": {"value": 1}}}, "partial_execution_targets": ["1", 2]}`,
		`{"prompt": null}`, `[]`, `{"prompt": {"1": {"inputs": {}}}}`, "{\"prompt\": {\"\xff\": {}}}",
	} {
		f.Add([]byte(s))
	}
	ts := newTestServer(f, "")
	h := ts.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/prompt", strings.NewReader(string(body)))
		req.Host = "127.0.0.1"
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { h.ServeHTTP(rec, req); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("POST /prompt %q hangs:\n%s", body, buf[:n])
		}
		if c := rec.Code; c != 200 && c != 400 && c != 413 {
			t.Fatalf("POST /prompt %q: %d %s", body, c, rec.Body.String())
		}
	})
}

// FuzzView: /view never serves a file outside the input, output and temp folders.
func FuzzView(f *testing.F) {
	for _, s := range [][3]string{{"a.png", "", "output"}, {"../x", "", "input"}, {"x", "..", "temp"},
		{"x [input]", "sub/../..", ""}, {"%2e%2e/a", "/etc", "output"}, {"passwd", "../../../../etc", "output"}} {
		f.Add(s[0], s[1], s[2])
	}
	ts := newTestServer(f, "")
	h := ts.Handler()
	f.Fuzz(func(t *testing.T, filename, subfolder, typ string) {
		p, _, code := ts.resolveFile(filename, typ, subfolder)
		if code == 0 {
			ok := false
			for _, base := range []string{ts.env.Folders.Input, ts.env.Folders.Output, ts.env.Folders.Temp} {
				if r, err := filepath.Rel(base, p); err == nil && r != ".." && !strings.HasPrefix(r, "../") && !filepath.IsAbs(r) {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("resolved %q outside the folders", p)
			}
		}
		q := url.Values{"filename": {filename}, "subfolder": {subfolder}, "type": {typ}}
		req := httptest.NewRequest("GET", "/view?"+q.Encode(), nil)
		req.Host = "127.0.0.1"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 || rec.Code == http.StatusOK && code != 0 {
			t.Fatalf("view %q %q %q: %d", filename, subfolder, typ, rec.Code)
		}
	})
}
