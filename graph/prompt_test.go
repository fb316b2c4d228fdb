package graph

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParsePromptRoundTrip(t *testing.T) {
	in := `{"9": {"inputs": {"filename_prefix": "x", "images": ["8", 0]}, "class_type": "SaveImage", "_meta": {"title": "Save"}},
	 "3": {"inputs": {"seed": 18446744073709551615, "cfg": 8.0, "steps": 20, "denoise": 1e0, "model": ["4", 0.0],
	        "weird": ["4", 0.5], "list": {"__value__": [1, 2]}, "three": ["a", 1, 2], "notlink": [1, 0], "nan": NaN, "n": null, "b": true},
	        "class_type": "KSampler", "is_changed": [1.5], "override_display_id": "7"},
	 "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "caf\u00e9 \ud83d\ude00.safetensors"}}}`
	p, err := ParsePrompt([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.IDs, []string{"9", "3", "4"}) {
		t.Fatalf("ids = %v", p.IDs)
	}
	n := p.Nodes["3"]
	if !reflect.DeepEqual(n.Inputs.Keys, []string{"seed", "cfg", "steps", "denoise", "model", "weird", "list", "three", "notlink", "nan", "n", "b"}) {
		t.Errorf("keys = %v", n.Inputs.Keys)
	}
	checks := map[string]any{
		"seed":    json.Number("18446744073709551615"),
		"cfg":     json.Number("8.0"),
		"steps":   json.Number("20"),
		"model":   Link{NodeID: "4", Slot: 0},
		"weird":   []any{"4", json.Number("0.5")},
		"list":    map[string]any{"__value__": []any{json.Number("1"), json.Number("2")}},
		"three":   []any{"a", json.Number("1"), json.Number("2")},
		"notlink": []any{json.Number("1"), json.Number("0")},
		"nan":     json.Number("NaN"),
		"n":       nil,
		"b":       true,
	}
	for k, want := range checks {
		if got := n.Inputs.Values[k]; !reflect.DeepEqual(got, want) {
			t.Errorf("input %s = %#v, want %#v", k, got, want)
		}
	}
	if !n.HasIsChanged || !reflect.DeepEqual(n.IsChanged, []any{json.Number("1.5")}) || n.OverrideDisplayID != "7" {
		t.Errorf("is_changed/override: %#v %v %q", n.IsChanged, n.HasIsChanged, n.OverrideDisplayID)
	}
	if p.Nodes["9"].Meta["title"] != "Save" || p.Nodes["4"].Meta != nil {
		t.Errorf("meta: %v %v", p.Nodes["9"].Meta, p.Nodes["4"].Meta)
	}
	out, err := p.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"9":{"inputs":{"filename_prefix":"x","images":["8",0]},"class_type":"SaveImage","_meta":{"title":"Save"}},` +
		`"3":{"inputs":{"seed":18446744073709551615,"cfg":8.0,"steps":20,"denoise":1e0,"model":["4",0],"weird":["4",0.5],"list":{"__value__":[1,2]},"three":["a",1,2],"notlink":[1,0],"nan":NaN,"n":null,"b":true},"class_type":"KSampler","is_changed":[1.5],"override_display_id":"7"},` +
		`"4":{"inputs":{"ckpt_name":"café 😀.safetensors"},"class_type":"CheckpointLoaderSimple"}}`
	if string(out) != want {
		t.Errorf("MarshalJSON\n got %s\nwant %s", out, want)
	}
	// Parsing our own output gives the same prompt.
	p2, err := ParsePrompt(out)
	if err != nil {
		t.Fatal(err)
	}
	out2, _ := p2.MarshalJSON()
	if string(out2) != string(out) {
		t.Errorf("second round trip differs:\n%s\n%s", out2, out)
	}
	// Python json.dumps form (metadata).
	py, err := p.MarshalPython()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(py), `"ckpt_name": "caf\u00e9 \ud83d\ude00.safetensors"`) || !strings.Contains(string(py), `"images": ["8", 0]`) {
		t.Errorf("python form: %s", py)
	}
}

func TestParsePromptWrapper(t *testing.T) {
	body := `{"client_id": "c", "prompt": {"1": {"class_type": "A", "inputs": {}}}, "extra_data": {}}`
	p, err := ParsePrompt([]byte(body))
	if err != nil || len(p.IDs) != 1 || p.Nodes["1"].ClassType != "A" {
		t.Fatalf("wrapper: %v %+v", err, p)
	}
	// A node whose id is "prompt" is not a wrapper.
	p, err = ParsePrompt([]byte(`{"prompt": {"class_type": "A", "inputs": {}}}`))
	if err != nil || p.Nodes["prompt"] == nil {
		t.Fatalf("node named prompt: %v %+v", err, p)
	}
	// UnmarshalJSON works inside a larger structure.
	var req struct {
		Prompt *Prompt `json:"prompt"`
	}
	if err := json.Unmarshal([]byte(body), &req); err != nil || req.Prompt.Nodes["1"] == nil {
		t.Fatalf("unmarshal: %v", err)
	}
}

func TestParsePromptErrors(t *testing.T) {
	for _, in := range []string{
		``, `[]`, `1`, `{"1": 5}`, `{"1": {"class_type": 5}}`, `{"1": {"class_type": "A", "inputs": []}}`,
		`{"1": {"class_type": "A", "inputs": {"x": [1,}}}`, `{"a" 1}`, `{"a": "\x01"}`, `{"a": 01}`, `{"a": 1.}`,
		`{"a": "\ud800"} x`, strings.Repeat("[", 2000) + strings.Repeat("]", 2000), `{"a": -Inf}`,
	} {
		if _, err := ParsePrompt([]byte(in)); err == nil {
			t.Errorf("ParsePrompt(%.40q): no error", in)
		}
	}
	_, err := ParsePrompt([]byte(`{"1": {"class_type": "A", "inputs": {"x": tru}}}`))
	var se *SyntaxError
	if err == nil || !strings.Contains(err.Error(), "offset") || !asSyntax(err, &se) {
		t.Errorf("want a SyntaxError with offset, got %v", err)
	}
}

func asSyntax(err error, se **SyntaxError) bool {
	for err != nil {
		if s, ok := err.(*SyntaxError); ok {
			*se = s
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func TestMarshalValues(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{1.0, "1.0"}, {2.5, "2.5"}, {1e21, "1e+21"}, {1e15, "1000000000000000.0"}, {1e16, "1e+16"}, {1e6, "1000000.0"},
		{123456789.0, "123456789.0"}, {0.0001, "0.0001"}, {2.5e-5, "2.5e-05"}, {-0.5, "-0.5"}, {0.0, "0.0"},
		{12345678901234567890.0, "1.2345678901234567e+19"}, {float32(0.5), "0.5"}, {int64(-3), "-3"}, {uint64(18446744073709551615), "18446744073709551615"},
		{map[string]any{"b": 1, "a": []string{"x"}}, `{"a":["x"],"b":1}`}, {"tab\t\"q\"", `"tab\t\"q\""`},
		{struct{ A int }{3}, `{"A":3}`},
	} {
		got, err := MarshalCompact(tc.v)
		if err != nil || string(got) != tc.want {
			t.Errorf("MarshalCompact(%#v) = %s, %v; want %s", tc.v, got, err, tc.want)
		}
	}
	if _, err := MarshalCompact(json.Number("12abc")); err == nil {
		t.Error("invalid json.Number accepted")
	}
	got, _ := MarshalPython(map[string]any{"k": "é\x7f", "l": []any{1, 2}})
	if string(got) != `{"k": "\u00e9\u007f", "l": [1, 2]}` {
		t.Errorf("MarshalPython = %s", got)
	}
}

// bigPrompt builds an n-node chain-and-fan prompt in API JSON.
func bigPrompt(n int) []byte {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"%d": {"inputs": {"seed": %d, "cfg": 7.5, "text": "node %d", "a": ["%d", 0], "b": ["%d", 1]}, "class_type": "Node", "_meta": {"title": "N"}}`,
			i, i*7919, i, max(i-1, 0), i/2)
	}
	b.WriteString("}")
	return []byte(b.String())
}

