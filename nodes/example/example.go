// Package example is a complete custom node pack, the one README.md walks through. A pack is an
// ordinary Go package that registers its node types from init; a binary that imports it (see
// comfygo-example/main.go) serves them next to the built-in nodes, in /object_info and the web page.
package example

import (
	"fmt"

	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

func init() {
	nodes.Register(&nodes.Def{
		Name:        "ExampleBrightness",
		DisplayName: "Brightness (example)",
		Category:    "image/adjust",
		Description: "Multiplies every pixel by factor and clamps to 0..1.",
		Module:      "custom_nodes.example",
		Required: []nodes.Input{
			{Name: "image", Type: nodes.TypeImage},
			{Name: "factor", Type: nodes.TypeFloat, Default: 1.2, Min: 0.0, Max: 10.0, Step: 0.05,
				Tooltip: "1 keeps the image; above 1 brightens."},
		},
		Outputs: []nodes.Output{{Type: nodes.TypeImage, Name: "IMAGE"}},
		Execute: brightness,
	})
}

func brightness(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	img := in.Tensor("image")
	if img == nil {
		return nodes.Result{}, fmt.Errorf("brightness: image input is not an IMAGE")
	}
	f := float32(in.Float("factor"))
	out := tensor.New(img.Shape...)
	for i, v := range img.Data {
		if i%65536 == 0 { // report progress and honour interrupts on big batches
			if err := ctx.Progress(float64(i), float64(len(img.Data)), nil); err != nil {
				return nodes.Result{}, err
			}
		}
		out.Data[i] = min(max(v*f, 0), 1)
	}
	return nodes.Out(out)
}
