package core

import (
	"fmt"
	"math"

	"github.com/comfygo/comfygo/internal/imageops"
	"github.com/comfygo/comfygo/nodes"
)

// Nodes whose results travel as websocket binary frames:
//
// SaveImageWebsocket is ComfyUI's default custom node (custom_nodes/websocket_image_save.py): it
// saves nothing and instead sends every batch image full size as PNG over the websocket, in the
// preview frame format (type 1 with format 2 for clients without preview metadata), to the
// prompt's client. It always re-executes.
//
// GetImageSize (comfy_extras/nodes_images.py) returns an image's width, height and batch size
// and shows them on the node as progress text (binary frame type 3).
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
	}, &nodes.Def{
		Name: "GetImageSize", DisplayName: "Get Image Size", Category: "image",
		Module:      "comfy_extras.nodes_images",
		Description: "Returns width and height of the image, and passes it through unchanged.",
		Required:    []nodes.Input{{Name: "image", Type: nodes.TypeImage}},
		Hidden:      []nodes.Hidden{{Name: "unique_id", Marker: "UNIQUE_ID"}},
		Outputs: []nodes.Output{{Type: nodes.TypeInt, Name: "width"}, {Type: nodes.TypeInt, Name: "height"},
			{Type: nodes.TypeInt, Name: "batch_size"}},
		Execute: getImageSize,
	})
}

func getImageSize(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	images, err := imageInput(in, "image")
	if err != nil {
		return nodes.Result{}, err
	}
	b, h, w := images.Shape[0], images.Shape[1], images.Shape[2]
	ctx.ProgressText(fmt.Sprintf("width: %d, height: %d\n batch size: %d", w, h, b))
	return nodes.Out(int64(w), int64(h), int64(b))
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
