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

// runPython runs a testdata script with args and returns its stdout.
func runPython(t *testing.T, py, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command(py, append([]string{filepath.Join("testdata", script)}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s timed out\n%s", script, stderr.String())
	}
	return stdout.String()
}

func writePrompt(t *testing.T, prompt map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(prompt)
	pf := filepath.Join(t.TempDir(), "prompt.json")
	if err := os.WriteFile(pf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return pf
}

// TestPythonBasicExample runs ComfyUI's fire-and-forget script flow (JSON sent with a form
// content type, no client_id) and waits for the prompt through /history.
func TestPythonBasicExample(t *testing.T) {
	py := findPythonWebsocket()
	if py == "" {
		t.Skip("python3 with the websocket module not found: apt-get install -y python3 python3-websocket")
	}
	ts := newTestServer(t, "")
	runPython(t, py, "basic_api_example.py", ts.Host, writePrompt(t, imagePrompt(0.5, "basic/api")))
	deadline := time.Now().Add(10 * time.Second)
	for {
		var hist map[string]map[string]any
		ts.getJSON(t, "/history", &hist)
		if len(hist) == 1 {
			for _, e := range hist {
				st := e["status"].(map[string]any)
				if st["status_str"] != "success" || st["completed"] != true {
					t.Fatalf("status %v", st)
				}
				items := e["outputs"].(map[string]any)["2"].(map[string]any)["images"].([]any)
				it := items[0].(map[string]any)
				if it["filename"] != "api_00001_.png" || it["subfolder"] != "basic" || it["type"] != "output" {
					t.Fatalf("output %v", it)
				}
				if extra := e["prompt"].([]any)[3].(map[string]any); extra["client_id"] != nil {
					t.Errorf("extra_data %v has a client_id", extra)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no history entry after 10s: %v", hist)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(ts.Dir, "output", "basic", "api_00001_.png")); err != nil {
		t.Fatal(err)
	}
}

// TestPythonWebsocketImagesExample runs ComfyUI's websockets_api_example_ws_images.py flow: a
// SaveImageWebsocket node's full-size PNGs are read from the binary frames after its
// executing message; nothing is written to the output folder.
func TestPythonWebsocketImagesExample(t *testing.T) {
	py := findPythonWebsocket()
	if py == "" {
		t.Skip("python3 with the websocket module not found: apt-get install -y python3 python3-websocket")
	}
	ts := newTestServer(t, "")
	const w, h = 640, 520 // larger than the 512 preview size
	prompt := map[string]any{
		"1": map[string]any{"class_type": "WebTestImage", "inputs": map[string]any{"width": w, "height": h, "value": 0.25}},
		"2": map[string]any{"class_type": "WebTestImage", "inputs": map[string]any{"width": w, "height": h, "value": 0.75}},
		"3": map[string]any{"class_type": "ImageBatch", "inputs": map[string]any{"image1": []any{"1", 0}, "image2": []any{"2", 0}}},
		// Latent-style previews of another node: binary frames the script must not take as images.
		"4":                         map[string]any{"class_type": "WebTestSleep", "inputs": map[string]any{"image": []any{"3", 0}, "steps": 2, "step_ms": 1, "preview": true}},
		"save_image_websocket_node": map[string]any{"class_type": "SaveImageWebsocket", "inputs": map[string]any{"images": []any{"4", 0}}},
	}
	outdir := t.TempDir()
	pf := writePrompt(t, prompt)
	for run := 0; run < 2; run++ { // the second run re-executes only SaveImageWebsocket
		out := runPython(t, py, "websockets_api_example_ws_images.py", ts.Host, pf, outdir)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "save_image_websocket_node 0 ") || !strings.HasPrefix(lines[1], "save_image_websocket_node 1 ") {
			t.Fatalf("run %d: python output %q", run, out)
		}
		for i, want := range []uint32{63, 191} { // clip(255*v) truncated
			b, _ := os.ReadFile(filepath.Join(outdir, []string{"ws_0.png", "ws_1.png"}[i]))
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("run %d image %d: %v", run, i, err)
			}
			if img.Bounds().Dx() != w || img.Bounds().Dy() != h {
				t.Fatalf("image %d is %v, want full size %dx%d", i, img.Bounds(), w, h)
			}
			if r, _, _, _ := img.At(w/2, h/2).RGBA(); r>>8 != want {
				t.Errorf("image %d pixel %d, want %d", i, r>>8, want)
			}
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(ts.Dir, "output")); len(ents) != 0 {
		t.Errorf("SaveImageWebsocket wrote files: %v", ents)
	}
}
