// Package core holds comfygo's built-in nodes that need no model: primitives, latent and image
// operations, LoadImage, SaveImage and PreviewImage, with ComfyUI's names, inputs and defaults.
package core

import (
	"math"

	"github.com/comfygo/comfygo/nodes"
)

// maxResolution is ComfyUI's MAX_RESOLUTION.
const maxResolution = 16384

// pyMaxSize is Python's sys.maxsize, the range of the primitive nodes.
const pyMaxSize = math.MaxInt64

func init() {
	nodes.Register(
		&nodes.Def{
			Name: "PrimitiveString", DisplayName: "String", Category: "utils/primitive", Module: "comfy_extras.nodes_primitive",
			Required: []nodes.Input{{Name: "value", Type: nodes.TypeString}},
			Outputs:  []nodes.Output{{Type: nodes.TypeString}},
			Execute:  passValue,
		},
		&nodes.Def{
			Name: "PrimitiveStringMultiline", DisplayName: "String (Multiline)", Category: "utils/primitive", Module: "comfy_extras.nodes_primitive",
			Required: []nodes.Input{{Name: "value", Type: nodes.TypeString, Multiline: true}},
			Outputs:  []nodes.Output{{Type: nodes.TypeString}},
			Execute:  passValue,
		},
		&nodes.Def{
			Name: "PrimitiveInt", DisplayName: "Int", Category: "utils/primitive", Module: "comfy_extras.nodes_primitive",
			Required: []nodes.Input{{Name: "value", Type: nodes.TypeInt, Min: int64(-pyMaxSize), Max: int64(pyMaxSize), ControlAfterGenerate: true}},
			Outputs:  []nodes.Output{{Type: nodes.TypeInt}},
			Execute:  passValue,
		},
		&nodes.Def{
			Name: "PrimitiveFloat", DisplayName: "Float", Category: "utils/primitive", Module: "comfy_extras.nodes_primitive",
			Required: []nodes.Input{{Name: "value", Type: nodes.TypeFloat, Min: float64(-pyMaxSize), Max: float64(pyMaxSize), Step: 0.1}},
			Outputs:  []nodes.Output{{Type: nodes.TypeFloat}},
			Execute:  passValue,
		},
		&nodes.Def{
			Name: "PrimitiveBoolean", DisplayName: "Boolean", Category: "utils/primitive", Module: "comfy_extras.nodes_primitive",
			Required: []nodes.Input{{Name: "value", Type: nodes.TypeBoolean}},
			Outputs:  []nodes.Output{{Type: nodes.TypeBoolean}},
			Execute:  passValue,
		},
	)
}

func passValue(_ *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	return nodes.Out(in["value"])
}
