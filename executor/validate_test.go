package executor

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/nodes"
)

func TestValidationErrorTypes(t *testing.T) {
	stub := func(b *nodes.GraphBuilder, kv ...any) *nodes.BuilderNode {
		base := map[string]any{"content": "BLACK", "height": int64(8), "width": int64(8), "batch_size": int64(1)}
		n := b.Node("StubImage", "s")
		for _, k := range []string{"content", "height", "width", "batch_size"} {
			n.SetInput(k, base[k])
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "DELETE" {
				n.Inputs.Delete(kv[i].(string))
			} else {
				n.SetInput(kv[i].(string), kv[i+1])
			}
		}
		return n
	}
	many := make([]any, 25)
	for i := range many {
		many[i] = i
	}
	cases := []struct {
		name    string
		build   func(b *nodes.GraphBuilder)
		typ     string
		message string
		details string
		extra   string // JSON of extra_info
	}{
		{"required_input_missing", func(b *nodes.GraphBuilder) {
			b.Node("XSave", "o", "images", stub(b, "height", "DELETE").Out(0))
		}, "required_input_missing", "Required input is missing", "height", `{"input_name":"height"}`},
		{"bad_linked_input", func(b *nodes.GraphBuilder) {
			b.Node("XSave", "o", "images", []any{"s", json.Number("0"), json.Number("1")})
			stub(b)
		}, "bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]", "images",
			`{"input_config":["IMAGE"],"input_name":"images","received_value":["s",0,1]}`},
		{"return_type_mismatch", func(b *nodes.GraphBuilder) {
			b.Node("XSave", "o", "images", b.Node("StubInt", "i", "value", int64(1)).Out(0))
		}, "return_type_mismatch", "Return type mismatch between linked nodes", "images, received_type(INT) mismatch input_type(IMAGE)",
			`{"input_config":["IMAGE"],"input_name":"images","linked_node":["i",0],"received_type":"INT"}`},
		{"invalid_input_type", func(b *nodes.GraphBuilder) {
			b.Node("XSave", "o", "images", stub(b, "height", "abc").Out(0))
		}, "invalid_input_type", "Failed to convert an input value to a INT value", "height, abc, invalid literal for int() with base 10: 'abc'",
			`{"exception_message":"invalid literal for int() with base 10: 'abc'","input_config":["INT",{"default":512,"min":1,"max":1073741824}],"input_name":"height","received_value":"abc"}`},
		{"value_smaller_than_min", func(b *nodes.GraphBuilder) {
			b.Node("XSave", "o", "images", stub(b, "height", json.Number("0")).Out(0))
		}, "value_smaller_than_min", "Value 0 smaller than min of 1", "height",
			`{"input_config":["INT",{"default":512,"min":1,"max":1073741824}],"input_name":"height","received_value":0}`},
		{"value_bigger_than_max", func(b *nodes.GraphBuilder) {
			b.Node("XSave", "o", "images", b.Node("StubConstantImage", "c", "value", json.Number("1.5"), "height", int64(8), "width", int64(8), "batch_size", int64(1)).Out(0))
		}, "value_bigger_than_max", "Value 1.5 bigger than max of 1.0", "value",
			`{"input_config":["FLOAT",{"default":0.5,"min":0,"max":1,"step":0.01}],"input_name":"value","received_value":1.5}`},
		{"value_not_in_list", func(b *nodes.GraphBuilder) {
			b.Node("XSave", "o", "images", stub(b, "content", json.Number("5")).Out(0))
		}, "value_not_in_list", "Value not in list", "content: '5' not in ['WHITE', 'BLACK', 'NOISE']",
			`{"input_config":[["WHITE","BLACK","NOISE"]],"input_name":"content","received_value":5}`},
		{"custom_validation_failed", func(b *nodes.GraphBuilder) {
			b.Node("XSave", "o", "images", b.Node("TestCustomValidation1", "v", "input1", "foo", "input2", 1.0).Out(0))
		}, "custom_validation_failed", "Custom validation failed for node", "input1 - Invalid type of input1: <class 'str'>",
			`{"input_name":"input1"}`},
		{"exception_during_inner_validation", func(b *nodes.GraphBuilder) {
			b.Node("XSave", "o", "images", b.Node("TestLazyMixImages", "m", "image1", graph.Link{NodeID: "gone", Slot: 0},
				"image2", stub(b).Out(0), "mask", b.Node("StubMask", "k", "value", 0.5, "height", int64(8), "width", int64(8), "batch_size", int64(1)).Out(0)).Out(0))
		}, "exception_during_inner_validation", "Exception when validating inner node", "'gone'",
			`{"exception_message":"'gone'","exception_type":"KeyError","input_config":["IMAGE"],"input_name":"images","linked_node":["m",0],"traceback":[]}`},
		{"exception_during_validation", func(b *nodes.GraphBuilder) {
			b.Node("XSave", "o", "images", graph.Link{NodeID: "s", Slot: 3})
			stub(b)
		}, "exception_during_validation", "Exception when validating node", "tuple index out of range",
			`{"exception_type":"IndexError","traceback":[]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := nodes.NewGraphBuilder("")
			c.build(b)
			_, _, verr := New(Config{}).Validate(b.Finalize(), nil)
			if verr == nil {
				t.Fatal("prompt accepted")
			}
			if verr.Info.Type != "prompt_outputs_failed_validation" || verr.Info.Message != "Prompt outputs failed validation" {
				t.Fatalf("top error %+v", verr.Info)
			}
			var got *ErrorInfo
			var ne *NodeErrorEntry
			for _, n := range verr.NodeErrors {
				for i := range n.Errors {
					if n.Errors[i].Type == c.typ && got == nil {
						got, ne = &n.Errors[i], n
					}
				}
			}
			if got == nil {
				js, _ := json.Marshal(verr)
				t.Fatalf("no %s in %s", c.typ, js)
			}
			if got.Message != c.message || got.Details != c.details {
				t.Fatalf("message %q details %q", got.Message, got.Details)
			}
			extra, _ := json.Marshal(got.ExtraInfo)
			if string(extra) != c.extra {
				t.Fatalf("extra_info\n got %s\nwant %s", extra, c.extra)
			}
			if len(ne.DependentOutputs) != 1 || ne.DependentOutputs[0] != "o" {
				t.Fatalf("dependent_outputs %v", ne.DependentOutputs)
			}
			body, _ := json.Marshal(verr)
			if !strings.HasPrefix(string(body), `{"error":{"type":"prompt_outputs_failed_validation"`) || !strings.Contains(string(body), `"node_errors":{`) {
				t.Fatalf("400 body %s", body)
			}
		})
	}
}

func TestValidationPromptErrors(t *testing.T) {
	p := graph.NewPrompt()
	p.Add("1", &graph.Node{})
	_, _, verr := New(Config{}).Validate(p, nil)
	body, _ := json.Marshal(verr)
	if string(body) != `{"error":{"type":"missing_node_type","message":"Node 'ID #1' has no class_type. The workflow may be corrupted or a custom node is missing.","details":"Node ID '#1'","extra_info":{"class_type":null,"node_id":"1","node_title":null}},"node_errors":{}}` {
		t.Fatalf("%s", body)
	}
	p = graph.NewPrompt()
	p.Add("7", &graph.Node{ClassType: "Nope", Meta: map[string]any{"title": "My Nope"}})
	_, _, verr = New(Config{}).Validate(p, nil)
	body, _ = json.Marshal(verr)
	if string(body) != `{"error":{"type":"missing_node_type","message":"Node 'My Nope' not found. The custom node may not be installed.","details":"Node ID '#7'","extra_info":{"class_type":"Nope","node_id":"7","node_title":"My Nope"}},"node_errors":{}}` {
		t.Fatalf("%s", body)
	}
	b := nodes.NewGraphBuilder("")
	b.Node("StubInt", "1", "value", int64(1))
	_, _, verr = New(Config{}).Validate(b.Finalize(), nil)
	body, _ = json.Marshal(verr)
	if string(body) != `{"error":{"type":"prompt_no_outputs","message":"Prompt has no outputs","details":"","extra_info":{}},"node_errors":{}}` {
		t.Fatalf("%s", body)
	}
	body, _ = json.Marshal(NoPromptError())
	if string(body) != `{"error":{"type":"no_prompt","message":"No prompt provided","details":"No prompt provided","extra_info":{}},"node_errors":{}}` {
		t.Fatalf("%s", body)
	}
}

// The memo is shared across outputs: a later failing output is appended to every failed node's
// dependent_outputs (ComfyUI quirk), and details join the outputs' own reasons.
func TestDependentOutputsAndDetails(t *testing.T) {
	b := nodes.NewGraphBuilder("")
	bad1 := b.Node("StubInt", "b1", "value", "x")
	b.Node("XSave", "o1", "images", bad1.Out(0)) // own reason: type mismatch
	bad2 := b.Node("StubImage", "b2", "content", "BLACK", "height", int64(0), "width", int64(8), "batch_size", int64(1))
	b.Node("XSave", "o2", "images", bad2.Out(0))
	b.Node("XSave", "o3") // own reason: images missing
	_, _, verr := New(Config{}).Validate(b.Finalize(), nil)
	if verr == nil {
		t.Fatal("accepted")
	}
	want := "Return type mismatch between linked nodes: images, received_type(INT) mismatch input_type(IMAGE)\nRequired input is missing: images"
	if verr.Info.Details != want {
		t.Fatalf("details %q", verr.Info.Details)
	}
	if d := verr.NodeErrors["o1"].DependentOutputs; len(d) != 3 {
		t.Fatalf("o1 dependent_outputs %v (quirk: every later failing output)", d)
	}
	if d := verr.NodeErrors["b2"].DependentOutputs; len(d) != 2 || d[0] != "o2" {
		t.Fatalf("b2 dependent_outputs %v", d)
	}
	if _, ok := verr.NodeErrors["b1"]; ok {
		t.Fatal("b1 is never validated: its consumer's link check failed first")
	}
	if _, ok := verr.NodeErrors["o2"]; ok {
		t.Fatal("o2 fails only because of upstream: no entry of its own")
	}
}

func TestValueUnwrapAndPartialTargets(t *testing.T) {
	b := nodes.NewGraphBuilder("")
	s := b.Node("StubImage", "s", "content", map[string]any{"__value__": "WHITE"}, "height", int64(8), "width", int64(8), "batch_size", int64(1))
	b.Node("XSave", "o1", "images", s.Out(0))
	b.Node("XSave", "o2", "images", s.Out(0))
	p := b.Finalize()
	outs, ne, verr := New(Config{}).Validate(p, []string{"o2", "s"})
	if verr != nil || len(outs) != 1 || outs[0] != "o2" || len(ne) != 0 {
		t.Fatalf("%v %v %v", outs, ne, verr)
	}
	if p.Nodes["s"].Inputs.Values["content"] != "WHITE" {
		t.Fatal("__value__ not unwrapped in the prompt")
	}
}

func TestCoercion(t *testing.T) {
	cases := []struct {
		typ  string
		in   any
		want any
		err  string
	}{
		{"INT", json.Number("5"), int64(5), ""},
		{"INT", json.Number("5.9"), int64(5), ""},
		{"INT", json.Number("-5.9"), int64(-5), ""},
		{"INT", true, int64(1), ""},
		{"INT", "12", int64(12), ""},
		{"INT", " 7 ", int64(7), ""},
		{"INT", "1_000", int64(1000), ""},
		{"INT", "5.0", nil, "invalid literal for int() with base 10: '5.0'"},
		{"INT", nil, nil, "int() argument must be a string, a bytes-like object or a real number, not 'NoneType'"},
		{"INT", json.Number("18446744073709551615"), uint64(18446744073709551615), ""},
		{"INT", []any{}, nil, "int() argument must be a string, a bytes-like object or a real number, not 'list'"},
		{"FLOAT", json.Number("5"), 5.0, ""},
		{"FLOAT", "1.5", 1.5, ""},
		{"FLOAT", "inf", math.Inf(1), ""},
		{"FLOAT", true, 1.0, ""},
		{"FLOAT", "abc", nil, "could not convert string to float: 'abc'"},
		{"FLOAT", nil, nil, "float() argument must be a string or a real number, not 'NoneType'"},
		{"STRING", json.Number("5"), "5", ""},
		{"STRING", json.Number("5.0"), "5.0", ""},
		{"STRING", true, "True", ""},
		{"STRING", nil, "None", ""},
		{"STRING", []any{json.Number("1"), "a"}, "[1, 'a']", ""},
		{"BOOLEAN", "false", true, ""},
		{"BOOLEAN", json.Number("0.0"), false, ""},
		{"BOOLEAN", "", false, ""},
		{"BOOLEAN", map[string]any{}, false, ""},
	}
	for _, c := range cases {
		got, err := coerce(c.typ, c.in)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%s(%#v): err %v, want %q", c.typ, c.in, err, c.err)
			}
			continue
		}
		if err != nil || !(got == c.want) {
			t.Errorf("%s(%#v) = %#v, %v; want %#v", c.typ, c.in, got, err, c.want)
		}
	}
}

func TestPyFormatting(t *testing.T) {
	for f, want := range map[float64]string{5: "5.0", 1e38: "1e+38", 0.1: "0.1", 1e16: "1e+16", 1e15: "1000000000000000.0",
		1.5e-5: "1.5e-05", 0.0001: "0.0001", -2.5: "-2.5", math.Inf(-1): "-inf"} {
		if got := pyFloatRepr(f); got != want {
			t.Errorf("repr(%v) = %s, want %s", f, got, want)
		}
	}
	if got := pyRepr([]any{"it's", "a", int64(1), nil, true}); got != `["it's", 'a', 1, None, True]` {
		t.Errorf("repr list %s", got)
	}
	if !pyEqual(int64(1), 1.0) || !pyEqual(true, int64(1)) || pyEqual("1", int64(1)) {
		t.Error("python equality")
	}
}

func FuzzCoerce(f *testing.F) {
	for _, s := range []string{"5", " 7 ", "1_000", "-0", "1e5", "inf", "nan", "abc", "", "+", "_1", "0x10", "5.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, typ := range []string{"INT", "FLOAT", "STRING", "BOOLEAN"} {
			v, err := coerce(typ, s)
			if err == nil && v == nil {
				t.Fatalf("%s(%q): nil without error", typ, s)
			}
			if typ == "INT" && err == nil {
				// an accepted integer string is also a valid float string
				if _, ferr := coerce("FLOAT", s); ferr != nil {
					t.Fatalf("int(%q) ok but float() fails: %v", s, ferr)
				}
			}
		}
		_ = pyStrRepr(s)
		_, _ = coerce("INT", json.Number(s))
	})
}

// VariantSupport: links from variant ("SmartType") nodes pass a variant node's check, others
// must be subsets of the declared type.
func TestVariantTypes(t *testing.T) {
	b := nodes.NewGraphBuilder("")
	l := b.Node("TestAccumulationGetLengthNode", "len", "accumulation", b.Node("TestAccumulateNode", "acc", "to_add", int64(1)).Out(0))
	v := b.Node("TestCustomValidation3", "v", "input1", l.Out(0), "input2", 1.0) // INT from a variant node
	b.Node("XSave", "o", "images", v.Out(0))
	if _, _, verr := New(Config{}).Validate(b.Finalize(), nil); verr != nil {
		js, _ := json.Marshal(verr)
		t.Fatalf("a variant source passes: %s", js)
	}
	b = nodes.NewGraphBuilder("")
	v = b.Node("TestCustomValidation3", "v", "input1", b.Node("StubInt", "i", "value", int64(1)).Out(0), "input2", 1.0)
	b.Node("XSave", "o", "images", v.Out(0))
	_, _, verr := New(Config{}).Validate(b.Finalize(), nil)
	if verr == nil || verr.NodeErrors["v"].Errors[0].Details != "input_types - Invalid type of input1: INT (expected IMAGE,FLOAT)" {
		t.Fatalf("%+v", verr)
	}
}

func TestNormalize(t *testing.T) {
	in := []any{json.Number("1"), "a", map[string]any{"x": json.Number("2.5"), "y": "z"}, []any{"k"}}
	out := normalize(in).([]any)
	if out[0] != int64(1) || out[2].(map[string]any)["x"] != 2.5 || out[2].(map[string]any)["y"] != "z" || out[3].([]any)[0] != "k" {
		t.Fatalf("%#v", out)
	}
	if _, ok := in[0].(json.Number); !ok {
		t.Fatal("normalize must not modify its input")
	}
	plain := []any{"a", true}
	if got := normalize(plain).([]any); &got[0] != &plain[0] {
		t.Fatal("an unchanged list is returned as is")
	}
}
