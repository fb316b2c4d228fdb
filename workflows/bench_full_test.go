package workflows

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/comfygo/comfygo/executor"
	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/nodes"
)

// End-to-end benchmark of the reference LCM-LoRA workflow through the real executor and nodes
// on the full-size random-weight SD1.5 files that `comfygo gen-full --dir bench-data --only
// sd15` writes (bench-data/ at the repository root, or $COMFYGO_BENCH_DATA):
//
//	go test ./workflows -run XXX -bench 'RequeueLCMFullSD15/512x512' -benchtime 1x -timeout 60m -v
//
// One executor per sub-benchmark (run each size in its own process for a truly cold start):
//  1. cold: every node, cfg 1.0, seed 1;
//  2. warm re-queue with only a new seed (cfg 1.0): exactly KSampler, VAEDecode, SaveImage run;
//  3. cfg changed to 1.5 (also re-runs only those three; cfg > 1 evaluates cond+uncond);
//  4. warm re-queue with only a new seed at cfg 1.5.
//
// Each run reports wall and CPU (getrusage) time, split per node from the executor's events
// (node time = "executing" event to the node's "finished" progress_state), and the executor
// overhead = run total minus the nodes' own time. COMFYGO_BENCH_CFGS="1.0" limits the cfg values.

// fullBenchData returns the models folder holding checkpoints/ and loras/ with the full files.
func fullBenchData(b *testing.B) string {
	dir := os.Getenv("COMFYGO_BENCH_DATA")
	if dir == "" {
		root, err := models.RepoRoot()
		if err != nil {
			b.Skip("repository root not found")
		}
		dir = filepath.Join(root, "bench-data")
	}
	for _, p := range []string{filepath.Join(dir, models.FullSD15File), filepath.Join(dir, models.FullLoRASD15File)} {
		if _, err := os.Stat(p); err != nil {
			b.Skipf("%s missing: run `go run ./cmd/comfygo gen-full --dir bench-data --only sd15`", p)
		}
	}
	return dir
}

// cpuNow is the process's user+system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// maxRSSMB is the process's peak resident set size.
func maxRSSMB() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss / 1024
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// stamp is a wall and CPU instant.
type stamp struct {
	wall time.Time
	cpu  time.Duration
}

func now() stamp { return stamp{time.Now(), cpuNow()} }

// nodeTiming is one node's span in a run.
type nodeTiming struct {
	start, end stamp
	steps      []stamp // progress events (KSampler steps)
}

// timingSink records per-node timing from the executor's events.
type timingSink struct {
	mu     sync.Mutex
	nodes  map[string]*nodeTiming
	order  []string // ids in "executing" order
	errs   []string
	cached []string
}

func newTimingSink() *timingSink { return &timingSink{nodes: map[string]*nodeTiming{}} }

func (s *timingSink) node(id string) *nodeTiming {
	n := s.nodes[id]
	if n == nil {
		n = &nodeTiming{}
		s.nodes[id] = n
	}
	return n
}

func (s *timingSink) Event(name string, data any, _ string) {
	t := now()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch d := data.(type) {
	case executor.Executing:
		if d.Node != nil {
			s.node(*d.Node).start = t
			s.order = append(s.order, *d.Node)
		}
	case executor.ProgressState:
		for _, st := range d.Nodes {
			if st.State == "finished" {
				if n := s.node(st.NodeID); n.end.wall.IsZero() {
					n.end = t
				}
			}
		}
	case executor.Progress:
		n := s.node(d.Node)
		n.steps = append(n.steps, t)
	case executor.ExecutionCached:
		s.cached = append(s.cached, d.Nodes...)
	}
	if name == "execution_error" || name == "execution_interrupted" {
		b, _ := json.Marshal(data)
		s.errs = append(s.errs, name+": "+string(b))
	}
}

func (s *timingSink) Preview(string, executor.PreviewMeta, image.Image) {}

