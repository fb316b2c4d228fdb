package web

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRestartRecovery: prompts found in the database at start-up run; one that was running when
// the process died is re-run once, and given up (error entry) if it was already re-run.
func TestRestartRecovery(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "user"), 0o755)
	st, err := OpenStore(filepath.Join(dir, "user", "comfygo.db"))
	if err != nil {
		t.Fatal(err)
	}
	prompt := json.RawMessage(`{"1": {"class_type": "WebTestText", "inputs": {"value": 5}}}`)
	items := []*storedItem{
		{PromptID: "pending", Number: 2, Prompt: prompt, Extra: json.RawMessage(`{}`), Outputs: []string{"1"}},
		{PromptID: "crashed-once", Number: 1, Prompt: prompt, Extra: json.RawMessage(`{}`), Outputs: []string{"1"}, Running: true, Attempts: 1},
		{PromptID: "crashed-twice", Number: 0, Prompt: prompt, Extra: json.RawMessage(`{}`), Outputs: []string{"1"}, Running: true, Attempts: 2},
	}
	for _, it := range items {
		if err := st.PutItem(it, 3); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	ts := newTestServer(t, dir)
	deadline := time.Now().Add(10 * time.Second)
	var hist map[string]struct {
		Status struct {
			StatusStr string `json:"status_str"`
		} `json:"status"`
		Outputs map[string]any `json:"outputs"`
	}
	for {
		hist = nil
		ts.getJSON(t, "/history", &hist)
		if len(hist) == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if hist["pending"].Status.StatusStr != "success" || hist["crashed-once"].Status.StatusStr != "success" {
		t.Errorf("restored prompts: %+v", hist)
	}
	if hist["crashed-twice"].Status.StatusStr != "error" {
		t.Errorf("prompt that crashed twice: %+v", hist["crashed-twice"])
	}
	// New prompts number after the restored counter.
	code, b := ts.do(t, "POST", "/prompt", map[string]any{"prompt": json.RawMessage(prompt)})
	if code != 200 || !strings.Contains(string(b), `"number":3`) {
		t.Errorf("counter after restart: %s", b)
	}
}

// TestKill9Durability builds the comfygo binary, queues prompts, kills the process with
// SIGKILL while one runs, restarts it and checks every prompt runs (the running one again) and
// lands in history exactly once; then the same with a graceful SIGTERM.
func TestKill9Durability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "comfygo")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := exec.Command(gobin, "build", "-o", bin, "./cmd/comfygo")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/comfygo: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--port", fmt.Sprint(port), "--enable-test-nodes",
			"--models-dir", filepath.Join(dir, "models"), "--input-dir", filepath.Join(dir, "input"),
			"--output-dir", filepath.Join(dir, "output"), "--temp-dir", filepath.Join(dir, "temp"),
			"--user-dir", filepath.Join(dir, "user"))
		cmd.Stderr = &logBuf{t: t}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { // never leave a server behind when the test fails
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
		for i := 0; i < 200; i++ {
			if resp, err := http.Get(base + "/system_stats"); err == nil {
				resp.Body.Close()
				return cmd
			}
			time.Sleep(50 * time.Millisecond)
		}
		cmd.Process.Kill()
		t.Fatal("server did not start")
		return nil
	}
	ts := &testServer{URL: base}
	prompt := func(i int) map[string]any {
		return map[string]any{
			"1": map[string]any{"class_type": "StubImage", "inputs": map[string]any{"content": "WHITE", "height": 8 + i, "width": 8, "batch_size": 1}},
			"2": map[string]any{"class_type": "TestSleep", "inputs": map[string]any{"value": []any{"1", 0}, "seconds": 0.4}},
			"3": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"2", 0}, "filename_prefix": fmt.Sprintf("dur%d", i)}},
		}
	}
	history := func() map[string]struct {
		Status struct {
			StatusStr string `json:"status_str"`
		} `json:"status"`
	} {
		var h map[string]struct {
			Status struct {
				StatusStr string `json:"status_str"`
			} `json:"status"`
		}
		ts.getJSON(t, "/history", &h)
		return h
	}
	waitHistory := func(n int) {
		deadline := time.Now().Add(20 * time.Second)
		for len(history()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("history stuck at %d entries, want %d", len(history()), n)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	runningID := func() string {
		var q struct {
			Running [][]any `json:"queue_running"`
		}
		ts.getJSON(t, "/queue", &q)
		if len(q.Running) == 0 {
			return ""
		}
		s, _ := q.Running[0][1].(string)
		return s
	}

	cmd := start()
	var ids []string
	for i := 0; i < 4; i++ {
		ids = append(ids, ts.queue(t, map[string]any{"prompt": prompt(i)}))
	}
	waitHistory(1)
	for runningID() != ids[1] {
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill() // SIGKILL
	cmd.Wait()

	cmd = start()
	waitHistory(4)
	h := history()
	for _, id := range ids {
		if h[id].Status.StatusStr != "success" {
			t.Errorf("prompt %s after kill -9: %+v", id, h[id])
		}
	}
	for i := range ids {
		m, _ := filepath.Glob(filepath.Join(dir, "output", fmt.Sprintf("dur%d_*.png", i)))
		if len(m) != 1 {
			t.Errorf("prompt %d saved %d files", i, len(m))
		}
	}

	// Graceful stop: SIGTERM while a prompt runs; it stays queued and runs after the restart.
	more := []string{ts.queue(t, map[string]any{"prompt": prompt(10)}), ts.queue(t, map[string]any{"prompt": prompt(11)})}
	for runningID() != more[0] {
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatal("no exit after SIGTERM")
	}
	cmd = start()
	waitHistory(6)
	h = history()
	for _, id := range more {
		if h[id].Status.StatusStr != "success" {
			t.Errorf("prompt %s after SIGTERM: %+v", id, h[id])
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
}

// logBuf forwards a child's stderr to the test log when -v.
type logBuf struct{ t *testing.T }

func (l *logBuf) Write(p []byte) (int, error) {
	if testing.Verbose() {
		l.t.Logf("comfygo: %s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}
