// Command comfygo is the comfygo binary; its commands live in package cli.
package main

import "github.com/comfygo/comfygo/cmd/cli"

func main() { cli.Main() }
