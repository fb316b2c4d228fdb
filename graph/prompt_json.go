package graph

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParsePrompt parses an API-format prompt. It keeps node order and input-key order, keeps
// numbers as json.Number (literal form preserved), turns `[id, slot]` pairs into Link (the
// runtime rule: item 0 a string, item 1 an int or float with an integral value), and reads
// `_meta`, `is_changed` and `override_display_id`. A POST /prompt body or history entry
// (`{"prompt": {...}, ...}`) is accepted too and unwrapped. Bare NaN/Infinity decode as
// json.Number("NaN") etc., as Python's json.loads accepts them.
func ParsePrompt(data []byte) (*Prompt, error) {
	v, err := parseJSON(data, false)
	if err != nil {
		return nil, fmt.Errorf("parse prompt: %w", err)
	}
	o, ok := v.(*jobj)
	if !ok {
		return nil, fmt.Errorf("parse prompt: top level is %s, want an object", kindOf(v))
	}
	if inner, ok := promptWrapper(o); ok {
		o = inner
	}
	p, err := promptFromObject(o)
	if err != nil {
		return nil, fmt.Errorf("parse prompt: %w", err)
	}
	return p, nil
}

// promptWrapper returns the inner prompt of a `{"prompt": {...}}` wrapper: the "prompt"
// value must be an object that is not itself a node (no class_type).
func promptWrapper(o *jobj) (*jobj, bool) {
	pv, ok := o.get("prompt")
	if !ok {
		return nil, false
	}
	inner, ok := pv.(*jobj)
	if !ok {
		return nil, false
	}
	if _, isNode := inner.get("class_type"); isNode {
		return nil, false
	}
	return inner, true
}

// UnmarshalJSON implements json.Unmarshaler (no wrapper detection; data is the prompt object).
func (p *Prompt) UnmarshalJSON(data []byte) error {
	v, err := parseJSON(data, false)
	if err != nil {
		return fmt.Errorf("parse prompt: %w", err)
	}
	o, ok := v.(*jobj)
	if !ok {
		return fmt.Errorf("parse prompt: top level is %s, want an object", kindOf(v))
	}
	q, err := promptFromObject(o)
	if err != nil {
		return fmt.Errorf("parse prompt: %w", err)
	}
	*p = *q
	return nil
}

// MarshalJSON writes the prompt in API format, nodes and inputs in their kept order, each
// node as {"inputs", "class_type", "_meta"?, "is_changed"?, "override_display_id"?}.
func (p *Prompt) MarshalJSON() ([]byte, error) {
	return jsonStyle{}.appendPrompt(nil, p)
}

// MarshalPython writes the prompt as ComfyUI's json.dumps does (", " / ": " separators,
// ASCII only), the form stored in PNG/WEBP metadata.
func (p *Prompt) MarshalPython() ([]byte, error) {
	return jsonStyle{python: true}.appendPrompt(nil, p)
}

// MarshalJSON writes the inputs as a JSON object in key order.
func (in Inputs) MarshalJSON() ([]byte, error) {
	return jsonStyle{}.appendInputs(nil, &in)
}

// MarshalJSON writes the link as `["id", slot]`.
func (l Link) MarshalJSON() ([]byte, error) {
	return jsonStyle{}.appendValue(nil, l)
}

func promptFromObject(o *jobj) (*Prompt, error) {
	p := &Prompt{IDs: make([]string, 0, len(o.keys)), Nodes: make(map[string]*Node, len(o.keys))}
	for i, id := range o.keys {
		nv, ok := o.vals[i].(*jobj)
		if !ok {
			return nil, fmt.Errorf("node %q: value is %s, want an object", id, kindOf(o.vals[i]))
		}
		n, err := nodeFromObject(nv)
		if err != nil {
			return nil, fmt.Errorf("node %q: %w", id, err)
		}
		p.IDs = append(p.IDs, id)
		p.Nodes[id] = n
	}
	return p, nil
}

