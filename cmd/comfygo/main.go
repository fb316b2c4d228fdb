// Command comfygo is the comfygo binary: `comfygo serve`, `comfygo run`, `comfygo convert`,
// `comfygo nodes`, `comfygo gen-tiny`, `comfygo bench`. Each subcommand lives in its own file
// and adds itself to commands from init.
package main

import (
	"fmt"
	"os"
	"sort"
)

// command is one subcommand: it parses its own flags from args and returns the exit code.
type command struct {
	summary string
	run     func(args []string) int
}

var commands = map[string]command{}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "comfygo: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	os.Exit(c.run(os.Args[2:]))
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: comfygo <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, commands[n].summary)
	}
}
