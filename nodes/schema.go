package nodes

import "github.com/comfygo/comfygo/graph"

// registrySchema adapts the node registry to graph.Schema for the UI→API workflow converter.
type registrySchema struct{ env *Env }

// Schema returns the registry as a graph.Schema (what graph.ConvertWorkflow needs to know of
// each node type; env, which may be nil, resolves file-backed combo options). It reads the
// registry at call time, so node types registered later are seen.
func Schema(env *Env) graph.Schema { return registrySchema{env} }

// NodeSchema implements graph.Schema.
func (s registrySchema) NodeSchema(classType string) (*graph.NodeSchema, bool) {
	d, ok := Lookup(classType)
	if !ok {
		return nil, false
	}
	return DefSchema(d, s.env), true
}

// DefSchema is the converter's view of one node type.
func DefSchema(d *Def, env *Env) *graph.NodeSchema {
	s := &graph.NodeSchema{OutputNode: d.OutputNode, DisplayName: d.DisplayName}
	add := func(ins []Input, optional bool) {
		for i := range ins {
			in := &ins[i]
			si := graph.SchemaInput{
				Name:                 in.Name,
				Type:                 in.Type,
				Widget:               in.IsWidget(),
				ControlAfterGenerate: in.ControlAfterGenerate && in.IsWidget(),
				Optional:             optional,
				ForceInput:           in.ForceInput,
				ImageUpload:          in.ImageUpload || in.Extra["video_upload"] == true || in.Extra["animated_image_upload"] == true,
				Default:              in.Default,
				DynamicPrompts:       in.Extra["dynamicPrompts"] == true,
			}
			if v, ok := in.Extra["control_after_generate"]; ok && v == false && !in.ControlAfterGenerate {
				si.NoControlAfterGenerate = true
			}
			if in.Type == TypeCombo {
				si.Options = in.ComboOptions(env)
			}
			s.Inputs = append(s.Inputs, si)
		}
	}
	add(d.Required, false)
	add(d.Optional, true)
	for _, o := range d.Outputs {
		s.Outputs = append(s.Outputs, o.Type)
	}
	return s
}
