package cli

import (
	"bytes"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// capture runs f with stdout and stderr redirected and returns what they printed.
func capture(t *testing.T, f func() int) (code int, stdout, stderr string) {
	t.Helper()
	oldOut, oldErr := os.Stdout, os.Stderr
	ro, wo, _ := os.Pipe()
	re, we, _ := os.Pipe()
	os.Stdout, os.Stderr = wo, we
	outC, errC := make(chan string), make(chan string)
	go func() { b, _ := io.ReadAll(ro); outC <- string(b) }()
	go func() { b, _ := io.ReadAll(re); errC <- string(b) }()
	code = f()
	wo.Close()
	we.Close()
	os.Stdout, os.Stderr = oldOut, oldErr
	return code, <-outC, <-errC
}

func TestRunConvertNodes(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "input")
	os.MkdirAll(in, 0o755)
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 8, 8)))
	os.WriteFile(filepath.Join(in, "black.png"), buf.Bytes(), 0o644)
	prompt := `{"1": {"class_type": "LoadImage", "inputs": {"image": "black.png"}},
	 "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
	 "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "cli/test"}}}`
	pf := filepath.Join(dir, "prompt.json")
	os.WriteFile(pf, []byte(prompt), 0o644)
	dirs := []string{"--input-dir", in, "--output-dir", filepath.Join(dir, "output"), "--temp-dir", filepath.Join(dir, "temp"), "--user-dir", filepath.Join(dir, "user"), "--models-dir", filepath.Join(dir, "models")}

	code, out, errOut := capture(t, func() int { return runRun(append([]string{pf}, dirs...)) })
	want := filepath.Join(dir, "output", "cli", "test_00001_.png")
	if code != exitOK || strings.TrimSpace(out) != want {
		t.Fatalf("run: code %d stdout %q stderr %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "3 SaveImage") || !strings.Contains(errOut, "done in") {
		t.Errorf("progress output: %q", errOut)
	}
	data, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := png.Decode(bytes.NewReader(data))
	if r, _, _, _ := img.At(0, 0).RGBA(); r>>8 != 255 {
		t.Errorf("inverted black pixel = %d", r>>8)
	}

	// validation failure: exit 4 with ComfyUI's message
	bad := strings.Replace(prompt, `"black.png"`, `"missing.png"`, 1)
	os.WriteFile(pf, []byte(bad), 0o644)
	code, _, errOut = capture(t, func() int { return runRun(append([]string{pf}, dirs...)) })
	if code != exitValidation || !strings.Contains(errOut, "Invalid image file: missing.png") {
		t.Errorf("invalid prompt: code %d stderr %q", code, errOut)
	}
	// unreadable input: exit 3; usage: exit 2
	if code, _, _ := capture(t, func() int { return runRun([]string{filepath.Join(dir, "nope.json")}) }); code != exitBadInput {
		t.Errorf("missing file: code %d", code)
	}
	if code, _, _ := capture(t, func() int { return runRun(nil) }); code != exitUsage {
		t.Errorf("no args: code %d", code)
	}

	// convert prints the API prompt
	os.WriteFile(pf, []byte(prompt), 0o644)
	code, out, _ = capture(t, func() int { return runConvert([]string{pf}) })
	if code != exitOK || !strings.Contains(out, `"class_type": "ImageInvert"`) {
		t.Errorf("convert: %d %q", code, out)
	}
	code, out, _ = capture(t, func() int { return runNodes(nil) })
	if code != exitOK || !strings.Contains(out, "SaveImage") || !strings.Contains(out, "EmptyLatentImage") {
		t.Errorf("nodes: %d %q", code, out)
	}
}
