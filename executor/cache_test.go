package executor

import (
	"context"
	"strconv"
	"testing"

	"github.com/comfygo/comfygo/graph"

	"github.com/comfygo/comfygo/nodes"
)

// chainPrompt is StubInt-free: a StubImage → TestCustomIsChanged chain into an output, with ids
// prefixed by prefix and the image colour content.
func chainPrompt(prefix, content string) *nodes.GraphBuilder {
	b := nodes.NewGraphBuilder(prefix)
	s := img(b, content, 8)
	c := b.Node("TestCustomIsChanged", "", "image", s.Out(0))
	b.Node("XSave", "", "images", c.Out(0))
	return b
}

func TestClassicKeepsOnlyReused(t *testing.T) {
	ex := New(Config{Cache: CacheClassic})
	mustRun(t, ex, chainPrompt("a", "BLACK"))
	if n := ex.CacheSize(); n != 3 {
		t.Fatalf("cache size %d, want 3", n)
	}
	mustRun(t, ex, chainPrompt("b", "WHITE"))
	if n := ex.CacheSize(); n != 3 {
		t.Fatalf("classic cache should hold only the last prompt's results: %d", n)
	}
	if r := mustRun(t, ex, chainPrompt("c", "BLACK")); r.nRan() != 3 {
		t.Fatalf("after a different prompt, everything re-runs: ran %d", r.nRan())
	}
	// identical graph under other ids: all cached
	r := mustRun(t, ex, chainPrompt("d", "BLACK"))
	if r.nRan() != 0 || len(r.cached) != 3 {
		t.Fatalf("same content under new ids: ran %d cached %d", r.nRan(), len(r.cached))
	}
}

func TestLRU(t *testing.T) {
	ex := New(Config{Cache: CacheLRU, LRUSize: 3})
	mustRun(t, ex, chainPrompt("a", "BLACK"))
	mustRun(t, ex, chainPrompt("b", "WHITE"))
	if n := ex.CacheSize(); n != 6 {
		t.Fatalf("LRU keeps entries of older prompts while they may be used: %d", n)
	}
	if r := mustRun(t, ex, chainPrompt("a", "BLACK")); r.nRan() != 0 {
		t.Fatalf("LRU: BLACK should still be cached, ran %d", r.nRan())
	}
	mustRun(t, ex, chainPrompt("c", "NOISE")) // evicts WHITE (least recently used)
	if r := mustRun(t, ex, chainPrompt("b", "WHITE")); r.nRan() != 3 {
		t.Fatalf("WHITE should have been evicted, ran %d", r.nRan())
	}
	big := New(Config{Cache: CacheLRU, LRUSize: 100})
	mustRun(t, big, chainPrompt("a", "BLACK"))
	mustRun(t, big, chainPrompt("b", "WHITE"))
	mustRun(t, big, chainPrompt("c", "NOISE"))
	if r := mustRun(t, big, chainPrompt("a", "BLACK")); r.nRan() != 0 {
		t.Fatalf("LRU 100 keeps all, ran %d", r.nRan())
	}
}

func TestNoneAndFree(t *testing.T) {
	ex := New(Config{Cache: CacheNone})
	mustRun(t, ex, chainPrompt("a", "BLACK"))
	if r := mustRun(t, ex, chainPrompt("a", "BLACK")); r.nRan() != 3 || len(r.cached) != 0 || ex.CacheSize() != 0 {
		t.Fatalf("none mode: ran %d cached %d size %d", r.nRan(), len(r.cached), ex.CacheSize())
	}
	ex = New(Config{})
	mustRun(t, ex, chainPrompt("a", "BLACK"))
	ex.Free(false, true)
	if ex.CacheSize() != 0 {
		t.Fatal("free_memory must empty the cache")
	}
	if r := mustRun(t, ex, chainPrompt("a", "BLACK")); r.nRan() != 3 {
		t.Fatalf("after free: ran %d", r.nRan())
	}
}

// Exactly the nodes downstream of a changed constant re-run; unrelated branches stay cached.
func TestChangedConstantRerunsDependents(t *testing.T) {
	ex := New(Config{})
	build := func(v int64) *nodes.GraphBuilder {
		b := nodes.NewGraphBuilder("dep")
		x := b.Node("XCount", "x", "value", int64(1))
		y := b.Node("XCount", "y", "value", v, "a", x.Out(0))
		z := b.Node("XCount", "z", "value", int64(3), "a", y.Out(0))
		w := b.Node("XCount", "w", "value", int64(4), "a", x.Out(0))
		b.Node("XSink", "s1", "in0", z.Out(0))
		b.Node("XSink", "s2", "in0", w.Out(0))
		return b
	}
	mustRun(t, ex, build(2))
	r := mustRun(t, ex, build(20))
	want := map[string]bool{"depy": true, "depz": true, "deps1": true}
	if len(r.ran) != len(want) {
		t.Fatalf("ran %v, want %v", r.ran, want)
	}
	for id := range want {
		if !r.ran[id] {
			t.Fatalf("ran %v, want %v", r.ran, want)
		}
	}
	if !r.cached["depx"] || !r.cached["depw"] || !r.cached["deps2"] || r.cached["depy"] {
		t.Fatalf("execution_cached %v", r.cached)
	}
}

