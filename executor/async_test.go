package executor

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/comfygo/comfygo/nodes"
)

// Ports of ComfyUI's tests/execution/test_async_nodes.py essentials.

func TestAsyncError(t *testing.T) {
	for _, name := range []string{"TestAsyncError", "TestSyncError"} {
		ex := New(Config{})
		b := nodes.NewGraphBuilder("async_error")
		e := b.Node(name, "", "value", img(b, "BLACK", 8).Out(0), "error_after", 0.05)
		if name == "TestSyncError" {
			e.SetInput("error_after", nil)
		}
		b.Node("XSave", "", "images", e.Out(0))
		r, verr := runB(t, ex, b, nil)
		if verr != nil {
			t.Fatal(verr)
		}
		if r.err == nil || r.err.NodeID != e.ID || !strings.HasPrefix(r.err.ExceptionMessage, "Intentional") {
			t.Fatalf("%s: %+v", name, r.err)
		}
	}
}

func TestAsyncLazyAndDynamicGeneration(t *testing.T) {
	ex := New(Config{})
	b := nodes.NewGraphBuilder("async_lazy")
	black, white := img(b, "BLACK", 8), img(b, "WHITE", 8)
	lz := b.Node("TestAsyncLazyCheck", "", "input1", black.Out(0), "input2", white.Out(0), "condition", true)
	dyn := b.Node("TestDynamicAsyncGeneration", "", "image1", black.Out(0), "image2", white.Out(0), "num_async_nodes", int64(3), "sleep_duration", 0.2)
	b.Node("XSave", "", "images", lz.Out(0))
	o := b.Node("XSave", "", "images", dyn.Out(0))
	start := time.Now()
	r := mustRun(t, ex, b)
	if r.didRun(white.ID) != true { // the dynamic generator needs it
		t.Fatal("white should run for the generator")
	}
	checkPixel(t, r.images(o.ID), 0, 85) // (0 + 1 + 0) / 3
	if el := time.Since(start); el > 450*time.Millisecond {
		t.Errorf("three 0.2 s async sleeps took %v (not overlapped)", el)
	}
	b2 := nodes.NewGraphBuilder("async_lazy2")
	bl, wh := img(b2, "BLACK", 8), img(b2, "WHITE", 8)
	lz2 := b2.Node("TestAsyncLazyCheck", "", "input1", bl.Out(0), "input2", wh.Out(0), "condition", false)
	b2.Node("XSave", "", "images", lz2.Out(0))
	r = mustRun(t, New(Config{}), b2)
	if r.didRun(bl.ID) || !r.didRun(wh.ID) {
		t.Fatalf("lazy check: ran %v", r.ran)
	}
}

func TestAsyncResourceConflictAndLimit(t *testing.T) {
	ex := New(Config{})
	b := nodes.NewGraphBuilder("res")
	im := img(b, "BLACK", 8)
	u1 := b.Node("TestAsyncResourceUser", "", "value", im.Out(0), "resource_id", "r", "duration", 0.2)
	u2 := b.Node("TestAsyncResourceUser", "", "value", im.Out(0), "resource_id", "r", "duration", 0.21)
	b.Node("XSave", "", "images", u1.Out(0))
	b.Node("XSave", "", "images", u2.Out(0))
	r, _ := runB(t, ex, b, nil)
	if r.err == nil || !strings.Contains(r.err.ExceptionMessage, "already in use") {
		t.Fatalf("concurrent use of one resource must fail: %+v", r.err)
	}
	b = nodes.NewGraphBuilder("lim")
	im = img(b, "BLACK", 8)
	for i := 0; i < 4; i++ {
		n := b.Node("TestAsyncConcurrentLimit", "", "value", im.Out(0), "duration", 0.1, "node_id", int64(i))
		b.Node("XSave", "", "images", n.Out(0))
	}
	start := time.Now()
	mustRun(t, New(Config{}), b)
	if el := time.Since(start); el < 190*time.Millisecond {
		t.Fatalf("semaphore of 2 over four 0.1 s nodes finished in %v", el)
	}
}

func TestProgressEvents(t *testing.T) {
	for _, name := range []string{"TestAsyncProgressUpdate", "TestSyncProgressUpdate"} {
		b := nodes.NewGraphBuilder("prog")
		p := b.Node(name, "", "value", img(b, "BLACK", 8).Out(0), "sleep_seconds", 0.05)
		b.Node("XSave", "", "images", p.Out(0))
		r := mustRun(t, New(Config{}), b)
		progress, states := 0, 0
		for _, e := range r.ev {
			switch d := e.data.(type) {
			case Progress:
				progress++
				if d.Node != p.ID || d.Max != 1 || d.Value > 1 {
					t.Fatalf("progress %+v", d)
				}
			case ProgressState:
				states++
				js, _ := json.Marshal(d)
				var m struct {
					Nodes map[string]NodeState `json:"nodes"`
				}
				json.Unmarshal(js, &m)
				if len(m.Nodes) == 0 || len(m.Nodes) > 2 {
					t.Fatalf("progress_state should carry the running nodes and the changed one: %s", js)
				}
			}
		}
		if progress < 2 || states < 4 {
			t.Fatalf("%s: %d progress, %d progress_state", name, progress, states)
		}
	}
}
