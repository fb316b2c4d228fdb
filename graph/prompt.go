// Package graph holds the workflow formats comfygo accepts (API prompts, UI workflows,
// images carrying either) and the prompt DAG the executor runs.
package graph

// Prompt is an API-format prompt: node id -> node, with document order kept because
// ComfyUI's behaviour depends on it (execution_cached order, input-dict order).
type Prompt struct {
	IDs   []string         // node ids in document order
	Nodes map[string]*Node // node id -> node
}

// Node is one entry of an API prompt.
type Node struct {
	ClassType string
	Inputs    Inputs
	// Meta is the optional "_meta" object (e.g. {"title": ...}); ignored by execution.
	Meta map[string]any
	// IsChanged is the optional "is_changed" value; HasIsChanged tells it was present.
	IsChanged    any
	HasIsChanged bool
	// OverrideDisplayID is set on nodes created by expansion ("override_display_id").
	OverrideDisplayID string
}

// Inputs is an input dict with its key order kept.
type Inputs struct {
	Keys   []string
	Values map[string]any
}

// Link is an input wired to output Slot of node NodeID (`["4", 0]` in JSON).
type Link struct {
	NodeID string
	Slot   int
}

// Input values in Inputs.Values are one of:
//   Link                 a wire (JSON `[id, slot]`)
//   json.Number          a number, literal form kept (int vs float matters, see execution.md)
//   string, bool, nil    scalars
//   []any, map[string]any other JSON (a `{"__value__": [...]}` wrapper is kept as a map)

// Get returns the value of input name and whether it is present.
func (in *Inputs) Get(name string) (any, bool) {
	if in.Values == nil {
		return nil, false
	}
	v, ok := in.Values[name]
	return v, ok
}

// Set sets input name, appending it to the key order when new.
func (in *Inputs) Set(name string, v any) {
	if in.Values == nil {
		in.Values = map[string]any{}
	}
	if _, ok := in.Values[name]; !ok {
		in.Keys = append(in.Keys, name)
	}
	in.Values[name] = v
}

// Delete removes input name.
func (in *Inputs) Delete(name string) {
	if _, ok := in.Values[name]; !ok {
		return
	}
	delete(in.Values, name)
	for i, k := range in.Keys {
		if k == name {
			in.Keys = append(in.Keys[:i:i], in.Keys[i+1:]...)
			break
		}
	}
}

// NewPrompt returns an empty prompt.
func NewPrompt() *Prompt { return &Prompt{Nodes: map[string]*Node{}} }

// Add appends node n under id (replacing an existing node of that id in place).
func (p *Prompt) Add(id string, n *Node) {
	if p.Nodes == nil {
		p.Nodes = map[string]*Node{}
	}
	if _, ok := p.Nodes[id]; !ok {
		p.IDs = append(p.IDs, id)
	}
	p.Nodes[id] = n
}
