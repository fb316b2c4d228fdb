// Package workflows holds comfygo's bundled example workflows, in ComfyUI's UI (litegraph)
// format so they can be dropped onto ComfyUI as well. They reference the tiny models that
// `comfygo gen-tiny` writes (tiny-sd15.safetensors, tiny-sdxl.safetensors and the tiny LCM
// LoRAs); the img2img workflow loads example.png from the input folder.
package workflows

import (
	"embed"
	"io/fs"
	"sort"
)

//go:embed *.json
var files embed.FS

// FS is the bundled workflows as a file system (flat, *.json).
var FS fs.FS = files

// Names lists the bundled workflow file names, sorted.
func Names() []string {
	ents, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

// Read returns the JSON of the bundled workflow name.
func Read(name string) ([]byte, error) { return fs.ReadFile(files, name) }
