// Package testpack is a Go port of ComfyUI's execution-test node pack
// (tests/execution/testing_nodes/testing-pack): stub sources, lazy and list nodes, custom
// validation and IS_CHANGED cases, flow control by node expansion (while/for loops), execution
// blockers and async sleeps. It is registered only on request (--enable-test-nodes).
package testpack

import (
	"math"
	"math/rand/v2"
	"sync"

	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

// Module is the python_module the pack's nodes report in /object_info.
const Module = "custom_nodes.testing-pack"

var once sync.Once

// Register adds the pack's nodes to the registry (idempotent).
func Register() { once.Do(func() { nodes.Register(Defs()...) }) }

// Defs returns the pack's node types (fresh values, not registered).
func Defs() []*nodes.Def {
	var all []*nodes.Def
	all = append(all, stubDefs()...)
	all = append(all, conditionDefs()...)
	all = append(all, flowDefs()...)
	all = append(all, utilDefs()...)
	all = append(all, specificDefs()...)
	all = append(all, asyncDefs()...)
	for _, d := range all {
		d.Module = Module
	}
	return all
}

// ---- helpers ----

func intIn(name string, def, min, max any) nodes.Input {
	return nodes.Input{Name: name, Type: nodes.TypeInt, Default: def, Min: min, Max: max}
}

func floatIn(name string, def, min, max any) nodes.Input {
	return nodes.Input{Name: name, Type: nodes.TypeFloat, Default: def, Min: min, Max: max}
}

func sock(name, typ string) nodes.Input { return nodes.Input{Name: name, Type: typ} }

func outs(types ...string) []nodes.Output {
	o := make([]nodes.Output, len(types))
	for i, t := range types {
		o[i] = nodes.Output{Type: t}
	}
	return o
}

func named(o []nodes.Output, names ...string) []nodes.Output {
	for i := range names {
		o[i].Name = names[i]
	}
	return o
}

// full returns a tensor of shape filled with v.
func full(v float32, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	if v != 0 {
		for i := range t.Data {
			t.Data[i] = v
		}
	}
	return t
}

func sizeInputs() []nodes.Input {
	return []nodes.Input{
		intIn("height", 512, 1, 1024*1024*1024),
		intIn("width", 512, 1, 4096*4096*4096),
		intIn("batch_size", 1, 1, 1024*1024*1024),
	}
}

// ---- stubs.py ----

func stubDefs() []*nodes.Def {
	const cat = "Testing/Stub Nodes"
	return []*nodes.Def{
		{
			Name: "StubImage", DisplayName: "Stub Image", Category: cat,
			Required: append([]nodes.Input{{Name: "content", Type: nodes.TypeCombo, Options: []string{"WHITE", "BLACK", "NOISE"}}}, sizeInputs()...),
			Outputs:  outs(nodes.TypeImage),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				b, h, w := int(in.Int("batch_size")), int(in.Int("height")), int(in.Int("width"))
				switch in.String("content") {
				case "WHITE":
					return nodes.Out(full(1, b, h, w, 3))
				case "BLACK":
					return nodes.Out(full(0, b, h, w, 3))
				default:
					t := tensor.New(b, h, w, 3)
					for i := range t.Data {
						t.Data[i] = rand.Float32()
					}
					return nodes.Out(t)
				}
			},
		},
		{
			Name: "StubConstantImage", DisplayName: "Stub Constant Image", Category: cat,
			Required: append([]nodes.Input{{Name: "value", Type: nodes.TypeFloat, Default: 0.5, Min: 0.0, Max: 1.0, Step: 0.01}}, sizeInputs()...),
			Outputs:  outs(nodes.TypeImage),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Out(full(float32(in.Float("value")), int(in.Int("batch_size")), int(in.Int("height")), int(in.Int("width")), 3))
			},
		},
		{
			Name: "StubMask", DisplayName: "Stub Mask", Category: cat,
			Required: append([]nodes.Input{{Name: "value", Type: nodes.TypeFloat, Default: 0.5, Min: 0.0, Max: 1.0, Step: 0.01}}, sizeInputs()...),
			Outputs:  outs(nodes.TypeMask),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Out(full(float32(in.Float("value")), int(in.Int("batch_size")), int(in.Int("height")), int(in.Int("width"))))
			},
		},
		{
			Name: "StubInt", DisplayName: "Stub Int", Category: cat,
			Required: []nodes.Input{intIn("value", 0, int64(-0xffffffff), int64(0xffffffff))},
			Outputs:  outs(nodes.TypeInt),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Out(in["value"])
			},
		},
		{
			Name: "StubFloat", DisplayName: "Stub Float", Category: cat,
			Required: []nodes.Input{floatIn("value", 0.0, -1e38, 1e38)},
			Outputs:  outs(nodes.TypeFloat),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Out(in["value"])
			},
		},
	}
}

// ---- tensor helpers ----

func allEqual(t *tensor.Tensor, v float32) bool {
	for _, x := range t.Data {
		if x != v {
			return false
		}
	}
	return true
}

func scale(t *tensor.Tensor, s float64) *tensor.Tensor {
	o := t.Clone()
	for i := range o.Data {
		o.Data[i] = float32(float64(o.Data[i]) * s)
	}
	return o
}

func tensorMean(t *tensor.Tensor) float64 {
	if len(t.Data) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range t.Data {
		s += float64(x)
	}
	return float64(float32(s / float64(len(t.Data))))
}
