package nodes

import "github.com/comfygo/comfygo/graph"

// registrySchema adapts the node registry to graph.Schema for the UI→API workflow converter.
type registrySchema struct{}

// Schema returns the registry as a graph.Schema (what graph.ConvertWorkflow needs to know of
// each node type; env may be nil). It reads the registry at call time, so node types registered later are seen.
func Schema(env *Env) graph.Schema { return registrySchema{} }

// NodeSchema implements graph.Schema.
func (registrySchema) NodeSchema(classType string) (*graph.NodeSchema, bool) {
	d, ok := Lookup(classType)
	if !ok {
		return nil, false
	}
	return DefSchema(d), true
}

// DefSchema is the converter's view of one node type.
func DefSchema(d *Def) *graph.NodeSchema {
	s := &graph.NodeSchema{OutputNode: d.OutputNode}
	add := func(ins []Input, optional bool) {
		for i := range ins {
			in := &ins[i]
			s.Inputs = append(s.Inputs, graph.SchemaInput{
				Name:                 in.Name,
				Type:                 in.Type,
				Widget:               in.IsWidget(),
				ControlAfterGenerate: in.ControlAfterGenerate && in.IsWidget(),
				Optional:             optional,
			})
		}
	}
	add(d.Required, false)
	add(d.Optional, true)
	for _, o := range d.Outputs {
		s.Outputs = append(s.Outputs, o.Type)
	}
	return s
}
