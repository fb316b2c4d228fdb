package cli

import (
	"context"
	"flag"
	"fmt"
	"image"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/ort"
	"github.com/comfygo/comfygo/internal/sampling"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

func init() {
	commands["bench"] = command{summary: "time checkpoint load, UNet steps, VAE decode; one key=value line", run: runBench}
}

// benchConfig are the bench flags.
type benchConfig struct {
	checkpoint, lora, sampler, scheduler, mode, provider, attention string
	modelSampling, prompt                                           string
	width, height, steps, batch, threads, repeat                    int
	cfg, loraStrength                                               float64
}

func runBench(args []string) int {
	var c benchConfig
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&c.checkpoint, "checkpoint", "", "checkpoint .safetensors file (required)")
	fs.StringVar(&c.lora, "lora", "", "optional LoRA file (LoraLoader, strength --lora-strength on model and clip)")
	fs.Float64Var(&c.loraStrength, "lora-strength", 1, "LoRA strength")
	fs.IntVar(&c.width, "width", 512, "image width (pixels)")
	fs.IntVar(&c.height, "height", 512, "image height (pixels)")
	fs.IntVar(&c.steps, "steps", 4, "sampling steps")
	fs.StringVar(&c.sampler, "sampler", "euler", "sampler name")
	fs.StringVar(&c.scheduler, "scheduler", "normal", "scheduler name")
	fs.Float64Var(&c.cfg, "cfg", 1, "CFG scale (1 = no unconditional pass)")
	fs.IntVar(&c.batch, "batch", 1, "batch size")
	fs.StringVar(&c.mode, "mode", "sample", "sample (sampler + VAE decode), unet (UNet evaluations only) or vae (VAE decode only)")
	fs.StringVar(&c.provider, "provider", "cpu", "ONNX Runtime provider: cpu, cuda, auto")
	fs.StringVar(&c.attention, "attention", "", "attention implementation: matmul or mha (default: per provider)")
	fs.IntVar(&c.threads, "threads", 0, "intra-op threads (0 = physical cores)")
	fs.StringVar(&c.modelSampling, "model-sampling", "", "ModelSamplingDiscrete sampling (default: lcm for the lcm sampler, else none)")
	fs.StringVar(&c.prompt, "prompt", "a photo of a cat", "positive prompt (sample mode)")
	fs.IntVar(&c.repeat, "repeat", 1, "run the sampler + decode this many times (later runs = a re-queued prompt)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if c.checkpoint == "" {
		fmt.Fprintln(os.Stderr, "bench: --checkpoint is required")
		return 2
	}
	line, err := bench(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	fmt.Println(line)
	return 0
}

type kv struct {
	parts []string
}

func (k *kv) add(key string, v any) {
	switch x := v.(type) {
	case float64:
		k.parts = append(k.parts, key+"="+strconv.FormatFloat(x, 'f', 3, 64))
	default:
		k.parts = append(k.parts, fmt.Sprintf("%s=%v", key, v))
	}
}

func bench(c benchConfig) (string, error) {
	if c.mode == "sample" {
		return benchNodes(c)
	}
	ctx := context.Background()
	total := time.Now()
	out := &kv{}
	out.add("bench", "v1")
	out.add("checkpoint", filepath.Base(c.checkpoint))
	out.add("mode", c.mode)
	out.add("width", c.width)
	out.add("height", c.height)
	out.add("batch", c.batch)

	rt, err := ort.Open(ort.Config{Provider: c.provider, Threads: c.threads})
	if err != nil {
		return "", err
	}
	out.add("provider", rt.Provider())
	out.add("threads", rt.Threads())
	mgr := models.NewManager(models.ORTFactory{RT: rt}, models.ManagerOptions{Attention: c.attention, VAEAttention: c.attention})
	defer mgr.Close()

	t0 := time.Now()
	ck, err := mgr.LoadCheckpoint(c.checkpoint, models.DetectOptions{})
	if err != nil {
		return "", err
	}
	out.add("family", ck.Family.Name)
	out.add("load_s", time.Since(t0).Seconds())
	if c.lora != "" {
		return "", fmt.Errorf("--lora is supported in --mode sample")
	}

	f := ck.VAE.Downscale()
	lh, lw := c.height/f, c.width/f
	u := ck.Family.UNet
	rng := rand.New(rand.NewPCG(1, 2))
	randT := func(shape ...int) *tensor.Tensor {
		t := tensor.New(shape...)
		for i := range t.Data {
			t.Data[i] = float32(rng.NormFloat64())
		}
		return t
	}
	if c.mode == "unet" || c.mode == "sample" {
		passes := 1
		if c.cfg != 1 {
			passes = 2
		}
		b := c.batch * passes
		cond := randT(b, 77, u.ContextDim)
		var y *tensor.Tensor
		if u.AdmInChannels > 0 {
			y = randT(b, u.AdmInChannels)
		}
		out.add("text_s", "na")
		ms, err := sampling.NewModelSampling(sampling.Config{Type: ck.Family.Sampling.Type})
		if err != nil {
			return "", err
		}
		var stepTimes []string
		var first time.Duration
		var steady, steadyCPU []float64
		calls := 0
		eval := func(ctx context.Context, x *tensor.Tensor, sigma float64) (*tensor.Tensor, error) {
			st := time.Now()
			c0 := cpuSeconds()
			xb := x
			if passes == 2 {
				xb = tensor.New(append([]int{b}, x.Shape[1:]...)...)
				copy(xb.Data, x.Data)
				copy(xb.Data[len(x.Data):], x.Data)
			}
			sig := make([]float64, b)
			ts := make([]float32, b)
			for i := range sig {
				sig[i] = sigma
				ts[i] = float32(ms.Timestep(sigma))
			}
			xin := ms.ScaleInput(xb, sig)
			eps, err := ck.Model.Apply(ctx, models.UNetInput{X: xin, Timesteps: ts, Context: cond, Y: y})
			if err != nil {
				return nil, err
			}
			den := ms.Denoised(xb, eps, sig)
			if passes == 2 {
				n := len(x.Data)
				res := tensor.New(x.Shape...)
				for i := 0; i < n; i++ {
					uc, cc := den.Data[n+i], den.Data[i]
					res.Data[i] = uc + (cc-uc)*float32(c.cfg)
				}
				den = res
			}
			d := time.Since(st)
			if calls == 0 {
				first = d
			} else {
				steady = append(steady, d.Seconds())
				steadyCPU = append(steadyCPU, cpuSeconds()-c0)
			}
			calls++
			stepTimes = append(stepTimes, strconv.FormatFloat(d.Seconds(), 'f', 3, 64))
			return den, nil
		}
		x := randT(c.batch, u.OutChannels, lh, lw)
		var lat *tensor.Tensor
		if c.mode == "unet" {
			for i := 0; i <= c.steps; i++ {
				if lat, err = eval(ctx, x, 1.0); err != nil {
					return "", err
				}
			}
		} else {
			sigmas, err := sampling.KSamplerSigmas(ms, c.scheduler, c.sampler, c.steps, 1)
			if err != nil {
				return "", err
			}
			for i := range x.Data {
				x.Data[i] *= float32(sigmas[0])
			}
			if lat, err = sampling.Sample(ctx, c.sampler, eval, x, sigmas, sampling.Options{Seed: 42}); err != nil {
				return "", err
			}
			out.add("sampler", c.sampler)
			out.add("scheduler", c.scheduler)
			out.add("cfg", c.cfg)
		}
		out.add("steps", c.steps)
		out.add("unet_first_s", first.Seconds())
		out.add("unet_step_s", mean(steady))
		out.add("unet_step_cpu_s", mean(steadyCPU))
		out.add("unet_steps_s", strings.Join(stepTimes, ","))
		if c.mode == "sample" {
			for i := range lat.Data {
				lat.Data[i] /= float32(ck.Family.LatentScale)
			}
			t1 := time.Now()
			if _, err := ck.VAE.Decode(ctx, lat); err != nil {
				return "", err
			}
			out.add("vae_decode_s", time.Since(t1).Seconds())
		}
	}
	if c.mode == "vae" {
		z := randT(c.batch, ck.VAE.LatentChannels(), lh, lw)
		t1 := time.Now()
		if _, err := ck.VAE.Decode(ctx, z); err != nil {
			return "", err
		}
		out.add("vae_decode_first_s", time.Since(t1).Seconds())
		t2 := time.Now()
		c0 := cpuSeconds()
		if _, err := ck.VAE.Decode(ctx, z); err != nil {
			return "", err
		}
		out.add("vae_decode_s", time.Since(t2).Seconds())
		out.add("vae_decode_cpu_s", cpuSeconds()-c0)
	} else if c.mode != "unet" && c.mode != "sample" {
		return "", fmt.Errorf("unknown --mode %q", c.mode)
	}
	out.add("attention", attentionName(c.attention, c.mode, rt.Provider()))
	out.add("total_s", time.Since(total).Seconds())
	out.add("load_avg", loadAvg())
	out.add("peak_rss_mb", peakRSSMB())
	return strings.Join(out.parts, " "), nil
}

// attentionName is the attention path the timed component used (the Manager's defaults).
func attentionName(a, mode, provider string) string {
	if a != "" {
		return a
	}
	if mode == "vae" && provider != "cuda" {
		return "matmul"
	}
	return "mha"
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// peakRSSMB reads VmHWM from /proc/self/status.
func peakRSSMB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb / 1024
			}
		}
	}
	return -1
}