func TestBigPromptLinear(t *testing.T) {
	p, err := ParsePrompt(bigPrompt(2000))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.IDs) != 2000 {
		t.Fatal(len(p.IDs))
	}
}

func BenchmarkParsePrompt10k(b *testing.B) {
	data := bigPrompt(10000)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ParsePrompt(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalPrompt10k(b *testing.B) {
	p, err := ParsePrompt(bigPrompt(10000))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParsePrompt(f *testing.F) {
	for _, s := range []string{
		`{"1": {"class_type": "A", "inputs": {"x": ["2", 0], "y": 1.5, "z": {"__value__": [1]}}, "_meta": {"title": "t"}}}`,
		`{"prompt": {"1": {"class_type": "A", "inputs": {}}}}`,
		`{"1": {"class_type": "A", "inputs": {"n": NaN, "i": -Infinity, "s": "\ud83d\ude00"}, "is_changed": 1}}`,
		`{"a": [1, 2, [3, {"b": null}]]}`, `[`, `{"1":{"inputs":{"x":["1",1e400]}}}`, `"\u00`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePrompt(data)
		if err != nil {
			return
		}
		out, err := p.MarshalJSON()
		if err != nil {
			t.Fatalf("marshal of parsed prompt failed: %v", err)
		}
		p2, err := ParsePrompt(out)
		if err != nil {
			t.Fatalf("re-parse failed: %v\n%s", err, out)
		}
		out2, err := p2.MarshalJSON()
		if err != nil || string(out2) != string(out) {
			t.Fatalf("round trip not stable:\n%s\n%s", out, out2)
		}
		_, _ = p.MarshalPython()
		_, _ = p.TopologicalOrder()
	})
}

func TestClone(t *testing.T) {
	p := mustPrompt(t, `{"1": {"class_type": "A", "inputs": {"l": {"__value__": [1, [2]]}, "x": ["2", 0]}, "_meta": {"title": "t"}}, "2": {"class_type": "B", "inputs": {}}}`)
	q := p.Clone()
	q.Nodes["1"].Inputs.Values["l"].(map[string]any)["__value__"].([]any)[1].([]any)[0] = "changed"
	q.Nodes["1"].Inputs.Set("new", 1)
	q.Nodes["1"].Meta["title"] = "u"
	a, _ := p.MarshalJSON()
	if string(a) != `{"1":{"inputs":{"l":{"__value__":[1,[2]]},"x":["2",0]},"class_type":"A","_meta":{"title":"t"}},"2":{"inputs":{},"class_type":"B"}}` {
		t.Errorf("original changed: %s", a)
	}
}
