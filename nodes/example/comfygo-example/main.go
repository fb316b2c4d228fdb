// Command comfygo-example is comfygo with the example node pack: the whole of what a custom-node
// author writes to ship a binary with their nodes (see README.md, "Writing custom nodes").
package main

import (
	"github.com/comfygo/comfygo/cmd/cli"
	_ "github.com/comfygo/comfygo/nodes/example" // your pack: registers its nodes from init
)

func main() { cli.Main() } // comfygo's commands: serve, run, convert, nodes, ...
