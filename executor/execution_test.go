package executor

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/nodes"
)

// Ports of ComfyUI's tests/execution/test_execution.py (TestExecution), run under the four
// cache configurations the upstream class is parametrised with.

const sz = int64(64)

func TestLazyInput(t *testing.T) {
	forModes(t, func(t *testing.T, ex *Executor, cache bool) {
		b := nodes.NewGraphBuilder("test_lazy_input")
		in1 := img(b, "BLACK", sz)
		in2 := img(b, "WHITE", sz)
		m := mask(b, 0.0, sz)
		mix := b.Node("TestLazyMixImages", "", "image1", in1.Out(0), "image2", in2.Out(0), "mask", m.Out(0))
		out := b.Node("XSave", "", "images", mix.Out(0))
		r := mustRun(t, ex, b)
		checkPixel(t, r.images(out.ID), 0, 0)
		if r.didRun(in2.ID) {
			t.Error("the WHITE input should not have run")
		}
		if !r.didRun(m.ID) || !r.didRun(mix.ID) {
			t.Error("mask and mix should have run")
		}
	})
}

func TestFullCache(t *testing.T) {
	forModes(t, func(t *testing.T, ex *Executor, cache bool) {
		b := nodes.NewGraphBuilder("test_full_cache")
		in1 := img(b, "BLACK", sz)
		in2 := img(b, "NOISE", sz)
		m := mask(b, 0.5, sz)
		mix := b.Node("TestLazyMixImages", "", "image1", in1.Out(0), "image2", in2.Out(0), "mask", m.Out(0))
		out := b.Node("XSave", "", "images", mix.Out(0))
		r1 := mustRun(t, ex, b)
		if r1.nRan() != 5 {
			t.Fatalf("first run ran %d nodes, want 5", r1.nRan())
		}
		r2 := mustRun(t, ex, b)
		all := []string{in1.ID, in2.ID, m.ID, mix.ID, out.ID}
		for _, id := range all {
			if cache && (r2.didRun(id) || !r2.wasCached(id)) {
				t.Errorf("%s: ran=%v cached=%v on the second run", id, r2.didRun(id), r2.wasCached(id))
			}
			if !cache && !r2.didRun(id) {
				t.Errorf("%s should have re-run without a cache", id)
			}
		}
		if cache {
			// the cached output node still reports its UI
			if len(r2.images(out.ID)) != 1 || r2.count("executed") != 1 {
				t.Errorf("cached output: images %v, executed events %d", r2.images(out.ID), r2.count("executed"))
			}
		}
	})
}

func TestPartialCache(t *testing.T) {
	forModes(t, func(t *testing.T, ex *Executor, cache bool) {
		b := nodes.NewGraphBuilder("test_partial_cache")
		in1 := img(b, "BLACK", sz)
		in2 := img(b, "NOISE", sz)
		m := mask(b, 0.5, sz)
		mix := b.Node("TestLazyMixImages", "", "image1", in1.Out(0), "image2", in2.Out(0), "mask", m.Out(0))
		out := b.Node("XSave", "", "images", mix.Out(0))
		mustRun(t, ex, b)
		m.SetInput("value", 0.4)
		r := mustRun(t, ex, b)
		if cache {
			if r.didRun(in1.ID) || r.didRun(in2.ID) {
				t.Error("image stubs should be cached")
			}
			for _, id := range []string{m.ID, mix.ID, out.ID} {
				if !r.didRun(id) {
					t.Errorf("%s should re-run", id)
				}
			}
			if r.nRan() != 3 {
				t.Errorf("ran %d nodes, want exactly 3", r.nRan())
			}
		} else if !r.didRun(in1.ID) || !r.didRun(in2.ID) {
			t.Error("image stubs should re-run without a cache")
		}
	})
}

