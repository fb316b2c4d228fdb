package page

import (
	"io/fs"
	"strings"
	"testing"
)

func TestFSHasIndex(t *testing.T) {
	b, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatalf("index.html: %v", err)
	}
	if !strings.Contains(string(b), "comfygo") {
		t.Fatalf("index.html does not look like comfygo's page: %.100q", b)
	}
	if !Built() {
		t.Skip("page not built (run `npm ci && npm run build` in web/page); placeholder served")
	}
	for _, name := range []string{"app.js", "app.css"} {
		if _, err := fs.Stat(FS(), name); err != nil {
			t.Errorf("%s missing from the built page: %v", name, err)
		}
	}
	// No external network requests: the page must not reference other hosts.
	for _, name := range []string{"index.html", "app.js", "app.css"} {
		b, _ := fs.ReadFile(FS(), name)
		for _, bad := range []string{"http://", "https://", "//cdn", "fonts.googleapis"} {
			if i := strings.Index(string(b), bad); i >= 0 && !allowedURL(string(b[i:])) {
				t.Errorf("%s references an external URL near %.60q", name, b[i:])
			}
		}
	}
}

// allowedURL accepts XML namespace identifiers, which are names, not requests.
func allowedURL(s string) bool {
	return strings.HasPrefix(s, "http://www.w3.org/")
}
