// Package ort runs ONNX models on ONNX Runtime through github.com/yalue/onnxruntime_go.
//
// ONNX Runtime keeps one environment per process (OrtEnv, plus the dlopen'ed library), so this
// package initializes it once, guarded by a sync.Once, with the library path of the first Open;
// later Opens must name the same library (or none). That is process-level state forced by ORT.
//
//	rt, err := ort.Open(ort.Config{Provider: "auto"})      // library: Config.LibPath, $ONNXRUNTIME_LIB,
//	                                                       // <repo>/third_party/onnxruntime/libonnxruntime.so.1,
//	                                                       // <exe dir>/third_party/onnxruntime/libonnxruntime.so.1
//	sess, err := rt.NewSession(model)                      // model *onnx.Model (external data resolved in
//	                                                       // model.ExternalDir, weights mmapped/read there)
//	out, err := sess.Run(ctx, map[string]*tensor.Tensor{"x": x})   // ctx cancel terminates the run
//	out, err := sess.RunInputs(ctx, map[string]ort.Input{"ids": ort.Int64(ids, 1, 77)})
//	sess.Close()
//
// Sessions are created with: intra-op threads = Config.Threads (default: physical cores),
// no spinning, ORT_ENABLE_ALL, and the external-initializer folder config entry
// (session.model_external_initializers_file_folder_path) so models built in memory can keep
// their weights in the original safetensors files. Static shapes: fix symbolic input dims in the
// model with onnx.Model.SetDims before creating the session (yalue does not wrap ORT's
// AddFreeDimensionOverrideByName; fixing them in the proto has the same effect).
//
// Memory: with weights as external data, one fp32 copy of the weights lives in the session
// (ORT reads or mmaps the file, pre-packs MatMul/Gemm/Conv weights and drops the originals):
// BenchmarkOpenSession1GB measures peak RSS 1.10× the fp32 weight size for 1 GiB of weights
// (F32 or F16 file), session creation 1–2 s from the page cache on 2 cores. See package onnx for
// the LoRA-merge measurements.
//
// Outputs are returned as float32 (int64/int32/uint8/bool/double converted); float16 outputs
// are refused (onnxruntime_go v1.27 copies them truncated): Cast outputs to Float in the graph.
//
// Note: the ONNX Runtime build bundled by scripts/setup.sh (from onnxruntime-node) contains
// Microsoft's telemetry SDK, which creates an empty /tmp/mat-debug-<pid>.log per process even
// though Open disables telemetry.
package ort

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"
)

// Config selects the ONNX Runtime library and execution provider.
type Config struct {
	LibPath  string // shared library; see LibraryPath for the default search
	Provider string // "cpu" (default), "cuda" or "auto" (CUDA if available, else CPU with a warning)
	DeviceID int    // CUDA device
	Threads  int    // intra-op threads; 0 = physical cores
	// OptLevel is the graph optimization level: 0 disable, 1 basic, 2 extended, 3 all (default 3).
	OptLevel int
	// CUDAOptions are extra CUDA provider options (e.g. "cudnn_conv_algo_search": "HEURISTIC").
	CUDAOptions map[string]string
	Logger      *slog.Logger // default slog.Default()
}

// Runtime is an opened ONNX Runtime with a resolved provider. It is safe for concurrent use.
type Runtime struct {
	cfg      Config
	provider string
	lib      string
}

var env struct {
	once sync.Once
	lib  string
	err  error
}

// LibraryPath resolves the ONNX Runtime library: explicit, else $ONNXRUNTIME_LIB, else
// third_party/onnxruntime/libonnxruntime.so.1 under the repository root (found by walking up
// from the working directory to go.mod), else the same path next to the executable.
func LibraryPath(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if p := os.Getenv("ONNXRUNTIME_LIB"); p != "" {
		return p, nil
	}
	rel := filepath.Join("third_party", "onnxruntime", "libonnxruntime.so.1")
	var tried []string
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				p := filepath.Join(d, rel)
				if _, err := os.Stat(p); err == nil {
					return p, nil
				}
				tried = append(tried, p)
				break
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("ort: ONNX Runtime library not found (tried %s); run ./scripts/setup.sh or set ONNXRUNTIME_LIB to libonnxruntime.so", strings.Join(tried, ", "))
}