func TestWithinPromptDedupAndNotIdempotent(t *testing.T) {
	ex := New(Config{})
	b := nodes.NewGraphBuilder("dup")
	a1 := b.Node("XCount", "a1", "value", int64(7))
	a2 := b.Node("XCount", "a2", "value", int64(7))
	b.Node("XSink", "s", "in0", a1.Out(0), "in1", a2.Out(0))
	r := mustRun(t, ex, b)
	if r.didRun(a1.ID) == r.didRun(a2.ID) {
		t.Fatalf("exactly one of two identical nodes runs: %v", r.ran)
	}
	// nodes with a UNIQUE_ID hidden input are keyed by id: both run
	b = nodes.NewGraphBuilder("uniq")
	im := img(b, "BLACK", 8)
	s1 := b.Node("TestAsyncBatchProcessing", "", "images", im.Out(0), "process_time_per_item", 0.01)
	s2 := b.Node("TestAsyncBatchProcessing", "", "images", im.Out(0), "process_time_per_item", 0.01)
	b.Node("XSave", "", "images", s1.Out(0))
	b.Node("XSave", "", "images", s2.Out(0))
	r = mustRun(t, New(Config{}), b)
	if !r.didRun(s1.ID) || !r.didRun(s2.ID) {
		t.Fatalf("UNIQUE_ID nodes must not share results: %v", r.ran)
	}
}

func TestExpansionCached(t *testing.T) {
	for _, m := range modes[:3] {
		t.Run(m.name, func(t *testing.T) {
			ex := New(m.cfg)
			build := func() *nodes.GraphBuilder {
				b := nodes.NewGraphBuilder("loop")
				in1, in2 := img(b, "BLACK", 8), img(b, "WHITE", 8)
				open := b.Node("TestForLoopOpen", "", "remaining", int64(3), "initial_value1", in2.Out(0))
				avg := b.Node("TestVariadicAverage", "", "input1", in1.Out(0), "input2", open.Out(2))
				cl := b.Node("TestForLoopClose", "", "flow_control", open.Out(0), "initial_value1", avg.Out(0))
				b.Node("XSave", "out", "images", cl.Out(0))
				return b
			}
			r1 := mustRun(t, ex, build())
			checkPixel(t, r1.images("loopout"), 0, 31)
			r2 := mustRun(t, ex, build())
			if r2.nRan() != 0 {
				t.Fatalf("second identical loop ran %v", r2.ran)
			}
			checkPixel(t, r2.images("loopout"), 0, 31)
		})
	}
}

type unloader struct{ n int }

func (u *unloader) UnloadAll() { u.n++ }

func TestFreeUnloadModels(t *testing.T) {
	ex := New(Config{})
	u := &unloader{}
	ex.cfg.Env.Service("models", func() (any, error) { return u, nil })
	ex.Free(true, false)
	if u.n != 1 {
		t.Fatal("unload_models must reach the model manager")
	}
}

// TestKeyIgnoresInputOrder: a node's key depends on its inputs, not their order, for small
// nodes (sorted) and big ones (hashed as a set); a changed input re-runs it.
func TestKeyIgnoresInputOrder(t *testing.T) {
	for _, n := range []int{3, bigNode + 8} {
		ex := New(Config{})
		build := func(reverse bool, v0 int64) *graph.Prompt {
			p := graph.NewPrompt()
			sink := &graph.Node{ClassType: "XSink"}
			for i := 0; i < n; i++ {
				k := i
				if reverse {
					k = n - 1 - i
				}
				id := strconv.Itoa(k)
				node := &graph.Node{ClassType: "XCount"}
				v := int64(k)
				if k == 0 {
					v = v0
				}
				node.Inputs.Set("value", v)
				p.Add(id, node)
				sink.Inputs.Set("in"+id, graph.Link{NodeID: id})
			}
			p.Add("sink", sink)
			return p
		}
		ran := func(p *graph.Prompt) int {
			rec := &recSink{}
			outs, _, verr := ex.Validate(p, nil)
			if verr != nil {
				t.Fatal(verr)
			}
			h := ex.Execute(context.Background(), Job{PromptID: "k", Prompt: p, Outputs: outs, ClientID: "c"}, rec)
			if !h.Status.Completed {
				t.Fatal(h.Status.Messages)
			}
			k := 0
			for _, e := range rec.ev {
				if e.name == "executing" {
					k++
				}
			}
			return k
		}
		if got := ran(build(false, 0)); got != n+1 {
			t.Fatalf("n=%d: first run ran %d", n, got)
		}
		if got := ran(build(true, 0)); got != 0 {
			t.Fatalf("n=%d: same inputs in another order ran %d nodes", n, got)
		}
		if got := ran(build(true, 1000)); got != 2 {
			t.Fatalf("n=%d: one changed source ran %d nodes, want 2", n, got)
		}
	}
}
