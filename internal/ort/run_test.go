package ort

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// Token ids as int64 input: Gather from an F16 embedding table (the CLIP text-encoder path).
func TestInt64InputGather(t *testing.T) {
	rt := testRuntime(t)
	r := rand.New(rand.NewPCG(3, 4))
	emb := randT(r, 11, 6)
	p := filepath.Join(t.TempDir(), "e.safetensors")
	raw, _ := safetensors.FromFloat32("emb", emb, safetensors.F16)
	if err := safetensors.Write(p, []safetensors.RawTensor{raw}, nil, safetensors.WriteOptions{Misalign: 3}); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stored, _ := f.Float32("emb")
	g := onnx.NewGraph("emb")
	ids := g.Input("ids", onnx.Int64, onnx.Dim("batch"), onnx.Dim("tokens"))
	g.Output(g.Gather(g.Weight(f, "emb"), ids, 0), "h")
	m, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.NewSession(m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tok := []int64{0, 10, 3, 3, 7, 1}
	out, err := s.RunInputs(context.Background(), map[string]Input{"ids": Int64(tok, 2, 3)})
	if err != nil {
		t.Fatal(err)
	}
	want := tensor.New(2, 3, 6)
	for i, id := range tok {
		copy(want.Data[i*6:], stored.Data[id*6:(id+1)*6])
	}
	if _, err := compare(out["h"], want, 1e-30); err != nil {
		t.Fatal(err)
	}
	// Wrong input name and missing input are reported clearly.
	if _, err := s.RunInputs(context.Background(), map[string]Input{"idz": Int64(tok, 2, 3)}); err == nil || !strings.Contains(err.Error(), "missing input \"ids\"") {
		t.Errorf("missing input: %v", err)
	}
	if _, err := s.RunInputs(context.Background(), map[string]Input{"ids": Int64(tok, 2, 2)}); err == nil {
		t.Error("bad shape accepted")
	}
	s.Close()
	if _, err := s.RunInputs(context.Background(), map[string]Input{"ids": Int64(tok, 2, 3)}); !errors.Is(err, errClosed) {
		t.Errorf("run after close: %v", err)
	}
}

// Cancelling the context terminates a long run promptly.
func TestRunCancel(t *testing.T) {
	rt := testRuntime(t)
	g := onnx.NewGraph("slow")
	x := g.Input("x", onnx.Float, 384, 384)
	h := x
	for range 400 { // ~45 GFLOP: several seconds on 2 cores
		h = g.Tanh(g.MatMul(h, x))
	}
	g.Output(h, "y")
	m, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.NewSession(m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Run(ctx, map[string]*tensor.Tensor{"x": tensor.New(384, 384)})
	el := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v after %v", err, el)
	}
	if el > 2*time.Second {
		t.Errorf("run took %v to stop after cancel", el)
	}
	t.Logf("stopped after %v", el)
	// An already-cancelled context does not start a run.
	if _, err := s.Run(ctx, map[string]*tensor.Tensor{"x": tensor.New(384, 384)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled ctx: %v", err)
	}
}

func TestCompareDetectsMismatch(t *testing.T) {
	a := tensor.FromData([]float32{1, 2, 3}, 3)
	b := tensor.FromData([]float32{1, 2, 3.001}, 3)
	if _, err := compare(a, b, 1e-5); err == nil {
		t.Error("compare accepted a 3e-4 relative error")
	}
	if _, err := compare(a, tensor.FromData([]float32{1, 2, 3}, 1, 3), 1e-5); err == nil {
		t.Error("compare accepted a shape mismatch")
	}
}

// The in-graph LoRA merge (Cast + Gemm over constant initializers) is folded by ORT at session
// creation: the optimized model keeps only the MatMul on the activation.
func TestLowRankMergeIsFolded(t *testing.T) {
	rt := testRuntime(t)
	r := rand.New(rand.NewPCG(5, 6))
	dir := t.TempDir()
	p := filepath.Join(dir, "w.safetensors")
	var raws []safetensors.RawTensor
	for name, tt := range map[string]*tensor.Tensor{"w": randT(r, 8, 6), "up": randT(r, 8, 2), "down": randT(r, 2, 6)} {
		raw, _ := safetensors.FromFloat32(name, tt, safetensors.F16)
		raws = append(raws, raw)
	}
	if err := safetensors.Write(p, raws, nil, safetensors.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := onnx.NewGraph("fold")
	x := g.Input("x", onnx.Float, 1, 6)
	g.Output(g.Linear(x, g.AddLowRank(g.Weight(f, "w"), g.Weight(f, "up"), g.Weight(f, "down"), 0.5, []int{8, 6}), onnx.Value{}), "y")
	m, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	opt := filepath.Join(dir, "opt.onnx")
	s, err := rt.NewSession(m, WithOptLevel(1), WithOptimizedModelPath(opt))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	data, err := os.ReadFile(opt)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := onnx.NodeOps(data)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ops, ",") != "FusedMatMul" {
		t.Errorf("optimized graph has ops %v; want only FusedMatMul (Cast and Gemm folded)", ops)
	}
}

// A serialized model with external data loads through NewSessionFromBytes, and SetDims gives it
// static shapes (a wrong input shape is then refused by ORT).
func TestSessionFromBytesStaticDims(t *testing.T) {
	rt := testRuntime(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "w.safetensors")
	if err := safetensors.WriteFloat32(p, map[string]*tensor.Tensor{"b": tensor.FromData([]float32{1, 2, 3}, 3)}, safetensors.BF16, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := onnx.NewGraph("bytes")
	x := g.Input("x", onnx.Float, onnx.Dim("batch"), 3)
	g.Output(g.Add(x, g.Weight(f, "b")), "y")
	m, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	m.SetDims(map[string]int64{"batch": 2})
	data, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.NewSessionFromBytes(data, dir, WithCPUMemArena(false), WithOptLevel(2))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), map[string]*tensor.Tensor{"x": tensor.New(2, 3)})
	if err != nil {
		t.Fatal(err)
	}
	if got := out["y"].Data; len(got) != 6 || got[0] != 1 || got[5] != 3 {
		t.Errorf("got %v", got)
	}
	if _, err := s.Run(context.Background(), map[string]*tensor.Tensor{"x": tensor.New(1, 3)}); err == nil {
		t.Error("batch 1 accepted by a model fixed to batch 2")
	}
	// Without the folder the relative location cannot be resolved.
	if s2, err := rt.NewSessionFromBytes(data, filepath.Join(dir, "nowhere")); err == nil {
		s2.Close()
		t.Error("session created with a wrong external-data folder")
	}
}
