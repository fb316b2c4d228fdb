package sampling

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/comfygo/comfygo/internal/lora"
	"github.com/comfygo/comfygo/internal/models"
	isampling "github.com/comfygo/comfygo/internal/sampling"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

// Full-size benchmarks use the random-weight SD1.5 checkpoint and LCM-LoRA that
// `comfygo gen-full --only sd15` writes to bench-data/ (or $COMFYGO_BENCH_DATA).
// Run: go test ./nodes/sampling -run XXX -bench Full -benchtime 1x -timeout 60m
// COMFYGO_BENCH_SIZE sets the image side (default 512).

func benchData(b *testing.B) (ckpt, loraPath string) {
	dir := os.Getenv("COMFYGO_BENCH_DATA")
	if dir == "" {
		root, err := models.RepoRoot()
		if err != nil {
			b.Skip("repository root not found")
		}
		dir = filepath.Join(root, "bench-data")
	}
	ckpt = filepath.Join(dir, models.FullSD15File)
	loraPath = filepath.Join(dir, models.FullLoRASD15File)
	for _, p := range []string{ckpt, loraPath} {
		if _, err := os.Stat(p); err != nil {
			b.Skipf("%s missing: run `comfygo gen-full --only sd15`", p)
		}
	}
	return ckpt, loraPath
}

func benchSize() int {
	if s := os.Getenv("COMFYGO_BENCH_SIZE"); s != "" {
		var n int
		for _, c := range s {
			n = n*10 + int(c-'0')
		}
		return n
	}
	return 512
}

// fullConds returns random SD1.5-shaped conditionings (the text encoder is not under test).
func fullConds() (nodes.Conditioning, nodes.Conditioning) {
	mk := func(seed uint64) nodes.Conditioning {
		c := isampling.NewGenerator(seed).Randn(1, 77, 768)
		return nodes.Conditioning{{Cond: c, Options: map[string]any{}}}
	}
	return mk(1), mk(2)
}

func benchSample(b *testing.B, useLoRA bool, sampler, scheduler string, steps int, cfg float64) {
	ckptPath, loraPath := benchData(b)
	m := testManager(b)
	ck, err := m.LoadCheckpoint(ckptPath, models.DetectOptions{})
	if err != nil {
		b.Fatal(err)
	}
	model := ck.Model
	side := benchSize()
	pos, neg := fullConds()
	lat := &nodes.Latent{Samples: tensor.New(1, 4, side/8, side/8)}
	ctx := &nodes.Context{Context: context.Background()}
	var loraS float64
	if useLoRA {
		t0 := time.Now()
		f, err := lora.Open(loraPath)
		if err != nil {
			b.Fatal(err)
		}
		l, err := f.Apply(lora.ModelKeyMap(model), nil, 1, 0)
		if err != nil {
			b.Fatal(err)
		}
		model = model.WithPatches(l.UNet).WithSampling(models.SamplingConfig{Type: "lcm"})
		loraS = time.Since(t0).Seconds()
		b.Logf("LoRA: %d patched weights, %d keys not loaded, parsed+matched in %v", l.UNetModules, len(l.NotLoaded), time.Since(t0))
	}
	// first evaluation builds the ORT session (and folds the LoRA merge)
	x := tensor.New(1, 4, side/8, side/8)
	c0 := cpuSeconds()
	t0 := time.Now()
	if _, err := model.Apply(context.Background(), models.UNetInput{X: x, Timesteps: []float32{999}, Context: pos[0].Cond}); err != nil {
		b.Fatal(err)
	}
	sessS := time.Since(t0).Seconds()
	sessCPU := cpuSeconds() - c0
	c1 := cpuSeconds()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Sample(ctx, model, pos, neg, lat, cfg, isampling.Request{Sampler: sampler, Scheduler: scheduler,
			Steps: steps, Denoise: 1, Seed: uint64(i), StartStep: -1, LastStep: -1}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	sampleCPU := (cpuSeconds() - c1) / float64(b.N)
	b.ReportMetric(sessS, "session+1eval-s")
	b.ReportMetric(sessCPU, "session+1eval-cpu-s")
	b.ReportMetric(sampleCPU, "sample-cpu-s")
	if useLoRA {
		b.ReportMetric(loraS, "lora-parse-s")
	}
	b.Logf("%dx%d %s/%s %d steps cfg %g: first UNet call (session build) %.2fs wall %.2fs CPU, sampling %.2fs wall %.2fs CPU per run",
		side, side, sampler, scheduler, steps, cfg, sessS, sessCPU, b.Elapsed().Seconds()/float64(b.N), sampleCPU)
}

// cpuSeconds is the process's user+system CPU time (the machine is shared: wall times are noisy).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// BenchmarkFullSD15LCM4 is the reference workflow's sampling: LCM-LoRA, lcm/sgm_uniform, 4
// steps, cfg 1 (one UNet pass per step).
func BenchmarkFullSD15LCM4(b *testing.B) { benchSample(b, true, "lcm", "sgm_uniform", 4, 1) }

// BenchmarkFullSD15Euler20 is plain SD1.5: euler/normal, 20 steps, cfg 8 (batch of 2 per step).
func BenchmarkFullSD15Euler20(b *testing.B) { benchSample(b, false, "euler", "normal", 20, 8) }

// BenchmarkFullSD15NoLoRASession measures the unpatched session build, for the LoRA merge cost.
func BenchmarkFullSD15NoLoRASession(b *testing.B) { benchSample(b, false, "lcm", "sgm_uniform", 1, 1) }

// BenchmarkLoRAMergeGo measures the Go-side delta computation of every LCM-LoRA weight (the
// path text-encoder patches and non-low-rank adapters take).
func BenchmarkLoRAMergeGo(b *testing.B) {
	ckptPath, loraPath := benchData(b)
	m := testManager(b)
	ck, err := m.LoadCheckpoint(ckptPath, models.DetectOptions{})
	if err != nil {
		b.Fatal(err)
	}
	f, err := lora.Open(loraPath)
	if err != nil {
		b.Fatal(err)
	}
	l, err := f.Apply(lora.ModelKeyMap(ck.Model), nil, 1, 0)
	if err != nil {
		b.Fatal(err)
	}
	shapes := map[string][]int{}
	for k := range l.UNet {
		up, down, _ := l.UNet[k][0].Patch.(models.LowRank).Factors()
		shape := append([]int{up.Shape[0]}, down.Shape[1:]...)
		shapes[k] = shape
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, wps := range l.UNet {
			if _, err := wps[0].Patch.Delta(shapes[k]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
