package web

import (
	"bytes"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// findPythonWebsocket returns a python3 that can import websocket (python3-websocket), or "".
func findPythonWebsocket() string {
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import websocket").Run() == nil {
			return path
		}
	}
	return ""
}

// TestPythonWebsocketExample runs ComfyUI's documented websocket client flow (a Python script)
// against the server.
func TestPythonWebsocketExample(t *testing.T) {
	py := findPythonWebsocket()
	if py == "" {
		t.Skip("python3 with the websocket module not found: apt-get install -y python3 python3-websocket")
	}
	ts := newTestServer(t, "")
	dir := t.TempDir()
	prompt, _ := json.Marshal(imagePrompt(0.75, "py/example"))
	pf := filepath.Join(dir, "prompt.json")
	os.WriteFile(pf, prompt, 0o644)
	outdir := filepath.Join(dir, "out")
	os.MkdirAll(outdir, 0o755)
	cmd := exec.Command(py, "testdata/websockets_api_example.py", ts.Host, pf, outdir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.Output(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("python client timed out")
	}
	if err != nil {
		t.Fatalf("python client: %v\n%s", err, stderr.String())
	}
	fields := strings.Fields(string(out))
	if len(fields) != 3 || fields[0] != "2" || fields[1] != "example_00001_.png" {
		t.Fatalf("python output %q", out)
	}
	b, _ := os.ReadFile(filepath.Join(outdir, "example_00001_.png"))
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil || img.Bounds().Dx() != 16 {
		t.Fatalf("downloaded image: %v", err)
	}
	saved, _ := os.ReadFile(filepath.Join(ts.Dir, "output", "py", "example_00001_.png"))
	if !bytes.Equal(saved, b) {
		t.Error("downloaded bytes differ from the saved file")
	}
}
