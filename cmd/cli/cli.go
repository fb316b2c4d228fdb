// Package cli is comfygo's command line: `serve`, `run`, `convert`, `nodes`, `gen-tiny`,
// `gen-full`, `bench`. It is a package (not only a main) so that a binary with extra node packs is
// three lines, the way Caddy is extended:
//
//	package main
//
//	import (
//		"github.com/comfygo/comfygo/cmd/cli"
//		_ "example.com/my/nodepack" // registers its nodes from init
//	)
//
//	func main() { cli.Main() }
//
// Each subcommand lives in its own file and adds itself to commands from init.
package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
)

// command is one subcommand: it parses its own flags from args and returns the exit code.
type command struct {
	summary string
	run     func(args []string) int
}

var commands = map[string]command{}

// Main runs the command named by os.Args[1] and exits with its code.
func Main() { os.Exit(Run(os.Args[1:])) }

// Run runs the command args[0] with the rest of args and returns its exit code.
func Run(args []string) int {
	if len(args) < 1 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(os.Stderr)
		if len(args) < 1 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "comfygo: unknown command %q\n\n", args[0])
		usage(os.Stderr)
		return 2
	}
	return c.run(args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: comfygo <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
}
