package models

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// TestProfileUNet profiles one full-size UNet evaluation with ORT's profiler, op time by type.
// COMFYGO_PROFILE_CKPT=bench-data/checkpoints/full-sd15-random.safetensors COMFYGO_PROFILE_SIZE=32
func TestProfileUNet(t *testing.T) {
	path := os.Getenv("COMFYGO_PROFILE_CKPT")
	if path == "" {
		t.Skip("set COMFYGO_PROFILE_CKPT to profile a full-size UNet")
	}
	size, _ := strconv.Atoi(os.Getenv("COMFYGO_PROFILE_SIZE"))
	if size == 0 {
		size = 32
	}
	testFactory(t) // initializes ORT
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fam, err := Detect(HeaderFromFile(f), DetectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g, err := BuildUNet(fam.UNet, UNetShape{1, size, size, 77}, resolver(HeaderFromFile(f), UNetPrefix), os.Getenv("COMFYGO_PROFILE_MHA") != "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := g.Lower("unet", f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	so, _ := ortgo.NewSessionOptions()
	defer so.Destroy()
	so.SetIntraOpNumThreads(2)
	so.AddSessionConfigEntry("session.intra_op.allow_spinning", "0")
	so.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", m.ExternalDir)
	if os.Getenv("COMFYGO_PROFILE_NOPREPACK") != "" {
		so.AddSessionConfigEntry("session.disable_prepacking", "1")
	}
	if os.Getenv("COMFYGO_PROFILE_DAZ") != "" {
		so.AddSessionConfigEntry("session.set_denormal_as_zero", "1")
	}
	prefix := t.TempDir() + "/prof"
	so.EnableProfiling(prefix)
	start, cpu0 := time.Now(), cpuTime()
	s, err := ortgo.NewDynamicAdvancedSessionWithONNXData(b, m.InputNames(), m.OutputNames(), so)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("session created in %.1fs (cpu %.1fs), peak rss %d MB", time.Since(start).Seconds(), cpuTime()-cpu0, rssMB())
	u := fam.UNet
	inputs := map[string]*tensor.Tensor{"x": tensor.New(1, 4, size, size), "temb": tensor.FromData(TimestepEmbedding([]float32{500}, u.ModelChannels), 1, u.ModelChannels), "context": tensor.New(1, 77, u.ContextDim)}
	if os.Getenv("COMFYGO_PROFILE_RANDOM") != "" {
		inputs["x"] = randTensor(1, 1, 4, size, size)
		inputs["context"] = randTensor(2, 1, 77, u.ContextDim)
	}
	var vals []ortgo.Value
	for _, n := range m.InputNames() {
		x := inputs[n]
		sh := make([]int64, len(x.Shape))
		for i, d := range x.Shape {
			sh[i] = int64(d)
		}
		v, _ := ortgo.NewTensor(ortgo.NewShape(sh...), x.Data)
		vals = append(vals, v)
	}
	for i := 0; i < 3; i++ {
		outs := []ortgo.Value{nil}
		st := time.Now()
		c0 := cpuTime()
		if err := s.Run(vals, outs); err != nil {
			t.Fatal(err)
		}
		o := outs[0].(*ortgo.Tensor[float32]).GetData()
		var mx float64
		nan := 0
		for _, v := range o {
			if v != v {
				nan++
			} else {
				mx = max(mx, float64(abs32(v)))
			}
		}
		t.Logf("run %d: %.2fs cpu %.2fs  out max|x| %g nan %d", i, time.Since(st).Seconds(), cpuTime()-c0, mx, nan)
		outs[0].Destroy()
	}
	s.Destroy() // writes the profile
	files, _ := filepath.Glob(prefix + "*.json")
	if len(files) == 0 {
		t.Fatal("no profile written")
	}
	raw, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var evs []struct {
		Cat  string `json:"cat"`
		Name string `json:"name"`
		Dur  int64  `json:"dur"`
		Args struct {
			OpName string `json:"op_name"`
		} `json:"args"`
	}
	if err := json.Unmarshal(raw, &evs); err != nil {
		t.Fatal(err)
	}
	by := map[string]int64{}
	var total int64
	for _, e := range evs {
		if e.Cat == "Node" && e.Args.OpName != "" && strings.HasSuffix(e.Name, "_kernel_time") {
			by[e.Args.OpName] += e.Dur
			total += e.Dur
		}
	}
	type kv struct {
		k string
		v int64
	}
	var l []kv
	for k, v := range by {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v })
	for _, x := range l {
		t.Logf("%-28s %7.2fs %5.1f%%", x.k, float64(x.v)/3e6, 100*float64(x.v)/float64(total))
	}
	fmt.Println()
}

func cpuTime() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func rssMB() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") || strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			if len(f) > 1 && strings.HasPrefix(l, "VmHWM:") {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v / 1024
			}
		}
	}
	return -1
}