func TestExecutionErrorEvent(t *testing.T) {
	ex := New(Config{})
	b := nodes.NewGraphBuilder("test_error")
	in1 := img(b, "BLACK", 64)
	in2 := img(b, "NOISE", 32)
	m := mask(b, 0.5, 64)
	mix := b.Node("TestLazyMixImages", "", "image1", in1.Out(0), "image2", in2.Out(0), "mask", m.Out(0))
	b.Node("XSave", "", "images", mix.Out(0))
	r, verr := runB(t, ex, b, nil)
	if verr != nil {
		t.Fatal(verr)
	}
	e := r.err
	if e == nil {
		t.Fatal("expected an execution_error")
	}
	if e.PromptID == "" || e.NodeID != mix.ID || e.NodeType != "TestLazyMixImages" || e.Timestamp == 0 {
		t.Fatalf("bad error event %+v", *e)
	}
	if !strings.HasSuffix(e.ExceptionMessage, "\n") || !strings.Contains(e.ExceptionMessage, "must match") {
		t.Errorf("exception_message %q", e.ExceptionMessage)
	}
	if e.ExceptionType != "RuntimeError" || e.Traceback == nil {
		t.Errorf("type %q traceback %v", e.ExceptionType, e.Traceback)
	}
	ci := e.CurrentInputs.(map[string]any)
	for _, k := range []string{"image1", "image2", "mask"} {
		if _, ok := ci[k]; !ok {
			t.Errorf("current_inputs lacks %s: %v", k, ci)
		}
	}
	if len(e.CurrentOutputs) != 5 || len(e.Executed) != 3 {
		t.Errorf("current_outputs %v executed %v", e.CurrentOutputs, e.Executed)
	}
	if r.h.Status.StatusStr != "error" || r.h.Status.Completed {
		t.Errorf("status %+v", r.h.Status)
	}
	last := r.h.Status.Messages[len(r.h.Status.Messages)-1]
	if last.Event != "execution_error" {
		t.Errorf("last message %s", last.Event)
	}
	// A panicking node is an error with a traceback, not a crash.
	b2 := nodes.NewGraphBuilder("panic")
	f := b2.Node("XFail", "", "value", img(b2, "BLACK", 8).Out(0))
	b2.Node("XSave", "", "images", f.Out(0))
	r2, _ := runB(t, ex, b2, nil)
	if r2.err == nil || r2.err.ExceptionMessage != "boom\n" || len(r2.err.Traceback) == 0 {
		t.Fatalf("panic not reported: %+v", r2.err)
	}
}

func TestValidationErrorLiteral(t *testing.T) {
	for _, c := range []struct {
		v  any
		ok bool
	}{{int64(5), false}, {"foo", false}, {5.0, true}} {
		ex := New(Config{})
		b := nodes.NewGraphBuilder("test_validation_error_literal")
		v := b.Node("TestCustomValidation1", "", "input1", c.v, "input2", 1.0)
		b.Node("XSave", "", "images", v.Out(0))
		_, verr := runB(t, ex, b, nil)
		if (verr == nil) != c.ok {
			t.Fatalf("%v: verr=%v", c.v, verr)
		}
		if verr != nil {
			ne := verr.NodeErrors[v.ID]
			if ne == nil || ne.Errors[0].Type != "custom_validation_failed" {
				t.Fatalf("%v: %+v", c.v, verr.NodeErrors)
			}
		}
	}
}

func TestValidationErrorEdges(t *testing.T) {
	cases := []struct {
		node, stub string
		ok         bool
		errType    string
	}{
		{"TestCustomValidation1", "StubInt", false, "return_type_mismatch"},
		{"TestCustomValidation1", "StubMask", false, "return_type_mismatch"},
		{"TestCustomValidation2", "StubInt", false, "custom_validation_failed"},
		{"TestCustomValidation2", "StubFloat", true, ""},
		{"TestCustomValidation3", "StubInt", false, "custom_validation_failed"},
		{"TestCustomValidation3", "StubFloat", true, ""},
		{"TestCustomValidation4", "StubInt", false, "return_type_mismatch"},
		{"TestCustomValidation4", "StubFloat", true, ""},
	}
	for _, c := range cases {
		t.Run(c.node+"/"+c.stub, func(t *testing.T) {
			ex := New(Config{})
			b := nodes.NewGraphBuilder("edge")
			var s *nodes.BuilderNode
			switch c.stub {
			case "StubInt":
				s = b.Node("StubInt", "", "value", int64(5))
			case "StubFloat":
				s = b.Node("StubFloat", "", "value", 5.0)
			case "StubMask":
				s = b.Node("StubMask", "", "value", 0.5, "height", int64(8), "width", int64(8), "batch_size", int64(1))
			}
			v := b.Node(c.node, "", "input1", s.Out(0), "input2", 1.0)
			b.Node("XSave", "", "images", v.Out(0))
			r, verr := runB(t, ex, b, nil)
			if (verr == nil) != c.ok {
				t.Fatalf("verr=%v", verr)
			}
			if verr != nil {
				if got := verr.NodeErrors[v.ID].Errors[0].Type; got != c.errType {
					t.Fatalf("error type %s, want %s", got, c.errType)
				}
			} else if r.err != nil {
				t.Fatalf("execution error %+v", r.err)
			}
		})
	}
}

