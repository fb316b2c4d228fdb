package ort

import (
	"context"
	"fmt"
	"sort"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/tensor"
)

// SessionOption tweaks one session.
type SessionOption func(*sessionConfig)

type sessionConfig struct {
	entries        map[string]string
	optLevel       int
	optimizedModel string
	memArena       *bool
}

// WithConfigEntry sets an ORT session config entry (e.g. "session.disable_prepacking", "1").
func WithConfigEntry(key, value string) SessionOption {
	return func(c *sessionConfig) { c.entries[key] = value }
}

// WithOptLevel overrides the runtime's graph optimization level (0..3) for this session.
func WithOptLevel(level int) SessionOption { return func(c *sessionConfig) { c.optLevel = level } }

// WithoutPrepacking disables weight pre-packing (less memory, slower MatMul/Conv).
func WithoutPrepacking() SessionOption { return WithConfigEntry("session.disable_prepacking", "1") }

// WithCPUMemArena enables or disables ORT's CPU memory arena (enabled by default). Disabling it
// returns activation memory to the system after each run, at some speed cost.
func WithCPUMemArena(on bool) SessionOption {
	return func(c *sessionConfig) { c.memArena = &on }
}

// WithOptimizedModelPath makes ORT save the optimized model to path.
func WithOptimizedModelPath(path string) SessionOption {
	return func(c *sessionConfig) { c.optimizedModel = path }
}

// Session is a loaded model. Run may be called concurrently.
type Session struct {
	mu      sync.RWMutex
	s       *ortgo.DynamicAdvancedSession
	inputs  []string
	outputs []string
	types   map[string]onnx.DataType
}

// NewSession creates a session for a model built with package onnx; external initializers are
// read from m.ExternalDir.
func (rt *Runtime) NewSession(m *onnx.Model, opts ...SessionOption) (*Session, error) {
	data, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	s, err := rt.newSession(data, m.ExternalDir, m.InputNames(), m.OutputNames(), opts)
	if err != nil {
		return nil, err
	}
	s.types = map[string]onnx.DataType{}
	for _, n := range s.inputs {
		s.types[n] = m.InputType(n)
	}
	return s, nil
}

// NewSessionFromBytes creates a session for a serialized model whose external-data locations
// are relative to externalDir ("" if it has none).
func (rt *Runtime) NewSessionFromBytes(model []byte, externalDir string, opts ...SessionOption) (*Session, error) {
	ins, outs, err := onnx.Inspect(model)
	if err != nil {
		return nil, fmt.Errorf("ort: %w", err)
	}
	return rt.newSession(model, externalDir, ins, outs, opts)
}

func (rt *Runtime) newSession(data []byte, extDir string, ins, outs []string, opts []SessionOption) (*Session, error) {
	c := &sessionConfig{entries: map[string]string{
		"session.intra_op.allow_spinning": "0",
		"session.inter_op.allow_spinning": "0",
	}, optLevel: rt.cfg.OptLevel}
	if extDir != "" {
		c.entries["session.model_external_initializers_file_folder_path"] = extDir
	}
	for _, o := range opts {
		o(c)
	}
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("ort: session options: %w", err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(rt.cfg.Threads); err != nil {
		return nil, fmt.Errorf("ort: threads: %w", err)
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("ort: threads: %w", err)
	}
	levels := []ortgo.GraphOptimizationLevel{ortgo.GraphOptimizationLevelDisableAll, ortgo.GraphOptimizationLevelEnableBasic,
		ortgo.GraphOptimizationLevelEnableExtended, ortgo.GraphOptimizationLevelEnableAll}
	if c.optLevel < 0 || c.optLevel > 3 {
		return nil, fmt.Errorf("ort: optimization level %d out of range 0..3", c.optLevel)
	}
	if err := so.SetGraphOptimizationLevel(levels[c.optLevel]); err != nil {
		return nil, fmt.Errorf("ort: optimization level: %w", err)
	}
	keys := make([]string, 0, len(c.entries))
	for k := range c.entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := so.AddSessionConfigEntry(k, c.entries[k]); err != nil {
			return nil, fmt.Errorf("ort: config %s=%s: %w", k, c.entries[k], err)
		}
	}
	if c.memArena != nil {
		if err := so.SetCpuMemArena(*c.memArena); err != nil {
			return nil, fmt.Errorf("ort: memory arena: %w", err)
		}
	}
	if c.optimizedModel != "" {
		if err := so.SetOptimizedModelFilePath(c.optimizedModel); err != nil {
			return nil, fmt.Errorf("ort: optimized model path: %w", err)
		}
	}
	if rt.provider == "cuda" {
		if err := appendCUDA(so, rt.cfg); err != nil {
			return nil, cudaError(rt.lib, err)
		}
	}
	s, err := ortgo.NewDynamicAdvancedSessionWithONNXData(data, ins, outs, so)
	if err != nil {
		return nil, fmt.Errorf("ort: create session: %w", err)
	}
	return &Session{s: s, inputs: ins, outputs: outs}, nil
}