func nodeFromObject(o *jobj) (*Node, error) {
	n := &Node{}
	for i, k := range o.keys {
		v := o.vals[i]
		switch k {
		case "class_type":
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("class_type is %s, want a string", kindOf(v))
			}
			n.ClassType = s
		case "inputs":
			switch x := v.(type) {
			case *jobj:
				n.Inputs = inputsFromObject(x)
			case nil:
			default:
				return nil, fmt.Errorf("inputs is %s, want an object", kindOf(v))
			}
		case "_meta":
			if m, ok := v.(*jobj); ok {
				n.Meta = plain(m).(map[string]any)
			}
		case "is_changed":
			n.IsChanged = plain(v)
			n.HasIsChanged = true
		case "override_display_id":
			switch x := v.(type) {
			case string:
				n.OverrideDisplayID = x
			case json.Number:
				n.OverrideDisplayID = string(x)
			}
		}
	}
	return n, nil
}

func inputsFromObject(o *jobj) Inputs {
	in := Inputs{Keys: make([]string, 0, len(o.keys)), Values: make(map[string]any, len(o.keys))}
	for i, k := range o.keys {
		in.Keys = append(in.Keys, k)
		in.Values[k] = inputValue(o.vals[i])
	}
	return in
}

// inputValue converts a parsed input value: a link pair becomes Link, objects become maps.
func inputValue(v any) any {
	if a, ok := v.([]any); ok {
		if l, ok := AsLink(a); ok {
			return l
		}
	}
	return plain(v)
}

// AsLink reports whether v is a link by ComfyUI's runtime rule (a 2-item list whose item 0
// is a string and item 1 an int or float) and returns it. A float slot must be integral.
func AsLink(v any) (Link, bool) {
	switch x := v.(type) {
	case Link:
		return x, true
	case *Link:
		if x != nil {
			return *x, true
		}
	case []any:
		if len(x) != 2 {
			return Link{}, false
		}
		id, ok := x[0].(string)
		if !ok {
			return Link{}, false
		}
		slot, ok := slotNumber(x[1])
		if !ok {
			return Link{}, false
		}
		return Link{NodeID: id, Slot: slot}, true
	}
	return Link{}, false
}

func slotNumber(v any) (int, bool) {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n > math.MaxInt32 || n < math.MinInt32 {
				return 0, false
			}
			return int(n), true
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f != math.Trunc(f) || f > math.MaxInt32 || f < math.MinInt32 {
			return 0, false
		}
		return int(f), true
	case int:
		return x, true
	case int64:
		if x > math.MaxInt32 || x < math.MinInt32 {
			return 0, false
		}
		return int(x), true
	case float64:
		if x != math.Trunc(x) || x > math.MaxInt32 || x < math.MinInt32 {
			return 0, false
		}
		return int(x), true
	}
	return 0, false
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case []any:
		return "an array"
	case *jobj, map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// Clone returns a deep copy of the prompt (inputs, lists and maps copied; Link values are
// plain values), so validation or expansion can mutate it freely.
func (p *Prompt) Clone() *Prompt {
	if p == nil {
		return nil
	}
	q := &Prompt{IDs: append([]string(nil), p.IDs...), Nodes: make(map[string]*Node, len(p.Nodes))}
	for id, n := range p.Nodes {
		q.Nodes[id] = n.Clone()
	}
	return q
}

// Clone returns a deep copy of the node.
func (n *Node) Clone() *Node {
	if n == nil {
		return nil
	}
	m := *n
	m.Inputs = Inputs{Keys: append([]string(nil), n.Inputs.Keys...), Values: make(map[string]any, len(n.Inputs.Values))}
	for k, v := range n.Inputs.Values {
		m.Inputs.Values[k] = cloneValue(v)
	}
	if n.Meta != nil {
		m.Meta = cloneValue(n.Meta).(map[string]any)
	}
	m.IsChanged = cloneValue(n.IsChanged)
	return &m
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = cloneValue(e)
		}
		return out
	}
	return v
}