// lcmPrompt is the reference LCM-LoRA workflow as an API prompt.
func lcmPrompt(b *testing.B, width, height int, seed int64, cfg float64) *graph.Prompt {
	src := fmt.Sprintf(`{
	"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": %q}},
	"10": {"class_type": "LoraLoader", "inputs": {"model": ["4", 0], "clip": ["4", 1], "lora_name": %q, "strength_model": 1.0, "strength_clip": 1.0}},
	"11": {"class_type": "ModelSamplingDiscrete", "inputs": {"model": ["10", 0], "sampling": "lcm", "zsnr": false}},
	"6": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["10", 1], "text": "a photograph of an astronaut riding a horse, detailed, sharp focus"}},
	"7": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["10", 1], "text": "blurry, low quality"}},
	"5": {"class_type": "EmptyLatentImage", "inputs": {"width": %d, "height": %d, "batch_size": 1}},
	"3": {"class_type": "KSampler", "inputs": {"model": ["11", 0], "seed": %d, "steps": 4, "cfg": %g, "sampler_name": "lcm", "scheduler": "sgm_uniform", "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0], "denoise": 1.0}},
	"8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
	"9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "bench"}}
}`, path.Base(models.FullSD15File), path.Base(models.FullLoRASD15File), width, height, seed, cfg)
	p, err := graph.ParsePrompt([]byte(src))
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// runResult is one prompt run's timing.
type runResult struct {
	label             string
	wall, cpu         time.Duration
	byClass           map[string][2]time.Duration // class -> wall, cpu
	nodesWall         time.Duration
	nodesCPU          time.Duration
	executed          []string // classes, sorted
	stepWall, stepCPU []time.Duration
	load              string
}

func runTimed(b *testing.B, ex *executor.Executor, label string, p *graph.Prompt) runResult {
	load := loadAvg()
	outs, nodeErrs, verr := ex.Validate(p, nil)
	if verr != nil {
		js, _ := json.Marshal(nodeErrs)
		b.Fatalf("%s: validate: %v %s", label, verr, js)
	}
	s := newTimingSink()
	t0 := now()
	hist := ex.Execute(context.Background(), executor.Job{PromptID: label, Prompt: p, Outputs: outs, ClientID: "bench"}, s)
	t1 := now()
	if !hist.Status.Completed || len(s.errs) > 0 {
		b.Fatalf("%s failed: %v %v", label, s.errs, hist.Status.Messages)
	}
	r := runResult{label: label, wall: t1.wall.Sub(t0.wall), cpu: t1.cpu - t0.cpu, byClass: map[string][2]time.Duration{}, load: load}
	for _, id := range s.order {
		n := s.nodes[id]
		if n.end.wall.IsZero() {
			b.Fatalf("%s: node %s (%s) never finished", label, id, p.Nodes[id].ClassType)
		}
		w, c := n.end.wall.Sub(n.start.wall), n.end.cpu-n.start.cpu
		cls := p.Nodes[id].ClassType
		v := r.byClass[cls]
		r.byClass[cls] = [2]time.Duration{v[0] + w, v[1] + c}
		r.nodesWall += w
		r.nodesCPU += c
		r.executed = append(r.executed, cls)
		if cls == "KSampler" {
			prev := n.start
			for _, st := range n.steps {
				r.stepWall = append(r.stepWall, st.wall.Sub(prev.wall))
				r.stepCPU = append(r.stepCPU, st.cpu-prev.cpu)
				prev = st
			}
		}
	}
	sort.Strings(r.executed)
	return r
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r runResult) log(b *testing.B) {
	var parts []string
	for _, cls := range []string{"CheckpointLoaderSimple", "LoraLoader", "ModelSamplingDiscrete", "CLIPTextEncode", "EmptyLatentImage", "KSampler", "VAEDecode", "SaveImage"} {
		if v, ok := r.byClass[cls]; ok {
			parts = append(parts, fmt.Sprintf("%s=%s/%s", cls, secs(v[0]), secs(v[1])))
		}
	}
	var steps []string
	for i := range r.stepWall {
		steps = append(steps, secs(r.stepWall[i])+"/"+secs(r.stepCPU[i]))
	}
	b.Logf("%s: load_avg=%s total=%ss wall/%ss cpu; nodes (wall/cpu s): %s; overhead=%.1fms wall/%.1fms cpu; ksampler steps (wall/cpu s, from node start): [%s]; executed=%v; peak_rss_mb=%d",
		r.label, r.load, secs(r.wall), secs(r.cpu), strings.Join(parts, " "), ms(r.wall-r.nodesWall), ms(r.cpu-r.nodesCPU),
		strings.Join(steps, " "), r.executed, maxRSSMB())
}

// BenchmarkRequeueLCMFullSD15 runs the reference LCM-LoRA workflow cold, then re-queues it with
// only a new seed, at 512×512 (brief target ≤ 60 s end to end) and 768×512 (the reference size).
func BenchmarkRequeueLCMFullSD15(b *testing.B) {
	for _, sz := range [][2]int{{512, 512}, {768, 512}} {
		b.Run(fmt.Sprintf("%dx%d", sz[0], sz[1]), func(b *testing.B) { benchRequeue(b, sz[0], sz[1]) })
	}
}

func benchRequeue(b *testing.B, width, height int) {
	dir := fullBenchData(b)
	cfgs := []float64{1.0, 1.5}
	if v := os.Getenv("COMFYGO_BENCH_CFGS"); v != "" {
		cfgs = nil
		for _, f := range strings.Split(v, ",") {
			var c float64
			if _, err := fmt.Sscanf(strings.TrimSpace(f), "%g", &c); err != nil {
				b.Fatalf("COMFYGO_BENCH_CFGS: %v", err)
			}
			cfgs = append(cfgs, c)
		}
	}
	want := "KSampler,SaveImage,VAEDecode"
	for i := 0; i < b.N; i++ {
		root := b.TempDir()
		env := &nodes.Env{
			Folders: nodes.NewFolders(dir, filepath.Join(root, "input"), filepath.Join(root, "output"),
				filepath.Join(root, "temp"), filepath.Join(root, "user")),
			Options: map[string]string{"threads": "2"},
		}
		ex := executor.New(executor.Config{Env: env})
		seed := int64(1)
		var results []runResult
		for ci, cfg := range cfgs {
			label := fmt.Sprintf("%dx%d cfg %g", width, height, cfg)
			first := runTimed(b, ex, label+" first (cold)", lcmPrompt(b, width, height, seed, cfg))
			if ci > 0 {
				first.label = label + " first (cfg changed)"
				if got := strings.Join(first.executed, ","); got != want {
					b.Errorf("%s executed %s, want %s", first.label, got, want)
				}
			} else if len(first.executed) != 9 {
				b.Errorf("%s executed %v, want all 9 nodes", first.label, first.executed)
			}
			first.log(b)
			seed++
			warm := runTimed(b, ex, label+" re-queue (new seed)", lcmPrompt(b, width, height, seed, cfg))
			if got := strings.Join(warm.executed, ","); got != want {
				b.Errorf("%s executed %s, want exactly %s", warm.label, got, want)
			}
			warm.log(b)
			seed++
			results = append(results, first, warm)
		}
		for _, r := range results {
			name := strings.NewReplacer(" ", "_", "(", "", ")", "").Replace(strings.TrimPrefix(r.label, fmt.Sprintf("%dx%d ", width, height)))
			b.ReportMetric(r.wall.Seconds(), name+"-s")
			b.ReportMetric(r.cpu.Seconds(), name+"-cpu-s")
		}
		env.UnloadAll()
	}
}