// InputNames and OutputNames list the model's graph inputs and outputs.
func (s *Session) InputNames() []string  { return append([]string(nil), s.inputs...) }
func (s *Session) OutputNames() []string { return append([]string(nil), s.outputs...) }

// Close releases the session; it waits for running Runs.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.s == nil {
		return nil
	}
	err := s.s.Destroy()
	s.s = nil
	return err
}

// Input is one input value for RunInputs; make them with Float32, Int64 or Float16.
type Input interface {
	value() (ortgo.Value, error)
}

type f32Input struct{ t *tensor.Tensor }
type i64Input struct {
	shape []int
	data  []int64
}
type f16Input struct{ t *tensor.Tensor }

// Float32 feeds t as a float tensor (not copied: do not modify t during Run).
func Float32(t *tensor.Tensor) Input { return f32Input{t} }

// Int64 feeds int64 data (e.g. token ids) with the given shape.
func Int64(data []int64, shape ...int) Input { return i64Input{shape, data} }

// Float16 feeds t converted to float16 (for fp16 graphs).
func Float16(t *tensor.Tensor) Input { return f16Input{t} }

func shape64(s []int) ortgo.Shape {
	out := make(ortgo.Shape, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}

func (in f32Input) value() (ortgo.Value, error) {
	if tensor.Numel(in.t.Shape) != len(in.t.Data) {
		return nil, fmt.Errorf("%d values for shape %v", len(in.t.Data), in.t.Shape)
	}
	if len(in.t.Data) == 0 {
		return ortgo.NewEmptyTensor[float32](shape64(in.t.Shape))
	}
	return ortgo.NewTensor(shape64(in.t.Shape), in.t.Data)
}

func (in i64Input) value() (ortgo.Value, error) {
	if tensor.Numel(in.shape) != len(in.data) {
		return nil, fmt.Errorf("%d values for shape %v", len(in.data), in.shape)
	}
	if len(in.data) == 0 {
		return ortgo.NewEmptyTensor[int64](shape64(in.shape))
	}
	return ortgo.NewTensor(shape64(in.shape), in.data)
}

func (in f16Input) value() (ortgo.Value, error) {
	if tensor.Numel(in.t.Shape) != len(in.t.Data) {
		return nil, fmt.Errorf("%d values for shape %v", len(in.t.Data), in.t.Shape)
	}
	b := make([]byte, 2*len(in.t.Data))
	if len(b) > 0 {
		tensor.F32SliceToF16(b, in.t.Data)
	}
	return ortgo.NewCustomDataTensor(shape64(in.t.Shape), b, ortgo.TensorElementDataTypeFloat16)
}

// Run feeds float32 tensors (converted to float16 for inputs the model declares Float16) and
// returns every output as float32. Cancelling ctx terminates the run (ORT RunOptions
// Terminate) and Run returns ctx's error.
func (s *Session) Run(ctx context.Context, inputs map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	in := make(map[string]Input, len(inputs))
	for k, t := range inputs {
		if s.types[k] == onnx.Float16 {
			in[k] = Float16(t)
		} else {
			in[k] = Float32(t)
		}
	}
	return s.RunInputs(ctx, in)
}

// RunInputs is Run with typed inputs (int64 token ids, float16).
func (s *Session) RunInputs(ctx context.Context, inputs map[string]Input) (map[string]*tensor.Tensor, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.s == nil {
		return nil, errClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(s.inputs) == 0 || len(s.outputs) == 0 {
		return nil, fmt.Errorf("ort: models without inputs or outputs cannot be run (onnxruntime_go needs at least one of each)")
	}
	vals := make([]ortgo.Value, len(s.inputs))
	defer func() {
		for _, v := range vals {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, name := range s.inputs {
		in, ok := inputs[name]
		if !ok {
			return nil, fmt.Errorf("ort: missing input %q (model inputs: %v)", name, s.inputs)
		}
		v, err := in.value()
		if err != nil {
			return nil, fmt.Errorf("ort: input %q: %w", name, err)
		}
		vals[i] = v
	}
	if len(inputs) != len(s.inputs) {
		for k := range inputs {
			if !contains(s.inputs, k) {
				return nil, fmt.Errorf("ort: unknown input %q (model inputs: %v)", k, s.inputs)
			}
		}
	}
	ro, err := ortgo.NewRunOptions()
	if err != nil {
		return nil, fmt.Errorf("ort: run options: %w", err)
	}
	defer ro.Destroy()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			ro.Terminate()
		case <-done:
		}
	}()
	outs := make([]ortgo.Value, len(s.outputs))
	err = s.s.RunWithOptions(vals, outs, ro)
	close(done)
	<-stopped
	defer func() {
		for _, v := range outs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ort: run interrupted: %w", ctx.Err())
		}
		return nil, fmt.Errorf("ort: run: %w", err)
	}
	res := make(map[string]*tensor.Tensor, len(outs))
	for i, v := range outs {
		t, err := toTensor(v)
		if err != nil {
			return nil, fmt.Errorf("ort: output %q: %w", s.outputs[i], err)
		}
		res[s.outputs[i]] = t
	}
	return res, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func toTensor(v ortgo.Value) (*tensor.Tensor, error) {
	sh := v.GetShape()
	shape := make([]int, len(sh))
	for i, d := range sh {
		shape[i] = int(d)
	}
	n := tensor.Numel(shape)
	out := &tensor.Tensor{Shape: shape}
	switch t := v.(type) {
	case *ortgo.Tensor[float32]:
		out.Data = t.GetData() // Go-owned copy made by onnxruntime_go
	case *ortgo.Tensor[float64]:
		out.Data = conv(t.GetData())
	case *ortgo.Tensor[int64]:
		out.Data = conv(t.GetData())
	case *ortgo.Tensor[int32]:
		out.Data = conv(t.GetData())
	case *ortgo.Tensor[uint8]:
		out.Data = conv(t.GetData())
	case *ortgo.Tensor[bool]:
		out.Data = make([]float32, n)
		for i, b := range t.GetData() {
			if b {
				out.Data[i] = 1
			}
		}
	default:
		return nil, fmt.Errorf("unsupported output element type %v (cast outputs to float in the graph)", v.DataType())
	}
	if len(out.Data) != n {
		return nil, fmt.Errorf("%d values for shape %v", len(out.Data), shape)
	}
	return out, nil
}

func conv[T int64 | int32 | uint8 | float64](s []T) []float32 {
	out := make([]float32, len(s))
	for i, x := range s {
		out[i] = float32(x)
	}
	return out
}