// cpuSeconds is the process's user+system CPU time: with other work on the machine it measures
// our own cost where wall time does not (wall on an idle machine ≈ cpu / threads).
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// loadAvg is the 1-minute load average (context for the timings on a shared machine).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "na"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "na"
	}
	return f[0]
}

// stepClock records the time of every sampler progress report.
type stepClock struct {
	mu    sync.Mutex
	times []time.Time
	cpu   []float64
}

func (s *stepClock) Progress(_ string, _, _ float64, _ image.Image) {
	s.mu.Lock()
	s.times = append(s.times, time.Now())
	s.cpu = append(s.cpu, cpuSeconds())
	s.mu.Unlock()
}

// benchNodes runs the real node pipeline (CheckpointLoaderSimple [→ LoraLoader]
// [→ ModelSamplingDiscrete] → CLIPTextEncode ×2 → EmptyLatentImage → KSampler → VAEDecode)
// and times each stage.
func benchNodes(c benchConfig) (string, error) {
	total := time.Now()
	out := &kv{}
	out.add("bench", "v1")
	out.add("checkpoint", filepath.Base(c.checkpoint))
	if c.lora != "" {
		out.add("lora", filepath.Base(c.lora))
	}
	out.add("mode", c.mode)
	for _, x := range []struct {
		k string
		v any
	}{{"width", c.width}, {"height", c.height}, {"batch", c.batch}, {"steps", c.steps}, {"sampler", c.sampler}, {"scheduler", c.scheduler}, {"cfg", c.cfg}} {
		out.add(x.k, x.v)
	}
	tmp, err := os.MkdirTemp("", "comfygo-bench")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	folders := nodes.NewFolders(filepath.Join(tmp, "models"), tmp, tmp, tmp, tmp)
	folders.Models["checkpoints"] = []string{filepath.Dir(c.checkpoint)}
	if c.lora != "" {
		folders.Models["loras"] = []string{filepath.Dir(c.lora)}
	}
	opts := map[string]string{"provider": c.provider}
	if c.threads > 0 {
		opts["threads"] = strconv.Itoa(c.threads)
	}
	env := &nodes.Env{Folders: folders, Options: opts, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	defer func() { // close the shared model manager (sessions, merged-LoRA work folder)
		if v, err := env.Service("models", func() (any, error) { return nil, fmt.Errorf("none") }); err == nil {
			if c, ok := v.(interface{ Close() error }); ok {
				c.Close()
			}
		}
	}()
	clock := &stepClock{}
	call := func(name string, in nodes.Inputs) ([]any, float64, error) {
		d, ok := nodes.Lookup(name)
		if !ok {
			return nil, 0, fmt.Errorf("node %s is not registered in this binary", name)
		}
		st := time.Now()
		r, err := d.Execute(&nodes.Context{Context: context.Background(), NodeID: name, Env: env, Reporter: clock}, in)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", name, err)
		}
		return r.Outputs, time.Since(st).Seconds(), nil
	}
	ck, t, err := call("CheckpointLoaderSimple", nodes.Inputs{"ckpt_name": filepath.Base(c.checkpoint)})
	if err != nil {
		return "", err
	}
	if m, ok := ck[0].(models.Model); ok {
		out.add("family", m.Family().Name)
	}
	out.add("load_s", t)
	model, clip := ck[0], ck[1]
	if c.lora != "" {
		o, t, err := call("LoraLoader", nodes.Inputs{"model": model, "clip": clip, "lora_name": filepath.Base(c.lora),
			"strength_model": c.loraStrength, "strength_clip": c.loraStrength})
		if err != nil {
			return "", err
		}
		model, clip = o[0], o[1]
		out.add("lora_s", t)
	}
	ms := c.modelSampling
	if ms == "" && c.sampler == "lcm" {
		ms = "lcm"
	}
	if ms != "" {
		o, _, err := call("ModelSamplingDiscrete", nodes.Inputs{"model": model, "sampling": ms, "zsnr": false})
		if err != nil {
			return "", err
		}
		model = o[0]
		out.add("model_sampling", ms)
	}
	pos, t1, err := call("CLIPTextEncode", nodes.Inputs{"text": c.prompt, "clip": clip})
	if err != nil {
		return "", err
	}
	neg, t2, err := call("CLIPTextEncode", nodes.Inputs{"text": "", "clip": clip})
	if err != nil {
		return "", err
	}
	out.add("text_s", t1+t2)
	lat, _, err := call("EmptyLatentImage", nodes.Inputs{"width": int64(c.width), "height": int64(c.height), "batch_size": int64(c.batch)})
	if err != nil {
		return "", err
	}
	for r := 0; r < c.repeat; r++ {
		clock.times, clock.cpu = nil, nil
		start, cpu0 := time.Now(), cpuSeconds()
		o, ts, err := call("KSampler", nodes.Inputs{"model": model, "seed": int64(42 + r), "steps": int64(c.steps), "cfg": c.cfg,
			"sampler_name": c.sampler, "scheduler": c.scheduler, "positive": pos[0], "negative": neg[0], "latent_image": lat[0], "denoise": 1.0})
		if err != nil {
			return "", err
		}
		var steps, cpus []string
		var steady, steadyCPU []float64
		prev, prevCPU := start, cpu0
		for i, tm := range clock.times {
			d := tm.Sub(prev).Seconds()
			steps = append(steps, strconv.FormatFloat(d, 'f', 3, 64))
			cpus = append(cpus, strconv.FormatFloat(clock.cpu[i]-prevCPU, 'f', 3, 64))
			if i > 0 || r > 0 {
				steady = append(steady, d)
				steadyCPU = append(steadyCPU, clock.cpu[i]-prevCPU)
			}
			prev, prevCPU = tm, clock.cpu[i]
		}
		img, td, err := call("VAEDecode", nodes.Inputs{"samples": o[0], "vae": ck[2]})
		if err != nil {
			return "", err
		}
		if r == c.repeat-1 {
			pre := ""
			if c.repeat > 1 {
				pre = "warm_"
			}
			out.add(pre+"sample_s", ts)
			out.add(pre+"unet_steps_s", strings.Join(steps, ","))
			out.add(pre+"unet_steps_cpu_s", strings.Join(cpus, ","))
			out.add(pre+"unet_step_s", mean(steady))
			out.add(pre+"unet_step_cpu_s", mean(steadyCPU))
			out.add(pre+"vae_decode_s", td)
			if t, ok := img[0].(*tensor.Tensor); ok {
				out.add("image", fmt.Sprint(t.Shape))
			}
		}
	}
	if v, err := env.Service("ort", func() (any, error) { return nil, fmt.Errorf("none") }); err == nil {
		if rt, ok := v.(*ort.Runtime); ok {
			out.add("provider", rt.Provider())
			out.add("threads", rt.Threads())
		}
	}
	out.add("total_s", time.Since(total).Seconds())
	out.add("load_avg", loadAvg())
	out.add("peak_rss_mb", peakRSSMB())
	return strings.Join(out.parts, " "), nil
}