func TestValidationErrorKwargs(t *testing.T) {
	for _, c := range []struct {
		a, b float64
		ok   bool
	}{{0, 0.5, true}, {0, 5.0, true}, {0, 7.0, false}} {
		ex := New(Config{})
		b := nodes.NewGraphBuilder("kwargs")
		v := b.Node("TestCustomValidation5", "", "input1", c.a, "input2", c.b)
		b.Node("XSave", "", "images", v.Out(0))
		_, verr := runB(t, ex, b, nil)
		if (verr == nil) != c.ok {
			t.Fatalf("%v: %v", c, verr)
		}
		if verr != nil {
			errs := verr.NodeErrors[v.ID].Errors
			// the failure message is repeated under every argument name (ComfyUI quirk)
			if len(errs) != 2 || errs[0].Details != "input1 - 7s are not allowed. I've never liked 7s." {
				t.Fatalf("errors %+v", errs)
			}
		}
	}
}

func TestCycleError(t *testing.T) {
	ex := New(Config{})
	b := nodes.NewGraphBuilder("test_cycle_error")
	in1 := img(b, "BLACK", sz)
	in2 := img(b, "WHITE", sz)
	m := mask(b, 0.5, sz)
	mix1 := b.Node("TestLazyMixImages", "", "image1", in1.Out(0), "mask", m.Out(0))
	mix2 := b.Node("TestLazyMixImages", "", "image1", mix1.Out(0), "image2", in2.Out(0), "mask", m.Out(0))
	mix1.SetInput("image2", mix2.Out(0)) // a real static cycle
	b.Node("XSave", "", "images", mix2.Out(0))
	_, verr := runB(t, ex, b, nil)
	if verr == nil {
		t.Fatal("a static cycle must be rejected")
	}
	if verr.Info.Type != "prompt_outputs_failed_validation" {
		t.Fatalf("%+v", verr.Info)
	}
	found := false
	for _, ne := range verr.NodeErrors {
		for _, e := range ne.Errors {
			if e.Type == "exception_during_inner_validation" && e.Details == "Dependency cycle detected" {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("no cycle reason in %+v", verr.NodeErrors)
	}
	// upstream's test_cycle_error: image2 simply missing → required_input_missing
	b2 := nodes.NewGraphBuilder("test_cycle_error")
	i1 := img(b2, "BLACK", sz)
	mk := mask(b2, 0.5, sz)
	x1 := b2.Node("TestLazyMixImages", "", "image1", i1.Out(0), "mask", mk.Out(0))
	x2 := b2.Node("TestLazyMixImages", "", "image1", x1.Out(0), "image2", i1.Out(0), "mask", mk.Out(0))
	b2.Node("XSave", "", "images", x2.Out(0))
	_, verr = runB(t, ex, b2, nil)
	if verr == nil || verr.NodeErrors[x1.ID].Errors[0].Type != "required_input_missing" {
		t.Fatalf("want required_input_missing, got %v", verr)
	}
}

func TestDynamicCycleError(t *testing.T) {
	forModes(t, func(t *testing.T, ex *Executor, cache bool) {
		b := nodes.NewGraphBuilder("test_dynamic_cycle_error")
		in1 := img(b, "BLACK", 512)
		in2 := img(b, "WHITE", 512)
		gen := b.Node("TestDynamicDependencyCycle", "", "input1", in1.Out(0), "input2", in2.Out(0))
		b.Node("XSave", "", "images", gen.Out(0))
		r, verr := runB(t, ex, b, nil)
		if verr != nil {
			t.Fatal(verr)
		}
		if r.err == nil || r.err.NodeID != gen.ID || r.err.ExceptionType != "graph.DependencyCycleError" {
			t.Fatalf("want a cycle error on the generator, got %+v", r.err)
		}
	})
}

func TestMissingNodeError(t *testing.T) {
	forModes(t, func(t *testing.T, ex *Executor, cache bool) {
		b := nodes.NewGraphBuilder("test_missing_node_error")
		in1 := img(b, "BLACK", sz)
		in2 := b.Node("StubImage", "removeme", "content", "WHITE", "height", sz, "width", sz, "batch_size", int64(1))
		in3 := img(b, "WHITE", sz)
		m := mask(b, 0.5, sz)
		mix1 := b.Node("TestLazyMixImages", "", "image1", in1.Out(0), "image2", in2.Out(0), "mask", m.Out(0))
		mix2 := b.Node("TestLazyMixImages", "", "image1", in1.Out(0), "image2", in3.Out(0), "mask", m.Out(0))
		s1 := b.Node("XSave", "", "images", mix1.Out(0))
		s2 := b.Node("XSave", "", "images", mix2.Out(0))
		b.Remove(in2.ID)
		r := mustRun(t, ex, b)
		if len(r.images(s2.ID)) != 1 || len(r.images(s1.ID)) != 0 {
			t.Fatal("the valid branch should run, the other not")
		}
		ne := r.nodeErrors[mix1.ID]
		if ne == nil || ne.Errors[0].Type != "exception_during_inner_validation" || ne.DependentOutputs[0] != s1.ID {
			t.Fatalf("node_errors %+v", r.nodeErrors)
		}
		b.Node("StubImage", "removeme", "content", "WHITE", "height", sz, "width", sz, "batch_size", int64(1))
		r = mustRun(t, ex, b)
		if len(r.images(s1.ID)) != 1 {
			t.Fatal("after re-adding the node both branches run")
		}
	})
}

func TestCustomIsChanged(t *testing.T) {
	forModes(t, func(t *testing.T, ex *Executor, cache bool) {
		b := nodes.NewGraphBuilder("test_custom_is_changed")
		save := b.Node("XSave", "")
		ic := b.Node("TestCustomIsChanged", "", "should_change", false)
		in1 := img(b, "BLACK", sz)
		save.SetInput("images", ic.Out(0))
		ic.SetInput("image", in1.Out(0))
		r1 := mustRun(t, ex, b)
		r2 := mustRun(t, ex, b)
		ic.SetInput("should_change", true)
		r3 := mustRun(t, ex, b)
		r4 := mustRun(t, ex, b)
		if !r1.didRun(ic.ID) || r2.didRun(ic.ID) == cache || !r3.didRun(ic.ID) || !r4.didRun(ic.ID) {
			t.Fatalf("runs: %v %v %v %v", r1.didRun(ic.ID), r2.didRun(ic.ID), r3.didRun(ic.ID), r4.didRun(ic.ID))
		}
		if cache && r4.didRun(in1.ID) {
			t.Error("the image upstream of the NaN node should stay cached")
		}
	})
}

func TestUndeclaredInputs(t *testing.T) {
	ex := New(Config{})
	b := nodes.NewGraphBuilder("test_undeclared_inputs")
	avg := b.Node("TestVariadicAverage", "", "input1", img(b, "BLACK", sz).Out(0), "input2", img(b, "WHITE", sz).Out(0),
		"input3", img(b, "BLACK", sz).Out(0), "input4", img(b, "BLACK", sz).Out(0))
	out := b.Node("XSave", "", "images", avg.Out(0))
	r := mustRun(t, ex, b)
	checkPixel(t, r.images(out.ID), 0, 255/4)
}

func TestForLoop(t *testing.T) {
	forModes(t, func(t *testing.T, ex *Executor, cache bool) {
		b := nodes.NewGraphBuilder("test_for_loop")
		in1 := img(b, "BLACK", sz)
		in2 := img(b, "WHITE", sz)
		ic := b.Node("TestCustomIsChanged", "", "should_change", true, "image", in2.Out(0))
		open := b.Node("TestForLoopOpen", "", "remaining", int64(4), "initial_value1", ic.Out(0))
		avg := b.Node("TestVariadicAverage", "", "input1", in1.Out(0), "input2", open.Out(2))
		cl := b.Node("TestForLoopClose", "", "flow_control", open.Out(0), "initial_value1", avg.Out(0))
		out := b.Node("XSave", "", "images", cl.Out(0))
		for it := 1; it <= 4; it++ {
			open.SetInput("remaining", int64(it))
			r := mustRun(t, ex, b)
			checkPixel(t, r.images(out.ID), 0, 255/(1<<it))
			if !r.didRun(ic.ID) {
				t.Fatal("the NaN IS_CHANGED node must run every time")
			}
		}
	})
}

func TestMixedExpansionReturns(t *testing.T) {
	forModes(t, func(t *testing.T, ex *Executor, cache bool) {
		b := nodes.NewGraphBuilder("test_mixed_expansion_returns")
		vl := b.Node("TestMakeListNode", "", "value1", 0.1, "value2", 0.2, "value3", 0.3)
		mixed := b.Node("TestMixedExpansionReturns", "", "input1", vl.Out(0))
		od := b.Node("XSave", "", "images", mixed.Out(0))
		ol := b.Node("XSave", "", "images", mixed.Out(1))
		r := mustRun(t, ex, b)
		dyn := r.images(od.ID)
		if len(dyn) != 3 {
			t.Fatalf("%d dynamic images", len(dyn))
		}
		checkPixel(t, dyn, 0, 25)
		checkPixel(t, dyn, 1, 51)
		checkPixel(t, dyn, 2, 76)
		lit := r.images(ol.ID)
		for i := 0; i < 3; i++ {
			checkPixel(t, lit, i, 255)
		}
	})
}

func TestMixedLazyResults(t *testing.T) {
	forModes(t, func(t *testing.T, ex *Executor, cache bool) {
		b := nodes.NewGraphBuilder("test_mixed_lazy_results")
		vl := b.Node("TestMakeListNode", "", "value1", 0.0, "value2", 0.5, "value3", 1.0)
		m := b.Node("StubMask", "", "value", vl.Out(0), "height", sz, "width", sz, "batch_size", int64(1))
		mix := b.Node("TestLazyMixImages", "", "image1", img(b, "BLACK", sz).Out(0), "image2", img(b, "WHITE", sz).Out(0), "mask", m.Out(0))
		rb := b.Node("XRebatch", "", "images", mix.Out(0), "batch_size", int64(3))
		out := b.Node("XSave", "", "images", rb.Out(0))
		r := mustRun(t, ex, b)
		items := r.images(out.ID)
		if len(items) != 3 {
			t.Fatalf("%d images", len(items))
		}
		checkPixel(t, items, 0, 0)
		checkPixel(t, items, 1, 127)
		checkPixel(t, items, 2, 255)
	})
}

func TestOutputReuse(t *testing.T) {
	forModes(t, func(t *testing.T, ex *Executor, cache bool) {
		b := nodes.NewGraphBuilder("test_output_reuse")
		in1 := img(b, "BLACK", sz)
		o1 := b.Node("XSave", "", "images", in1.Out(0))
		o2 := b.Node("XSave", "", "images", in1.Out(0))
		r := mustRun(t, ex, b)
		if len(r.images(o1.ID)) != 1 || len(r.images(o2.ID)) != 1 {
			t.Fatal("each output should have 1 image")
		}
		if cache && r.didRun(o1.ID) && r.didRun(o2.ID) {
			t.Error("the identical second output should be served from the cache within the prompt")
		}
	})
}

func TestIsChangedWithOutputs(t *testing.T) {
	forModes(t, func(t *testing.T, ex *Executor, cache bool) {
		b := nodes.NewGraphBuilder("test_is_changed_with_outputs")
		in1 := b.Node("StubConstantImage", "", "value", 0.5, "height", sz, "width", sz, "batch_size", int64(1))
		tn := b.Node("TestIsChangedWithConstants", "", "image", in1.Out(0), "value", 0.5)
		out := b.Node("XPreview", "", "images", tn.Out(0))
		r := mustRun(t, ex, b)
		checkPixel(t, r.images(out.ID), 0, 63)
		r = mustRun(t, ex, b)
		checkPixel(t, r.images(out.ID), 0, 63)
		if r.didRun(tn.ID) == cache {
			t.Fatalf("ran=%v with cache=%v", r.didRun(tn.ID), cache)
		}
	})
}

func TestParallelSleepNodes(t *testing.T) {
	ex := New(Config{})
	b := nodes.NewGraphBuilder("test_parallel_sleep_nodes")
	im := img(b, "BLACK", sz)
	var sl []*nodes.BuilderNode
	for _, s := range []float64{0.29, 0.31, 0.30} {
		n := b.Node("TestSleep", "", "value", im.Out(0), "seconds", s)
		sl = append(sl, n)
		b.Node("XPreview", "", "images", n.Out(0))
	}
	start := time.Now()
	r := mustRun(t, ex, b)
	if el := time.Since(start); el > 700*time.Millisecond { // sequential: 0.9 s
		t.Errorf("async sleeps did not overlap: %v", el)
	}
	for _, n := range sl {
		if !r.didRun(n.ID) {
			t.Errorf("%s did not run", n.ID)
		}
	}
}

func TestParallelSleepExpansion(t *testing.T) {
	ex := New(Config{})
	b := nodes.NewGraphBuilder("test_parallel_sleep_expansion")
	ps := b.Node("TestParallelSleep", "", "image1", img(b, "BLACK", sz).Out(0), "image2", img(b, "WHITE", sz).Out(0),
		"image3", img(b, "WHITE", sz).Out(0), "sleep1", 0.28, "sleep2", 0.29, "sleep3", 0.3)
	out := b.Node("XSave", "", "images", ps.Out(0))
	start := time.Now()
	r := mustRun(t, ex, b)
	if el := time.Since(start); el > 650*time.Millisecond { // sequential: 0.87 s
		t.Errorf("expanded sleeps did not overlap: %v", el)
	}
	if !r.didRun(ps.ID) {
		t.Error("the parallel sleep node should have run")
	}
	items := r.images(out.ID)
	if len(items) != 1 || items[0]["mean"] != 170.0 {
		t.Fatalf("images %v, want one with mean 170", items)
	}
}

func TestExecutionBlockListOutput(t *testing.T) {
	forModes(t, func(t *testing.T, ex *Executor, cache bool) {
		b := nodes.NewGraphBuilder("test_execution_block_list_output")
		il := b.Node("TestMakeListNode", "", "value1", img(b, "BLACK", sz).Out(0), "value2", img(b, "WHITE", sz).Out(0), "value3", img(b, "BLACK", sz).Out(0))
		intl := b.Node("TestMakeListNode", "", "value1", b.Node("StubInt", "", "value", int64(1)).Out(0),
			"value2", b.Node("StubInt", "", "value", int64(2)).Out(0), "value3", b.Node("StubInt", "", "value", int64(3)).Out(0))
		cmp := b.Node("TestIntConditions", "", "a", intl.Out(0), "b", int64(2), "operation", "==")
		bl := b.Node("TestExecutionBlocker", "", "input", il.Out(0), "block", cmp.Out(0), "verbose", false)
		lo := b.Node("TestMakeListNode", "", "value1", bl.Out(0))
		out := b.Node("XPreview", "", "images", lo.Out(0))
		r := mustRun(t, ex, b)
		if !r.didRun(out.ID) {
			t.Fatal("the output should have run")
		}
		items := r.images(out.ID)
		if len(items) != 2 {
			t.Fatalf("%d images, want 2", len(items))
		}
		checkPixel(t, items, 0, 0)
		checkPixel(t, items, 1, 0)
	})
}

func TestVerboseBlocker(t *testing.T) {
	ex := New(Config{})
	b := nodes.NewGraphBuilder("verbose_blocker")
	bl := b.Node("TestExecutionBlocker", "", "input", img(b, "BLACK", sz).Out(0), "block", true, "verbose", true)
	out := b.Node("XSave", "", "images", bl.Out(0))
	r := mustRun(t, ex, b)
	var blocked []ExecutionError
	for _, e := range r.ev {
		if d, ok := e.data.(ExecutionError); ok {
			blocked = append(blocked, d)
		}
	}
	if len(blocked) != 1 || blocked[0].ExceptionMessage != "Execution Blocked: Blocked Execution" ||
		blocked[0].ExceptionType != "ExecutionBlocked" || blocked[0].NodeID != out.ID || blocked[0].Timestamp != 0 {
		t.Fatalf("blocker events %+v", blocked)
	}
	if r.h.Status.StatusStr != "success" || len(r.images(out.ID)) != 0 {
		t.Fatalf("a blocked output runs to success without UI: %+v %v", r.h.Status, r.images(out.ID))
	}
}

func TestPartialExecution(t *testing.T) {
	forModes(t, func(t *testing.T, ex *Executor, cache bool) {
		// included / excluded outputs
		b := nodes.NewGraphBuilder("test_partial_execution")
		in1, in2, in3 := img(b, "BLACK", sz), img(b, "WHITE", sz), img(b, "NOISE", sz)
		o1 := b.Node("XSave", "", "images", in1.Out(0))
		o2 := b.Node("XSave", "", "images", in2.Out(0))
		o3 := b.Node("XSave", "", "images", in3.Out(0))
		r := mustRun(t, ex, b, o1.ID, o3.ID)
		if r.didRun(in2.ID) || r.didRun(o2.ID) || len(r.images(o2.ID)) != 0 {
			t.Fatal("the untargeted branch ran")
		}
		if len(r.images(o1.ID)) != 1 || len(r.images(o3.ID)) != 1 {
			t.Fatal("targeted outputs missing")
		}
		// an untargeted output node upstream of a target still executes
		b = nodes.NewGraphBuilder("test_partial_execution_multiple_output_nodes")
		i1, i2 := img(b, "BLACK", sz), img(b, "WHITE", sz)
		c1 := b.Node("TestOutputNodeWithSocketOutput", "", "image", i1.Out(0), "value", 1.0)
		c2 := b.Node("TestOutputNodeWithSocketOutput", "", "image", c1.Out(0), "value", 2.0)
		s1 := b.Node("XSave", "", "images", i1.Out(0))
		s2 := b.Node("XSave", "", "images", c2.Out(0))
		s3 := b.Node("XSave", "", "images", i2.Out(0))
		r = mustRun(t, ex, b, s2.ID)
		if !r.didRun(c1.ID) || !r.didRun(c2.ID) || r.didRun(i2.ID) || r.didRun(s1.ID) || r.didRun(s3.ID) {
			t.Fatalf("ran %v", r.ran)
		}
		// targets [] → 400
		if _, verr := runB(t, ex, b, []string{}); verr == nil || verr.Info.Type != "prompt_no_outputs" {
			t.Fatalf("empty targets: %v", verr)
		}
	})
}

func TestPartialExecutionWithLazyNodes(t *testing.T) {
	ex := New(Config{})
	b := nodes.NewGraphBuilder("test_partial_execution_with_lazy_nodes")
	in1, in2, in3 := img(b, "BLACK", sz), img(b, "WHITE", sz), img(b, "BLACK", sz)
	m1, m2 := mask(b, 0.0, sz), mask(b, 1.0, sz)
	mix1 := b.Node("TestLazyMixImages", "", "image1", in1.Out(0), "image2", in2.Out(0), "mask", m1.Out(0))
	mix2 := b.Node("TestLazyMixImages", "", "image1", in3.Out(0), "image2", in2.Out(0), "mask", m2.Out(0))
	o1 := b.Node("XSave", "", "images", mix1.Out(0))
	o2 := b.Node("XSave", "", "images", mix2.Out(0))
	r := mustRun(t, ex, b, o1.ID)
	if !r.didRun(in1.ID) || r.didRun(in2.ID) || r.didRun(in3.ID) || r.didRun(mix2.ID) || r.didRun(o2.ID) {
		t.Fatalf("ran %v", r.ran)
	}
}

func TestInterrupt(t *testing.T) {
	ex := New(Config{})
	started := make(chan struct{})
	ex.cfg.Env.Service("started", func() (any, error) { return started, nil })
	b := nodes.NewGraphBuilder("interrupt")
	w := b.Node("XWaitInterrupt", "", "value", img(b, "BLACK", sz).Out(0))
	b.Node("XSave", "", "images", w.Out(0))
	p := b.Finalize()
	outs, _, verr := ex.Validate(p, nil)
	if verr != nil {
		t.Fatal(verr)
	}
	if ex.Interrupt("") {
		t.Fatal("interrupt while idle must be dropped")
	}
	sink := &recSink{}
	done := make(chan *History)
	go func() { done <- ex.Execute(context.Background(), Job{PromptID: "P", Prompt: p, Outputs: outs}, sink) }()
	<-started
	if ex.Interrupt("other") {
		t.Fatal("interrupt for another prompt must be ignored")
	}
	if !ex.Interrupt("P") {
		t.Fatal("interrupt not delivered")
	}
	h := <-done
	if h.Status.StatusStr != "error" || h.Status.Completed {
		t.Fatalf("status %+v", h.Status)
	}
	var got *ExecutionInterrupted
	for _, e := range sink.ev {
		if d, ok := e.data.(ExecutionInterrupted); ok {
			got = &d
			if e.client != "" {
				t.Error("execution_interrupted without a client must be broadcast")
			}
		}
		if e.name == "executing" || e.name == "execution_start" {
			t.Errorf("%s sent without a client id", e.name)
		}
	}
	if got == nil || got.NodeID != w.ID || got.NodeType != "XWaitInterrupt" {
		t.Fatalf("interrupted event %+v", got)
	}
	// ctx cancellation interrupts too
	ctx, cancel := context.WithCancel(context.Background())
	started2 := make(chan struct{})
	ex2 := New(Config{})
	ex2.cfg.Env.Service("started", func() (any, error) { return started2, nil })
	go func() { <-started2; cancel() }()
	p2 := b.Finalize()
	outs, _, _ = ex2.Validate(p2, nil)
	h = ex2.Execute(ctx, Job{PromptID: "Q", Prompt: p2, Outputs: outs, ClientID: "c"}, &recSink{})
	if h.Status.StatusStr != "error" || h.Status.Messages[len(h.Status.Messages)-1].Event != "execution_interrupted" {
		t.Fatalf("ctx cancel: %+v", h.Status)
	}
}

func TestEventOrderAndRouting(t *testing.T) {
	ex := New(Config{})
	b := nodes.NewGraphBuilder("events")
	in1 := img(b, "BLACK", sz)
	out := b.Node("XSave", "", "images", in1.Out(0))
	r := mustRun(t, ex, b)
	var names []string
	for _, e := range r.ev {
		if e.client != "c1" {
			t.Errorf("%s routed to %q", e.name, e.client)
		}
		names = append(names, e.name)
	}
	want := "execution_start execution_cached progress_state executing progress_state progress_state executing executed progress_state execution_success"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
	meta, _ := r.h.Meta.Get(out.ID)
	if m := meta.(*nodes.OrderedMap); m.Values["node_id"] != out.ID || m.Values["parent_node"] != nil {
		t.Fatalf("meta %+v", m)
	}
	// no client: only progress_state is broadcast
	r2, _ := runP(t, New(Config{}), b.Finalize(), nil, "")
	for _, e := range r2.ev {
		if e.name != "progress_state" || e.client != "" {
			t.Fatalf("without a client got %s → %q", e.name, e.client)
		}
	}
	if len(r2.images(out.ID)) != 1 {
		t.Fatal("history outputs are recorded without a client")
	}
}

func TestValueNotInListAndCoercion(t *testing.T) {
	ex := New(Config{})
	b := nodes.NewGraphBuilder("coerce")
	s := b.Node("StubImage", "", "content", "GREY", "height", "12", "width", 8.9, "batch_size", true)
	b.Node("XSave", "", "images", s.Out(0))
	p := b.Finalize()
	_, _, verr := ex.Validate(p, nil)
	if verr == nil {
		t.Fatal("GREY is not an option")
	}
	e := verr.NodeErrors[s.ID].Errors
	if len(e) != 1 || e[0].Type != "value_not_in_list" || e[0].Details != "content: 'GREY' not in ['WHITE', 'BLACK', 'NOISE']" {
		t.Fatalf("%+v", e)
	}
	n := p.Nodes[s.ID]
	if n.Inputs.Values["height"] != int64(12) || n.Inputs.Values["width"] != int64(8) || n.Inputs.Values["batch_size"] != int64(1) {
		t.Fatalf("constants not coerced: %v", n.Inputs.Values)
	}
}

var _ = graph.Link{}

func TestCachedRunEventSequence(t *testing.T) {
	ex := New(Config{})
	b := nodes.NewGraphBuilder("cachedseq")
	b.Node("XSave", "", "images", img(b, "BLACK", 8).Out(0))
	mustRun(t, ex, b)
	r := mustRun(t, ex, b)
	var names []string
	for _, e := range r.ev {
		names = append(names, e.name)
	}
	if got := strings.Join(names, " "); got != "execution_start execution_cached executed progress_state execution_success" {
		t.Fatalf("fully cached run events: %s", got)
	}
	if n := len(r.h.Status.Messages); n != 3 {
		t.Fatalf("status messages %d", n)
	}
}

func TestLazyRequestErrors(t *testing.T) {
	nodes.Register(&nodes.Def{Name: "XBadLazy", Category: "test",
		Required: []nodes.Input{{Name: "a", Type: "*", Lazy: true}, {Name: "c", Type: nodes.TypeInt}},
		Outputs:  []nodes.Output{{Type: "*"}},
		CheckLazy: func(ctx *nodes.Context, in nodes.Inputs) ([]string, error) {
			return []string{in.String("want")}, nil
		},
		Optional: []nodes.Input{{Name: "want", Type: nodes.TypeString}},
		Execute:  func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) { return nodes.Out(in["a"]) }})
	for want, msg := range map[string]string{
		"zzz": "says it needs input zzz, but there is no input to that node at all",
	} {
		b := nodes.NewGraphBuilder("lazyerr")
		n := b.Node("XBadLazy", "", "a", b.Node("StubInt", "", "value", int64(1)).Out(0), "c", int64(1), "want", want)
		// (a constant that is present is never "requested": it is available)
		b.Node("XSink", "", "in0", n.Out(0))
		r, verr := runB(t, New(Config{}), b, nil)
		if verr != nil {
			t.Fatal(verr)
		}
		if r.err == nil || !strings.Contains(r.err.ExceptionMessage, msg) || r.err.NodeID != n.ID {
			t.Fatalf("%s: %+v", want, r.err)
		}
	}
}

func TestInputIsListBlocker(t *testing.T) {
	b := nodes.NewGraphBuilder("listblock")
	bl := b.Node("TestExecutionBlocker", "", "input", int64(5), "block", true, "verbose", false)
	ml := b.Node("TestMakeListNode", "", "value1", int64(1), "value2", bl.Out(0))
	acc := b.Node("TestListToAccumulationNode", "", "list", ml.Out(0))
	ln := b.Node("TestAccumulationGetLengthNode", "", "accumulation", acc.Out(0))
	sink := b.Node("XSink", "", "in0", ln.Out(0))
	r := mustRun(t, New(Config{}), b)
	// every node is staged (executing is sent), but a blocked element blocks the whole
	// INPUT_IS_LIST call, and everything downstream of it
	if _, ok := r.h.Outputs.Get(sink.ID); ok {
		t.Fatal("the sink must be blocked")
	}
	b2 := nodes.NewGraphBuilder("listblock2")
	ml2 := b2.Node("TestMakeListNode", "", "value1", int64(1), "value2", int64(2))
	acc2 := b2.Node("TestListToAccumulationNode", "", "list", ml2.Out(0))
	sink2 := b2.Node("XSink", "", "in0", b2.Node("TestAccumulationGetLengthNode", "", "accumulation", acc2.Out(0)).Out(0))
	r = mustRun(t, New(Config{}), b2)
	if _, ok := r.h.Outputs.Get(sink2.ID); !ok || !r.didRun(ml2.ID) {
		t.Fatal("without a blocker the chain runs")
	}
}
