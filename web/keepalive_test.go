package web

import (
	"testing"
	"time"

	"github.com/comfygo/comfygo/nodes"
)

func init() {
	nodes.Register(&nodes.Def{
		Name: "WebTestSilent", Category: "_for_testing/web", OutputNode: true,
		Required: []nodes.Input{{Name: "ms", Type: nodes.TypeInt, Default: 100, Min: 0, Max: 60000}},
		Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
			select { // a long step that reports nothing (model loading, a big VAE decode)
			case <-ctx.Done():
				return nodes.Result{}, ctx.Err()
			case <-time.After(time.Duration(in.Int("ms")) * time.Millisecond):
			}
			return nodes.Result{UI: map[string][]any{"text": {"done"}}}, nil
		},
	})
}

func TestKeepAliveDuringSilentNode(t *testing.T) {
	ts := newTestServer(t, "", func(c *Config) { c.KeepAlive = 100 * time.Millisecond })
	a := dialWS(t, ts, "a")
	b := dialWS(t, ts, "b")
	id := ts.queue(t, map[string]any{"client_id": "a", "prompt": map[string]any{
		"1": map[string]any{"class_type": "WebTestSilent", "inputs": map[string]any{"ms": 700}}}})
	msgs := a.until(t, id, 10*time.Second)
	// Between executing 1 and executed 1 nothing but keepalive status messages.
	var inside []string
	in := false
	for _, m := range msgs {
		switch l := label(m); {
		case l == "executing:1":
			in = true
		case l == "executed:1":
			in = false
		case in:
			inside = append(inside, l)
			if q := m.Data["status"].(map[string]any)["exec_info"].(map[string]any)["queue_remaining"]; q != 1.0 {
				t.Errorf("keepalive status %s, want queue_remaining 1", m.Raw)
			}
		}
	}
	if len(inside) < 3 || len(inside) > 12 {
		t.Fatalf("%d messages during a 700 ms silent node with a 100 ms keepalive: %v", len(inside), inside)
	}
	for _, l := range inside {
		if l != "status" {
			t.Fatalf("unexpected %s during the silent node", l)
		}
	}
	// Other clients get them too; nothing is sent once the queue is idle.
	n := 0
	for _, m := range b.drain(300 * time.Millisecond) {
		if m.Type == "status" {
			n++
		}
	}
	if n < 5 { // 3 queue updates + keepalives
		t.Errorf("other client got %d status messages", n)
	}
	if extra := a.drain(400 * time.Millisecond); len(extra) != 0 {
		t.Errorf("messages while idle: %v", labels(extra))
	}
}

func TestKeepAliveOff(t *testing.T) {
	ts := newTestServer(t, "", func(c *Config) { c.KeepAlive = -1 })
	a := dialWS(t, ts, "a")
	id := ts.queue(t, map[string]any{"client_id": "a", "prompt": map[string]any{
		"1": map[string]any{"class_type": "WebTestSilent", "inputs": map[string]any{"ms": 300}}}})
	msgs := a.until(t, id, 10*time.Second)
	n := 0
	for _, m := range msgs {
		if m.Type == "status" {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d status messages with keepalive off, want 3: %v", n, labels(msgs))
	}
}
