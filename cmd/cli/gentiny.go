package cli

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/comfygo/comfygo/internal/models"
)

func init() {
	commands["gen-tiny"] = command{summary: "write tiny test models (checkpoints, LoRAs, VAE, embeddings)", run: runGenTiny}
	commands["gen-full"] = command{summary: "write full-size random-weight SD1.5/SDXL checkpoints + LoRAs (benchmarks; GBs)", run: runGenFull}
}

func runGenTiny(args []string) int {
	fs := flag.NewFlagSet("gen-tiny", flag.ContinueOnError)
	dir := fs.String("models-dir", "models", "models directory (files go to checkpoints/, loras/, vae/, embeddings/)")
	seed := fs.Uint64("seed", 0, "weight seed")
	full := fs.Bool("full", false, "also write full-size random models (see gen-full) into --full-dir")
	fullDir := fs.String("full-dir", "bench-data", "folder for --full models (git-ignored)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	start := time.Now()
	paths, err := models.GenerateTiny(*dir, models.GenOptions{Seed: *seed})
	for _, p := range paths {
		fmt.Println(p)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen-tiny:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "gen-tiny: %d files in %.2fs\n", len(paths), time.Since(start).Seconds())
	if *full {
		return genFull(*fullDir, *seed, nil)
	}
	return 0
}

func runGenFull(args []string) int {
	fs := flag.NewFlagSet("gen-full", flag.ContinueOnError)
	dir := fs.String("dir", "bench-data", "output folder (git-ignored; never commit these files)")
	seed := fs.Uint64("seed", 0, "weight seed")
	only := fs.String("only", "", "comma-free choice: sd15, sdxl, or empty for all")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var sel []string
	switch *only {
	case "sd15":
		sel = []string{models.FullSD15File, models.FullLoRASD15File}
	case "sdxl":
		sel = []string{models.FullSDXLFile, models.FullLoRASDXLFile}
	case "":
	default:
		fmt.Fprintf(os.Stderr, "gen-full: --only must be sd15 or sdxl, got %q\n", *only)
		return 2
	}
	return genFull(*dir, *seed, sel)
}

func genFull(dir string, seed uint64, only []string) int {
	start := time.Now()
	paths, err := models.GenerateFull(dir, models.GenOptions{Seed: seed, Only: only})
	for _, p := range paths {
		fmt.Println(p)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen-full:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "gen-full: %d files in %.1fs\n", len(paths), time.Since(start).Seconds())
	return 0
}
