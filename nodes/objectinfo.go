package nodes

import (
	"bytes"
	"encoding/json"
	"sort"
)

// OrderedMap is a JSON object that keeps its key order (ComfyUI's dicts are ordered and
// /object_info clients iterate them).
type OrderedMap struct {
	Keys   []string
	Values map[string]any
}

// NewOrderedMap returns an empty OrderedMap.
func NewOrderedMap() *OrderedMap { return &OrderedMap{Values: map[string]any{}} }

// Set sets key k, appending it to the order when new.
func (m *OrderedMap) Set(k string, v any) {
	if m.Values == nil {
		m.Values = map[string]any{}
	}
	if _, ok := m.Values[k]; !ok {
		m.Keys = append(m.Keys, k)
	}
	m.Values[k] = v
}

// Get returns the value of key k.
func (m *OrderedMap) Get(k string) (any, bool) {
	v, ok := m.Values[k]
	return v, ok
}

// Len is the number of keys.
func (m *OrderedMap) Len() int { return len(m.Keys) }

// MarshalJSON writes the object with its keys in order.
func (m *OrderedMap) MarshalJSON() ([]byte, error) {
	if m == nil {
		return []byte("null"), nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range m.Keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(m.Values[k])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// widgetTypes are the input types the frontend renders as widgets.
var widgetTypes = map[string]bool{TypeInt: true, TypeFloat: true, TypeString: true, TypeBoolean: true, TypeCombo: true}

// IsWidget reports whether the input is a widget (has a widgets_values slot) rather than a socket.
func (in *Input) IsWidget() bool { return widgetTypes[in.Type] && !in.ForceInput }

// ComboOptions returns the allowed values of a COMBO input (OptionsFunc wins over Options).
func (in *Input) ComboOptions(env *Env) []string {
	if in.OptionsFunc != nil {
		if opts := in.OptionsFunc(env); opts != nil {
			return opts
		}
		return []string{}
	}
	if in.Options == nil {
		return []string{}
	}
	return in.Options
}

// InputOptions renders the options dict of an input spec as ComfyUI shows it ({"default": ...,
// "min": ..., ...}); nil when the input has no options. v3 selects the V3 combo form.
func InputOptions(in *Input, env *Env, v3 bool) *OrderedMap {
	m := NewOrderedMap()
	if in.Type == TypeCombo && v3 {
		m.Set("options", in.ComboOptions(env))
		m.Set("multiselect", false)
	}
	if in.Default != nil {
		m.Set("default", in.Default)
	}
	if in.Min != nil {
		m.Set("min", in.Min)
	}
	if in.Max != nil {
		m.Set("max", in.Max)
	}
	if in.Step != nil {
		m.Set("step", in.Step)
	}
	if in.Round != nil {
		m.Set("round", in.Round)
	}
	if in.Multiline {
		m.Set("multiline", true)
	}
	if in.ControlAfterGenerate {
		m.Set("control_after_generate", true)
	}
	if in.ImageUpload {
		m.Set("image_upload", true)
	}
	if in.Lazy {
		m.Set("lazy", true)
	}
	if in.RawLink {
		m.Set("rawLink", true)
	}
	if in.ForceInput {
		m.Set("forceInput", true)
	}
	if in.Tooltip != "" {
		m.Set("tooltip", in.Tooltip)
	}
	if len(in.Extra) > 0 {
		keys := make([]string, 0, len(in.Extra))
		for k := range in.Extra {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			m.Set(k, in.Extra[k])
		}
	}
	if m.Len() == 0 {
		return nil
	}
	return m
}

// InputConfig renders one input spec the way /object_info shows it: [TYPE, {options}], or
// [TYPE] without options; a legacy combo has its option list in place of TYPE. v3 selects the
// V3 combo form ["COMBO", {"options": [...]}]. Validation errors report it as input_config.
func InputConfig(in *Input, env *Env, v3 bool) []any {
	var typ any = in.Type
	if in.Type == TypeCombo && !v3 {
		typ = in.ComboOptions(env)
	}
	opts := InputOptions(in, env, v3)
	if opts == nil {
		return []any{typ}
	}
	return []any{typ, opts}
}

// ObjectInfo renders node type d as ComfyUI's /object_info entry, keys in ComfyUI's order.
// Combo lists that come from files are computed now (per request).
func ObjectInfo(d *Def, env *Env) *OrderedMap {
	input := NewOrderedMap()
	order := NewOrderedMap()
	section := func(name string, ins []Input) {
		sec := NewOrderedMap()
		names := make([]string, 0, len(ins))
		for i := range ins {
			sec.Set(ins[i].Name, InputConfig(&ins[i], env, d.V3))
			names = append(names, ins[i].Name)
		}
		input.Set(name, sec)
		order.Set(name, names)
	}
	if len(d.Required) > 0 || d.V3 {
		section("required", d.Required)
	}
	if len(d.Optional) > 0 {
		section("optional", d.Optional)
	}
	if len(d.Hidden) > 0 {
		sec := NewOrderedMap()
		names := make([]string, 0, len(d.Hidden))
		for _, h := range d.Hidden {
			if d.V3 {
				sec.Set(h.Name, []any{h.Marker})
			} else {
				sec.Set(h.Name, h.Marker)
			}
			names = append(names, h.Name)
		}
		input.Set("hidden", sec)
		order.Set("hidden", names)
	}

	out := NewOrderedMap()
	out.Set("input", input)
	out.Set("input_order", order)
	if d.V3 || d.InputIsList {
		out.Set("is_input_list", d.InputIsList)
	}
	types := make([]string, len(d.Outputs))
	isList := make([]bool, len(d.Outputs))
	names := make([]string, len(d.Outputs))
	tips := make([]any, len(d.Outputs))
	anyTip := false
	for i, o := range d.Outputs {
		types[i] = o.Type
		isList[i] = o.IsList
		names[i] = o.Name
		if names[i] == "" {
			names[i] = o.Type
		}
		if o.Tooltip != "" {
			anyTip = true
			tips[i] = o.Tooltip
		} else if d.V3 {
			tips[i] = nil
		} else {
			tips[i] = ""
		}
	}
	out.Set("output", types)
	out.Set("output_is_list", isList)
	out.Set("output_name", names)
	out.Set("name", d.Name)
	display := d.DisplayName
	if display == "" {
		display = d.Name
	}
	out.Set("display_name", display)
	out.Set("description", d.Description)
	module := d.Module
	if module == "" {
		module = "nodes"
	}
	out.Set("python_module", module)
	cat := d.Category
	if cat == "" {
		cat = "sd"
	}
	out.Set("category", cat)
	out.Set("output_node", d.OutputNode)
	if anyTip || d.V3 {
		out.Set("output_tooltips", tips)
	}
	if d.V3 {
		out.Set("output_matchtypes", nil)
	}
	if d.Deprecated || d.V3 {
		out.Set("deprecated", d.Deprecated)
	}
	if d.Experimental || d.V3 {
		out.Set("experimental", d.Experimental)
	}
	if d.APINode || d.V3 {
		out.Set("api_node", d.APINode)
	}
	return out
}

// ObjectInfoAll renders every registered node type, in registration order, as the body of
// GET /object_info.
func ObjectInfoAll(env *Env) *OrderedMap {
	all := NewOrderedMap()
	for _, d := range Ordered() {
		if info := safeObjectInfo(d, env); info != nil {
			all.Set(d.Name, info)
		}
	}
	return all
}

// safeObjectInfo is ObjectInfo, or nil (logged) when the node's definition panics (e.g. an
// OptionsFunc): like ComfyUI, a node whose info fails is skipped.
func safeObjectInfo(d *Def, env *Env) (info *OrderedMap) {
	defer func() {
		if r := recover(); r != nil {
			env.Logger().Error("object_info failed", "node", d.Name, "panic", r)
			info = nil
		}
	}()
	return ObjectInfo(d, env)
}
