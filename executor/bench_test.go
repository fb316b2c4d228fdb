package executor

import (
	"context"
	"fmt"
	"image"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/comfygo/comfygo/graph"
)

// cpuTime is the process's user+system CPU time (wall clock is meaningless on a loaded
// shared machine; benchmarks also report cpu-ns/op).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter accumulates CPU time over the timed parts of a benchmark.
type cpuMeter struct {
	total time.Duration
	start time.Duration
}

func (m *cpuMeter) begin() { m.start = cpuTime() }
func (m *cpuMeter) end()   { m.total += cpuTime() - m.start }
func (m *cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64(m.total.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

type nopSink struct{}

func (nopSink) Event(string, any, string)                {}
func (nopSink) Preview(string, PreviewMeta, image.Image) {}

// synth builds a prompt of about n cheap nodes: `chains` chains of equal length whose ends
// fan in to one output sink (undeclared inputs), plus wide fan-in when chains is large.
func synth(n, chains int) *graph.Prompt {
	p := graph.NewPrompt()
	per := (n - 1) / chains
	sink := &graph.Node{ClassType: "XSink"}
	id := 0
	for c := 0; c < chains; c++ {
		prev := ""
		for i := 0; i < per; i++ {
			id++
			nid := strconv.Itoa(id)
			node := &graph.Node{ClassType: "XCount"}
			node.Inputs.Set("value", int64(c*per+i))
			if prev != "" {
				node.Inputs.Set("a", graph.Link{NodeID: prev, Slot: 0})
			}
			p.Add(nid, node)
			prev = nid
		}
		sink.Inputs.Set("in"+strconv.Itoa(c), graph.Link{NodeID: prev, Slot: 0})
	}
	p.Add("sink", sink)
	return p
}

func clonePrompt(p *graph.Prompt) *graph.Prompt {
	q := graph.NewPrompt()
	for _, id := range p.IDs {
		n := p.Nodes[id]
		c := &graph.Node{ClassType: n.ClassType}
		for _, k := range n.Inputs.Keys {
			c.Inputs.Set(k, n.Inputs.Values[k])
		}
		q.Add(id, c)
	}
	return q
}

func runOnce(tb testing.TB, ex *Executor, p *graph.Prompt) *History {
	outs, _, verr := ex.Validate(p, nil)
	if verr != nil {
		tb.Fatal(verr)
	}
	h := ex.Execute(context.Background(), Job{PromptID: "b", Prompt: p, Outputs: outs, ClientID: "c"}, nopSink{})
	if !h.Status.Completed {
		tb.Fatalf("run failed: %+v", h.Status.Messages)
	}
	return h
}

var shapes = []struct {
	name      string
	n, chains int
}{
	{"chain1k", 1000, 1},
	{"mixed1k", 1000, 10},
	{"chain10k", 10000, 1},
	{"mixed10k", 10000, 100},
	{"fanin10k", 10000, 9999},
}

func BenchmarkValidate(b *testing.B) {
	for _, s := range shapes {
		p := synth(s.n, s.chains)
		b.Run(s.name, func(b *testing.B) {
			ex := New(Config{})
			var m cpuMeter
			m.begin()
			for i := 0; i < b.N; i++ {
				if _, _, verr := ex.Validate(p, nil); verr != nil {
					b.Fatal(verr)
				}
			}
			m.end()
			m.report(b)
		})
	}
}

// BenchmarkFresh is validation + scheduling + execution with an empty cache.
func BenchmarkFresh(b *testing.B) {
	for _, s := range shapes {
		base := synth(s.n, s.chains)
		b.Run(s.name, func(b *testing.B) {
			var m cpuMeter
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				p := clonePrompt(base)
				ex := New(Config{})
				b.StartTimer()
				m.begin()
				runOnce(b, ex, p)
				m.end()
			}
			m.report(b)
		})
	}
}

// BenchmarkCached is a fully cached re-run (validation included).
func BenchmarkCached(b *testing.B) {
	for _, s := range shapes {
		base := synth(s.n, s.chains)
		b.Run(s.name, func(b *testing.B) {
			ex := New(Config{})
			runOnce(b, ex, clonePrompt(base))
			b.ResetTimer() // (the first, uncached run is not measured)
			var m cpuMeter
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				p := clonePrompt(base)
				b.StartTimer()
				m.begin()
				runOnce(b, ex, p)
				m.end()
			}
			m.report(b)
		})
	}
}

