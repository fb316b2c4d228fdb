package sdktest

import (
	"bufio"
	"bytes"
	"context"

	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sdks are the Node scripts, each driving one SDK; each prints "PASS <name>" on success.
var sdks = []struct{ name, script, pkg string }{
	{"saintno", "saintno.mjs", "@saintno/comfyui-sdk"},
	{"stable-canvas", "stable-canvas.mjs", "@stable-canvas/comfyui-client"},
}

func TestSDKs(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found: install Node.js (>= 18) and npm, then run (cd web/sdktest && npm ci --ignore-scripts)")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm not found: install npm, then run (cd web/sdktest && npm ci --ignore-scripts)")
	}
	for _, s := range sdks {
		if _, err := os.Stat(filepath.Join("node_modules", s.pkg, "package.json")); err != nil {
			t.Skipf("%s is not installed: run (cd web/sdktest && npm ci --ignore-scripts)", s.pkg)
		}
	}
	if testing.Short() {
		t.Skip("builds and starts comfygo serve: skipped with -short")
	}
	bin := comfygoBinary(t)
	for _, token := range []string{"", "sdk-test-token"} {
		mode := "no-token"
		if token != "" {
			mode = "auth-token"
		}
		url := startServe(t, bin, token)
		for _, s := range sdks { // in order: stable-canvas clears the history at its end
			t.Run(s.name+"/"+mode, func(t *testing.T) {
				args := []string{s.script, url}
				if token != "" {
					args = append(args, token)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				out, err := exec.CommandContext(ctx, node, args...).CombinedOutput()
				if err != nil || !bytes.Contains(out, []byte("PASS "+s.name)) {
					t.Fatalf("node %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				if testing.Verbose() {
					t.Logf("%s", out)
				}
			})
		}
	}
}

// comfygoBinary builds cmd/comfygo (or uses $COMFYGO_BIN).
func comfygoBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("COMFYGO_BIN"); b != "" {
		return b
	}
	bin := filepath.Join(t.TempDir(), "comfygo")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/comfygo")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/comfygo: %v\n%s", err, out)
	}
	return bin
}

var servingRE = regexp.MustCompile(`comfygo serving.* url=(http://127\.0\.0\.1:\d+)/`)

// startServe runs `comfygo serve --enable-test-nodes` on a free 127.0.0.1 port with fresh
// folders and returns its base URL; the server is stopped when the test ends.
func startServe(t *testing.T, bin, token string) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"serve", "--listen", "127.0.0.1", "--port", "0", "--enable-test-nodes"}
	for _, d := range []string{"models", "input", "output", "temp", "user"} {
		args = append(args, "--"+d+"-dir", filepath.Join(dir, d))
	}
	if token != "" {
		args = append(args, "--auth-token", token)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "COMFYGO_AUTH_TOKEN=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			log.WriteString(line + "\n")
			if m := servingRE.FindStringSubmatch(line); m != nil {
				urlc <- m[1]
				break
			}
		}
		io.Copy(io.Discard, stderr) // keep draining so the server never blocks on its log
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	select {
	case u := <-urlc:
		return u
	case <-time.After(30 * time.Second):
		t.Fatalf("comfygo serve did not start:\n%s", log.String())
	}
	return ""
}