// Open initializes ONNX Runtime (once per process) and resolves the provider.
func Open(cfg Config) (*Runtime, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	lib, err := LibraryPath(cfg.LibPath)
	if err != nil {
		return nil, err
	}
	if abs, err := filepath.Abs(lib); err == nil {
		lib = abs
	}
	env.once.Do(func() {
		env.lib = lib
		if _, err := os.Stat(lib); err != nil {
			env.err = fmt.Errorf("ort: ONNX Runtime library: %w (run ./scripts/setup.sh or set ONNXRUNTIME_LIB)", err)
			return
		}
		ortgo.SetSharedLibraryPath(lib)
		if err := ortgo.InitializeEnvironment(ortgo.WithLogLevelError()); err != nil {
			env.err = fmt.Errorf("ort: initialize ONNX Runtime from %s: %w", lib, err)
			return
		}
		// Some ONNX Runtime builds (e.g. the onnxruntime-node one bundled by setup.sh) include
		// Microsoft's telemetry SDK; comfygo never sends telemetry.
		if err := ortgo.DisableTelemetry(); err != nil {
			cfg.Logger.Debug("ONNX Runtime: disable telemetry", "err", err)
		}
	})
	if env.err != nil {
		return nil, env.err
	}
	if env.lib != lib {
		return nil, fmt.Errorf("ort: ONNX Runtime is already loaded from %s in this process; cannot also load %s", env.lib, lib)
	}
	if cfg.Threads <= 0 {
		cfg.Threads = PhysicalCores()
	}
	if cfg.OptLevel == 0 {
		cfg.OptLevel = 3
	} else if cfg.OptLevel < 0 {
		cfg.OptLevel = 0
	}
	rt := &Runtime{cfg: cfg, lib: lib}
	switch strings.ToLower(cfg.Provider) {
	case "", "cpu":
		rt.provider = "cpu"
	case "cuda", "auto":
		err := probeCUDA(cfg)
		switch {
		case err == nil:
			rt.provider = "cuda"
		case strings.EqualFold(cfg.Provider, "cuda"):
			return nil, cudaError(lib, err)
		default:
			cfg.Logger.Warn("ONNX Runtime: CUDA unavailable, using CPU", "lib", lib, "reason", err.Error())
			rt.provider = "cpu"
		}
	default:
		return nil, fmt.Errorf("ort: unknown provider %q (want cpu, cuda or auto)", cfg.Provider)
	}
	return rt, nil
}

func cudaError(lib string, err error) error {
	return fmt.Errorf("ort: the CUDA execution provider is not available in %s (%v). "+
		"Install a CUDA build of ONNX Runtime (the onnxruntime-gpu release for Linux x64, with CUDA 12 and cuDNN 9) "+
		"and set ONNXRUNTIME_LIB to its libonnxruntime.so, or use provider \"cpu\"", lib, err)
}

func probeCUDA(cfg Config) error {
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return err
	}
	defer so.Destroy()
	return appendCUDA(so, cfg)
}

func appendCUDA(so *ortgo.SessionOptions, cfg Config) error {
	co, err := ortgo.NewCUDAProviderOptions()
	if err != nil {
		return err
	}
	defer co.Destroy()
	opts := map[string]string{"device_id": fmt.Sprint(cfg.DeviceID)}
	for k, v := range cfg.CUDAOptions {
		opts[k] = v
	}
	if err := co.Update(opts); err != nil {
		return err
	}
	return so.AppendExecutionProviderCUDA(co)
}

// Provider is the provider sessions use: "cpu" or "cuda".
func (rt *Runtime) Provider() string { return rt.provider }

// Threads is the intra-op thread count.
func (rt *Runtime) Threads() int { return rt.cfg.Threads }

// LibPath is the loaded library.
func (rt *Runtime) LibPath() string { return rt.lib }

// Version is ONNX Runtime's version string.
func Version() string { return ortgo.GetVersion() }

// PhysicalCores counts physical CPU cores (distinct physical id/core id pairs in /proc/cpuinfo),
// falling back to runtime.NumCPU.
func PhysicalCores() int {
	n := runtime.NumCPU()
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return n
	}
	defer f.Close()
	cores := map[string]bool{}
	var phys string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "physical id":
			phys = strings.TrimSpace(v)
		case "core id":
			cores[phys+"/"+strings.TrimSpace(v)] = true
		}
	}
	if c := len(cores); c > 0 && c <= n {
		return c
	}
	return n
}

var errClosed = errors.New("ort: session is closed")
