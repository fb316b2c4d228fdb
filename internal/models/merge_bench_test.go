package models_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/comfygo/comfygo/internal/lora"
	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/ort"
)

// BenchmarkFullLoRAMerge merges the full-size random LCM-LoRA (278 modules, rank 64) into the
// full-size random SD1.5 checkpoint from bench-data/ (`comfygo gen-full --only sd15`), with the
// previous ORT path ("ort") and the current kernels ("kernel"), reporting wall and CPU seconds.
// Run: go test ./internal/models -run XXX -bench FullLoRAMerge -benchtime 1x -timeout 20m
func BenchmarkFullLoRAMerge(b *testing.B) {
	dir := os.Getenv("COMFYGO_BENCH_DATA")
	if dir == "" {
		root, err := models.RepoRoot()
		if err != nil {
			b.Skip("repository root not found")
		}
		dir = filepath.Join(root, "bench-data")
	}
	ckpt, loraPath := filepath.Join(dir, models.FullSD15File), filepath.Join(dir, models.FullLoRASD15File)
	for _, p := range []string{ckpt, loraPath} {
		if _, err := os.Stat(p); err != nil {
			b.Skipf("%s missing: run `comfygo gen-full --only sd15`", p)
		}
	}
	rt, err := ort.Open(ort.Config{Provider: "cpu", Threads: runtime.GOMAXPROCS(0)})
	if err != nil {
		b.Skipf("ONNX Runtime unavailable: %v", err)
	}
	m := models.NewManager(models.ORTFactory{RT: rt}, models.ManagerOptions{})
	defer m.Close()
	ck, err := m.LoadCheckpoint(ckpt, models.DetectOptions{})
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	f, err := lora.Open(loraPath)
	if err != nil {
		b.Fatal(err)
	}
	l, err := f.Apply(lora.ModelKeyMap(ck.Model), nil, 1, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("LoRA parse+match: %d patched weights in %v", l.UNetModules, time.Since(t0))
	patched := ck.Model.WithPatches(l.UNet)
	for _, c := range []struct {
		name   string
		viaORT bool
	}{{"ort", true}, {"kernel", false}} {
		b.Run(c.name, func(b *testing.B) {
			var wall, cpu float64
			for range b.N {
				out := b.TempDir()
				c0, t0 := cpuSeconds(), time.Now()
				if err := models.MergeForBench(context.Background(), patched, out, c.viaORT); err != nil {
					b.Fatal(err)
				}
				wall += time.Since(t0).Seconds()
				cpu += cpuSeconds() - c0
				os.RemoveAll(out)
			}
			b.ReportMetric(wall/float64(b.N), "merge-s")
			b.ReportMetric(cpu/float64(b.N), "merge-cpu-s")
		})
	}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
