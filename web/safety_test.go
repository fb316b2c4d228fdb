package web

import (
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestOriginAllowed(t *testing.T) {
	cases := []struct {
		host, origin, site string
		ok                 bool
	}{
		{"127.0.0.1:8188", "", "", true},
		{"127.0.0.1:8188", "http://127.0.0.1:8188", "", true},
		{"127.0.0.1:8188", "http://127.0.0.1", "", true}, // ports compared only when both present
		{"127.0.0.1:8188", "http://127.0.0.1:9999", "", false},
		{"127.0.0.1:8188", "http://evil.example", "", false},
		{"localhost:8188", "http://LOCALHOST:8188", "", true},
		{"127.0.0.1:8188", "null", "", false},
		{"[::1]:8188", "http://[::1]:8188", "", true},
		{"127.0.0.1:8188", "", "cross-site", false},
		{"127.0.0.1:8188", "http://127.0.0.1:8188", "same-origin", true},
	}
	for _, c := range cases {
		r := httptest.NewRequest("POST", "/prompt", nil)
		r.Host = c.host
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.site != "" {
			r.Header.Set("Sec-Fetch-Site", c.site)
		}
		if got := originAllowed(r); got != c.ok {
			t.Errorf("host %q origin %q site %q: got %v want %v", c.host, c.origin, c.site, got, c.ok)
		}
	}
}

func TestWithin(t *testing.T) {
	base := t.TempDir()
	outside := t.TempDir()
	os.MkdirAll(filepath.Join(base, "sub"), 0o755)
	os.Symlink(outside, filepath.Join(base, "escape"))
	os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("x"), 0o644)
	os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(base, "link.txt"))
	os.Symlink(filepath.Join(base, "sub"), filepath.Join(base, "inlink"))
	cases := []struct {
		rel string
		ok  bool
	}{
		{"", true}, {"sub", true}, {"sub/new/deeper", true}, {"a.png", true}, {"inlink/x.png", true},
		{"..", false}, {"../x", false}, {"sub/../../x", false}, {"/etc", false}, {"/etc/passwd", false},
		{"escape", false}, {"escape/secret.txt", false}, {"escape/new", false}, {"link.txt", false},
		{"a\x00b", false}, {`..\x`, false}, {"sub/..", false},
	}
	for _, c := range cases {
		_, err := within(base, c.rel)
		if (err == nil) != c.ok {
			t.Errorf("within(%q): err=%v, want ok=%v", c.rel, err, c.ok)
		}
	}
	if _, err := within(base, "../x"); !errors.Is(err, errOutside) {
		t.Errorf("want errOutside, got %v", err)
	}
}

func TestSanitizeFilename(t *testing.T) {
	for in, want := range map[string]string{"a.png": "a.png", "x/y/a.png": "a.png", `c:\x\a.png`: "a.png", "../../a.png": "a.png"} {
		if got, err := sanitizeFilename(in); err != nil || got != want {
			t.Errorf("sanitizeFilename(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "x/..", "a\nb", "a\x00"} {
		if _, err := sanitizeFilename(bad); err == nil {
			t.Errorf("sanitizeFilename(%q) accepted", bad)
		}
	}
}

// FuzzWithin: whatever the input, a path within accepts stays inside base.
func FuzzWithin(f *testing.F) {
	for _, s := range []string{"", "a", "../a", "a/../../b", "/abs", "a/./b", "%2e%2e/x", "a//b", `..\\a`} {
		f.Add(s)
	}
	base := f.TempDir()
	f.Fuzz(func(t *testing.T, rel string) {
		p, err := within(base, rel)
		if err != nil {
			return
		}
		r, err := filepath.Rel(base, p)
		if err != nil || r == ".." || filepath.IsAbs(r) || len(r) >= 3 && r[:3] == "../" {
			t.Fatalf("within(%q) = %q escapes %q", rel, p, base)
		}
	})
}
