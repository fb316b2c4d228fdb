package nodes

import (
	"encoding/json"
	"testing"

	"github.com/comfygo/comfygo/graph"
)

func exec0(ctx *Context, in Inputs) (Result, error) { return Out() }

var kSamplerLike = &Def{
	Name: "KSamplerLike", Category: "sampling",
	Description: "Uses the provided model.",
	Required: []Input{
		{Name: "model", Type: TypeModel, Tooltip: "The model."},
		{Name: "seed", Type: TypeInt, Default: 0, Min: 0, Max: uint64(18446744073709551615), ControlAfterGenerate: true},
		{Name: "cfg", Type: TypeFloat, Default: 8.0, Min: 0.0, Max: 100.0, Step: 0.1, Round: 0.01},
		{Name: "sampler_name", Type: TypeCombo, Options: []string{"euler", "lcm"}},
	},
	Optional: []Input{{Name: "note", Type: TypeString, Multiline: true, ForceInput: true}},
	Hidden:   []Hidden{{Name: "unique_id", Marker: "UNIQUE_ID"}},
	Outputs:  []Output{{Type: TypeLatent, Tooltip: "The denoised latent."}},
	Execute:  exec0,
}

func TestObjectInfo(t *testing.T) {
	got, err := json.Marshal(ObjectInfo(kSamplerLike, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"input":{"required":{"model":["MODEL",{"tooltip":"The model."}],` +
		`"seed":["INT",{"default":0,"min":0,"max":18446744073709551615,"control_after_generate":true}],` +
		`"cfg":["FLOAT",{"default":8,"min":0,"max":100,"step":0.1,"round":0.01}],` +
		`"sampler_name":[["euler","lcm"]]},` +
		`"optional":{"note":["STRING",{"multiline":true,"forceInput":true}]},` +
		`"hidden":{"unique_id":"UNIQUE_ID"}},` +
		`"input_order":{"required":["model","seed","cfg","sampler_name"],"optional":["note"],"hidden":["unique_id"]},` +
		`"output":["LATENT"],"output_is_list":[false],"output_name":["LATENT"],"name":"KSamplerLike",` +
		`"display_name":"KSamplerLike","description":"Uses the provided model.","python_module":"nodes",` +
		`"category":"sampling","output_node":false,"output_tooltips":["The denoised latent."]}`
	if string(got) != want {
		t.Fatalf("object_info\n got %s\nwant %s", got, want)
	}
	v3 := *kSamplerLike
	v3.V3 = true
	got, _ = json.Marshal(ObjectInfo(&v3, nil))
	var m map[string]any
	json.Unmarshal(got, &m)
	combo := m["input"].(map[string]any)["required"].(map[string]any)["sampler_name"].([]any)
	if combo[0] != "COMBO" || combo[1].(map[string]any)["options"] == nil {
		t.Fatalf("V3 combo %v", combo)
	}
	for _, k := range []string{"deprecated", "experimental", "api_node", "output_matchtypes", "is_input_list"} {
		if _, ok := m[k]; !ok {
			t.Errorf("V3 info lacks %s", k)
		}
	}
	if h := m["input"].(map[string]any)["hidden"].(map[string]any)["unique_id"].([]any); h[0] != "UNIQUE_ID" {
		t.Errorf("V3 hidden %v", h)
	}
	// file-backed combos are computed per request
	calls := 0
	d := &Def{Name: "Files", Required: []Input{{Name: "f", Type: TypeCombo, OptionsFunc: func(*Env) []string { calls++; return []string{"a.safetensors"} }}}, Execute: exec0}
	ObjectInfo(d, nil)
	ObjectInfo(d, nil)
	if calls != 2 {
		t.Fatalf("OptionsFunc called %d times", calls)
	}
}

func TestObjectInfoAllAndSchema(t *testing.T) {
	Register(&Def{Name: "ZZTestSchema", OutputNode: true,
		Required: []Input{{Name: "images", Type: TypeImage}, {Name: "seed", Type: TypeInt, ControlAfterGenerate: true},
			{Name: "forced", Type: TypeInt, ForceInput: true}},
		Optional: []Input{{Name: "prefix", Type: TypeString}},
		Outputs:  []Output{{Type: TypeImage}}, Execute: exec0})
	Register(&Def{Name: "ZZPanics", Required: []Input{{Name: "f", Type: TypeCombo, OptionsFunc: func(*Env) []string { panic("no folder") }}}, Execute: exec0})
	all := ObjectInfoAll(nil)
	if _, ok := all.Get("ZZPanics"); ok {
		t.Fatal("a node whose info panics is skipped")
	}
	if _, ok := all.Get("ZZTestSchema"); !ok {
		t.Fatal("ObjectInfoAll lacks the node")
	}
	if all.Keys[len(all.Keys)-1] != "ZZTestSchema" && all.Keys[len(all.Keys)-2] != "ZZTestSchema" {
		t.Fatal("object_info keeps registration order")
	}
	var s graph.Schema = Schema(nil)
	ns, ok := s.NodeSchema("ZZTestSchema")
	if !ok || !ns.OutputNode || len(ns.Inputs) != 4 || len(ns.Outputs) != 1 {
		t.Fatalf("%+v", ns)
	}
	want := []graph.SchemaInput{
		{Name: "images", Type: "IMAGE"},
		{Name: "seed", Type: "INT", Widget: true, ControlAfterGenerate: true},
		{Name: "forced", Type: "INT", ForceInput: true},
		{Name: "prefix", Type: "STRING", Widget: true, Optional: true},
	}
	for i, w := range want {
		g := ns.Inputs[i]
		if g.Name != w.Name || g.Type != w.Type || g.Widget != w.Widget || g.ControlAfterGenerate != w.ControlAfterGenerate ||
			g.Optional != w.Optional || g.ForceInput != w.ForceInput {
			t.Errorf("input %d: %+v, want %+v", i, g, w)
		}
	}
	if _, ok := s.NodeSchema("Nope"); ok {
		t.Fatal("unknown node found")
	}
}

func TestGraphBuilder(t *testing.T) {
	ctx := &Context{NodeID: "7"}
	b := ctx.NewGraphBuilder()
	n1 := b.Node("StubImage", "", "content", "BLACK", "x", nil)
	n2 := b.Node("Mix", "", "image1", n1.Out(0))
	if n1.ID != "7.0.0.1" || n2.ID != "7.0.0.2" {
		t.Fatalf("ids %s %s", n1.ID, n2.ID)
	}
	if b2 := ctx.NewGraphBuilder(); b2.Prefix != "7.0.1." {
		t.Fatalf("second builder prefix %s", b2.Prefix)
	}
	ctx2 := &Context{NodeID: "7", CallIndex: 2}
	if p := ctx2.NewGraphBuilder().Prefix; p != "7.2.0." {
		t.Fatalf("call 2 prefix %s", p)
	}
	if again := b.Node("Other", "1"); again != n1 {
		t.Fatal("an existing id returns the existing node")
	}
	if _, ok := n1.Inputs.Get("x"); !ok {
		t.Fatal("nil inputs are kept by Node")
	}
	n1.SetInput("x", nil)
	if _, ok := n1.Inputs.Get("x"); ok {
		t.Fatal("SetInput(nil) deletes")
	}
	n2.SetOverrideDisplayID("3")
	b.ReplaceNodeOutput(n1.ID, 0, int64(5))
	p := b.Finalize()
	if len(p.IDs) != 2 || p.Nodes["7.0.0.2"].Inputs.Values["image1"] != int64(5) || p.Nodes["7.0.0.2"].OverrideDisplayID != "3" {
		t.Fatalf("finalized %+v", p.Nodes["7.0.0.2"])
	}
	b.Remove(n1.ID)
	if b.Lookup(n1.ID) != nil || len(b.Finalize().IDs) != 1 {
		t.Fatal("remove")
	}
	if NewGraphBuilder("test_x").Node("A", "").ID != "test_x1" {
		t.Fatal("explicit prefix")
	}
}