// TestDeepChain runs a 10,000-deep chain and a 10,000-wide fan-in: no recursion limits, every
// node runs once, and the re-run is fully cached.
func TestDeepChain(t *testing.T) {
	for _, s := range shapes[2:] {
		t.Run(s.name, func(t *testing.T) {
			ex := New(Config{})
			p := synth(s.n, s.chains)
			rec := &recSink{}
			outs, _, verr := ex.Validate(p, nil)
			if verr != nil {
				t.Fatal(verr)
			}
			h := ex.Execute(context.Background(), Job{PromptID: "d", Prompt: p, Outputs: outs, ClientID: "c"}, rec)
			if !h.Status.Completed {
				t.Fatal(h.Status.Messages)
			}
			ran := 0
			for _, e := range rec.ev {
				if e.name == "executing" {
					ran++
				}
			}
			if ran != len(p.IDs) {
				t.Fatalf("ran %d of %d", ran, len(p.IDs))
			}
			out, _ := h.Outputs.Get("sink")
			if got := out.(map[string][]any)["n"][0]; got != s.chains {
				t.Fatalf("sink saw %v inputs", got)
			}
			rec2 := &recSink{}
			p2 := clonePrompt(p)
			ex.Validate(p2, nil)
			h = ex.Execute(context.Background(), Job{PromptID: "e", Prompt: p2, Outputs: outs, ClientID: "c"}, rec2)
			for _, e := range rec2.ev {
				if e.name == "executing" {
					t.Fatal("cached re-run executed a node")
				}
				if c, ok := e.data.(ExecutionCached); ok && len(c.Nodes) != len(p.IDs) {
					t.Fatalf("execution_cached lists %d of %d", len(c.Nodes), len(p.IDs))
				}
			}
			// change one constant at the start of the first chain: exactly that chain and the sink re-run
			p3 := clonePrompt(p)
			p3.Nodes["1"].Inputs.Set("value", int64(999999))
			rec3 := &recSink{}
			ex.Validate(p3, nil)
			ex.Execute(context.Background(), Job{PromptID: "f", Prompt: p3, Outputs: outs, ClientID: "c"}, rec3)
			ran = 0
			for _, e := range rec3.ev {
				if e.name == "executing" {
					ran++
				}
			}
			if want := (s.n-1)/s.chains + 1; ran != want {
				t.Fatalf("changing one source re-ran %d nodes, want %d", ran, want)
			}
		})
	}
}

var _ = fmt.Sprint

// BenchmarkSchedule is the execution list alone (add_node, staging heuristic, completion) over
// the synthetic prompts, without running nodes: the "scheduling" share of a fresh run.
func BenchmarkSchedule(b *testing.B) {
	for _, s := range shapes {
		p := synth(s.n, s.chains)
		b.Run(s.name, func(b *testing.B) {
			ex := New(Config{Cache: CacheNone})
			var m cpuMeter
			m.begin()
			for i := 0; i < b.N; i++ {
				r := &run{e: ex, lookup: newDefCache(ex.lookup), orig: p, eph: map[string]*graph.Node{},
					parents: map[string]string{}, display: map[string]string{}}
				r.indexPrompt(false)
				r.list = newExecList(r)
				if err := r.list.addNode("sink", false, nil); err != nil {
					b.Fatal(err)
				}
				n := 0
				for !r.list.isEmpty() {
					id := r.list.pickReady()
					if id == "" {
						b.Fatal("stuck")
					}
					r.list.staged = id
					r.list.complete(id)
					n++
				}
				if n != len(p.IDs) {
					b.Fatalf("scheduled %d of %d", n, len(p.IDs))
				}
				r.releaseIndex()
			}
			m.end()
			m.report(b)
		})
	}
}

// TestReversedDocumentOrder: sources listed after their consumers (keys computed depth-first
// over positions) behave like the in-order prompt: one run of everything, a fully cached
// re-run, and a changed constant re-running only its chain and the sink.
func TestReversedDocumentOrder(t *testing.T) {
	base := synth(2000, 4)
	rev := func(p *graph.Prompt) *graph.Prompt {
		q := clonePrompt(p)
		slices.Reverse(q.IDs)
		return q
	}
	ex := New(Config{})
	count := func(p *graph.Prompt) (ran, cached int) {
		rec := &recSink{}
		outs, _, verr := ex.Validate(p, nil)
		if verr != nil {
			t.Fatal(verr)
		}
		h := ex.Execute(context.Background(), Job{PromptID: "r", Prompt: p, Outputs: outs, ClientID: "c"}, rec)
		if !h.Status.Completed {
			t.Fatal(h.Status.Messages)
		}
		for _, e := range rec.ev {
			if e.name == "executing" {
				ran++
			}
			if c, ok := e.data.(ExecutionCached); ok {
				cached = len(c.Nodes)
			}
		}
		return ran, cached
	}
	n := len(base.IDs)
	if ran, _ := count(rev(base)); ran != n {
		t.Fatalf("first run ran %d of %d", ran, n)
	}
	if ran, cached := count(clonePrompt(base)); ran != 0 || cached != n {
		t.Fatalf("in-order re-run ran %d, cached %d of %d", ran, cached, n)
	}
	p := rev(base)
	p.Nodes["1"].Inputs.Set("value", int64(999999))
	if ran, cached := count(p); ran != (n-1)/4+1 || cached != n-ran {
		t.Fatalf("changed source: ran %d cached %d", ran, cached)
	}
}
