package nodes

import (
	"fmt"
	"strconv"

	"github.com/comfygo/comfygo/graph"
)

// GraphBuilder builds the subgraph a node returns for node expansion (Result.Expand), with
// ComfyUI's GraphBuilder semantics: node ids are prefix + (explicit id or a 1-based counter).
type GraphBuilder struct {
	Prefix  string
	nodes   map[string]*BuilderNode
	order   []string
	counter int
}

// BuilderNode is one node of a GraphBuilder.
type BuilderNode struct {
	ID                string
	ClassType         string
	Inputs            graph.Inputs
	OverrideDisplayID string
}

// NewGraphBuilder returns a builder whose node ids start with prefix.
func NewGraphBuilder(prefix string) *GraphBuilder {
	return &GraphBuilder{Prefix: prefix, nodes: map[string]*BuilderNode{}}
}

// NewGraphBuilder returns a builder with ComfyUI's default prefix
// "<node id>.<call index>.<graph index>.", where the graph index counts the builders this call
// created (so the first builder of call 0 of node "7" makes ids "7.0.0.1", "7.0.0.2", ...).
func (c *Context) NewGraphBuilder() *GraphBuilder {
	p := c.NodeID + "." + strconv.Itoa(c.CallIndex) + "." + strconv.Itoa(c.graphIndex) + "."
	c.graphIndex++
	return NewGraphBuilder(p)
}

// ResetGraphIndex is called by the executor before each call of a node (graph index back to 0).
func (c *Context) ResetGraphIndex() { c.graphIndex = 0 }

// Node adds (or returns, if the id already exists) a node of classType. id "" takes the next
// counter value. kv are input name/value pairs; values are kept as given, nil included.
func (b *GraphBuilder) Node(classType, id string, kv ...any) *BuilderNode {
	if id == "" {
		b.counter++
		id = strconv.Itoa(b.counter)
	}
	id = b.Prefix + id
	if n, ok := b.nodes[id]; ok {
		return n
	}
	n := &BuilderNode{ID: id, ClassType: classType}
	if len(kv)%2 != 0 {
		panic(fmt.Sprintf("GraphBuilder.Node(%q): odd number of key/value arguments", classType))
	}
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			panic(fmt.Sprintf("GraphBuilder.Node(%q): input name %v is not a string", classType, kv[i]))
		}
		n.Inputs.Set(k, kv[i+1])
	}
	b.nodes[id] = n
	b.order = append(b.order, id)
	return n
}

// Lookup returns the node with the full id, or nil.
func (b *GraphBuilder) Lookup(id string) *BuilderNode { return b.nodes[id] }

// Remove deletes the node with the full id.
func (b *GraphBuilder) Remove(id string) {
	if _, ok := b.nodes[id]; !ok {
		return
	}
	delete(b.nodes, id)
	for i, x := range b.order {
		if x == id {
			b.order = append(b.order[:i:i], b.order[i+1:]...)
			break
		}
	}
}

// ReplaceNodeOutput rewires every input linked to (id, slot) to newValue; a nil newValue
// deletes those inputs.
func (b *GraphBuilder) ReplaceNodeOutput(id string, slot int, newValue any) {
	for _, nid := range b.order {
		n := b.nodes[nid]
		for _, k := range append([]string(nil), n.Inputs.Keys...) {
			if l, ok := n.Inputs.Values[k].(graph.Link); ok && l.NodeID == id && l.Slot == slot {
				n.SetInput(k, newValue)
			}
		}
	}
}

// Finalize returns the built graph as a prompt (nodes in creation order).
func (b *GraphBuilder) Finalize() *graph.Prompt {
	p := graph.NewPrompt()
	for _, id := range b.order {
		n := b.nodes[id]
		in := graph.Inputs{Keys: append([]string(nil), n.Inputs.Keys...), Values: make(map[string]any, len(n.Inputs.Keys))}
		for _, k := range n.Inputs.Keys {
			in.Values[k] = n.Inputs.Values[k]
		}
		p.Add(id, &graph.Node{ClassType: n.ClassType, Inputs: in, OverrideDisplayID: n.OverrideDisplayID})
	}
	return p
}

// Out is a link to output slot i of the node.
func (n *BuilderNode) Out(i int) graph.Link { return graph.Link{NodeID: n.ID, Slot: i} }

// SetInput sets input k; nil deletes it (ComfyUI's set_input).
func (n *BuilderNode) SetInput(k string, v any) *BuilderNode {
	if v == nil {
		n.Inputs.Delete(k)
		return n
	}
	n.Inputs.Set(k, v)
	return n
}

// GetInput returns input k (nil if absent).
func (n *BuilderNode) GetInput(k string) any {
	v, _ := n.Inputs.Get(k)
	return v
}

// SetOverrideDisplayID sets the id the UI shows for this node.
func (n *BuilderNode) SetOverrideDisplayID(id string) *BuilderNode {
	n.OverrideDisplayID = id
	return n
}
