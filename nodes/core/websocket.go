package core

import (
	"math"

	"github.com/comfygo/comfygo/internal/imageops"
	"github.com/comfygo/comfygo/nodes"
)

// SaveImageWebsocket is ComfyUI's default custom node (custom_nodes/websocket_image_save.py): it
// saves nothing and instead sends every batch image full size as PNG over the websocket, in the
// preview frame format (type 1 with format 2 for clients without preview metadata), to the
// prompt's client. It always re-executes.
func init() {
	nodes.Register(&nodes.Def{
		Name: "SaveImageWebsocket", Category: "api/image",
		Module:      "custom_nodes.websocket_image_save",
		Description: "Sends the images full size as PNG websocket binary frames to the client that queued the prompt; nothing is saved.",
		Required:    []nodes.Input{{Name: "images", Type: nodes.TypeImage}},
		OutputNode:  true,
		Execute:     saveImageWebsocket,
		IsChanged: func(*nodes.Context, nodes.Inputs) (any, error) {
			return math.NaN(), nil // IS_CHANGED returns time.time(): never cached
		},
	})
}

func saveImageWebsocket(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	images, err := imageInput(in, "images")
	if err != nil {
		return nodes.Result{}, err
	}
	n := images.Shape[0]
	for b := 0; b < n; b++ {
		img, err := imageops.ToImage(images, b)
		if err != nil {
			return nodes.Result{}, err
		}
		// ComfyUI: ProgressBar(n).update_absolute(step, n, ("PNG", img, None)).
		if err := ctx.SendImage(float64(b), float64(n), img); err != nil {
			return nodes.Result{}, err
		}
	}
	return nodes.Result{}, nil
}
