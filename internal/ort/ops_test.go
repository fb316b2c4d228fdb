package ort

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// weight is one tensor of a test checkpoint and the dtype it is stored as.
type weight struct {
	t     *tensor.Tensor
	dtype safetensors.DType
}

type opCase struct {
	name    string
	weights map[string]weight
	inputs  map[string]*tensor.Tensor
	build   func(g *onnx.Graph, w func(string) onnx.Value, in map[string]onnx.Value) onnx.Value
	// ref computes the expected output from the inputs and the weights as stored (already
	// rounded to their dtype).
	ref func(in map[string]*tensor.Tensor, w map[string]*tensor.Tensor) *tensor.Tensor
	tol float64 // max |got-want| / max |want|; default 1e-5
}

func randT(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i := range t.Data {
		t.Data[i] = float32(r.NormFloat64())
	}
	return t
}

func f32w(t *tensor.Tensor) weight { return weight{t, safetensors.F32} }

func opCases() []opCase {
	r := rand.New(rand.NewPCG(1, 2))
	convCase := func(name string, c, o, k, stride int, dt safetensors.DType) opCase {
		pad := k / 2
		return opCase{
			name:    name,
			weights: map[string]weight{"w": {randT(r, o, c, k, k), dt}, "b": f32w(randT(r, o))},
			inputs:  map[string]*tensor.Tensor{"x": randT(r, 2, c, 9, 8)},
			build: func(g *onnx.Graph, w func(string) onnx.Value, in map[string]onnx.Value) onnx.Value {
				return g.Conv(in["x"], w("w"), w("b"), onnx.Attrs{
					"pads": []int64{int64(pad), int64(pad), int64(pad), int64(pad)}, "strides": []int64{int64(stride), int64(stride)}})
			},
			ref: func(in, w map[string]*tensor.Tensor) *tensor.Tensor {
				return refConv2d(in["x"], w["w"], w["b"].Data, stride, pad)
			},
		}
	}
	unary := func(name string, x *tensor.Tensor, op func(g *onnx.Graph, x onnx.Value) onnx.Value, fn func(float64) float64) opCase {
		var ref func(in, w map[string]*tensor.Tensor) *tensor.Tensor
		if fn != nil {
			ref = func(in, w map[string]*tensor.Tensor) *tensor.Tensor { return refMap(in["x"], fn) }
		}
		return opCase{
			name:   name,
			inputs: map[string]*tensor.Tensor{"x": x},
			build: func(g *onnx.Graph, w func(string) onnx.Value, in map[string]onnx.Value) onnx.Value {
				return op(g, in["x"])
			},
			ref: ref,
		}
	}
	attn := func(name string, fused bool) opCase {
		return opCase{
			name:    name,
			weights: map[string]weight{"wq": f32w(randT(r, 32, 32)), "wk": f32w(randT(r, 32, 24)), "wv": {randT(r, 32, 24), safetensors.F16}},
			inputs:  map[string]*tensor.Tensor{"x": randT(r, 2, 6, 32), "ctx": randT(r, 2, 9, 24)},
			build: func(g *onnx.Graph, w func(string) onnx.Value, in map[string]onnx.Value) onnx.Value {
				q := g.Linear(in["x"], w("wq"), onnx.Value{})
				k := g.Linear(in["ctx"], w("wk"), onnx.Value{})
				v := g.Linear(in["ctx"], w("wv"), onnx.Value{})
				if fused {
					return g.MultiHeadAttention(q, k, v, 4)
				}
				return g.AttentionPlain(q, k, v, 4, 8)
			},
			ref: func(in, w map[string]*tensor.Tensor) *tensor.Tensor {
				q := refLinear(in["x"], w["wq"], nil)
				k := refLinear(in["ctx"], w["wk"], nil)
				v := refLinear(in["ctx"], w["wv"], nil)
				return refAttention(q, k, v, 4)
			},
		}
	}
	castCase := func(dt safetensors.DType) opCase {
		return opCase{
			name:    "Cast_" + string(dt),
			weights: map[string]weight{"w": {randT(r, 3, 5, 7), dt}},
			inputs:  map[string]*tensor.Tensor{"zero": tensor.New(1)},
			build: func(g *onnx.Graph, w func(string) onnx.Value, in map[string]onnx.Value) onnx.Value {
				return g.Add(w("w"), in["zero"]) // the input only because a session needs one
			},
			ref: func(in, w map[string]*tensor.Tensor) *tensor.Tensor { return w["w"] },
			tol: 1e-30, // exact
		}
	}
	return []opCase{
		convCase("Conv3x3", 6, 5, 3, 1, safetensors.F32),
		convCase("Conv1x1", 6, 7, 1, 1, safetensors.F32),
		convCase("Conv3x3Stride2", 4, 4, 3, 2, safetensors.F32),
		convCase("Conv3x3F16", 6, 5, 3, 1, safetensors.F16),
		convCase("Conv3x3BF16", 6, 5, 3, 1, safetensors.BF16),
		{
			name:    "GroupNorm32",
			weights: map[string]weight{"s": f32w(randT(r, 64)), "b": {randT(r, 64), safetensors.F16}},
			inputs:  map[string]*tensor.Tensor{"x": randT(r, 2, 64, 5, 3)},
			build: func(g *onnx.Graph, w func(string) onnx.Value, in map[string]onnx.Value) onnx.Value {
				return g.GroupNorm(in["x"], 32, w("s"), w("b"), 1e-5)
			},
			ref: func(in, w map[string]*tensor.Tensor) *tensor.Tensor {
				return refGroupNorm(in["x"], 32, w["s"].Data, w["b"].Data, 1e-5)
			},
		},
		{
			name:    "GroupNorm32Rank3",
			weights: map[string]weight{"s": f32w(randT(r, 64)), "b": f32w(randT(r, 64))},
			inputs:  map[string]*tensor.Tensor{"x": randT(r, 1, 64, 7)},
			build: func(g *onnx.Graph, w func(string) onnx.Value, in map[string]onnx.Value) onnx.Value {
				return g.GroupNormRank(in["x"], 32, w("s"), w("b"), 1e-6, 3)
			},
			ref: func(in, w map[string]*tensor.Tensor) *tensor.Tensor {
				return refGroupNorm(in["x"], 32, w["s"].Data, w["b"].Data, 1e-6)
			},
		},
		{
			name:    "LayerNorm",
			weights: map[string]weight{"s": f32w(randT(r, 48)), "b": f32w(randT(r, 48))},
			inputs:  map[string]*tensor.Tensor{"x": randT(r, 2, 5, 48)},
			build: func(g *onnx.Graph, w func(string) onnx.Value, in map[string]onnx.Value) onnx.Value {
				return g.LayerNorm(in["x"], w("s"), w("b"), 1e-5)
			},
			ref: func(in, w map[string]*tensor.Tensor) *tensor.Tensor {
				return refLayerNorm(in["x"], w["s"].Data, w["b"].Data, 1e-5)
			},
		},
		{
			name:    "LinearMatMul",
			weights: map[string]weight{"w": {randT(r, 48, 32), safetensors.F16}, "b": f32w(randT(r, 48))},
			inputs:  map[string]*tensor.Tensor{"x": randT(r, 2, 5, 32)},
			build: func(g *onnx.Graph, w func(string) onnx.Value, in map[string]onnx.Value) onnx.Value {
				return g.Linear(in["x"], w("w"), w("b"))
			},
			ref: func(in, w map[string]*tensor.Tensor) *tensor.Tensor { return refLinear(in["x"], w["w"], w["b"].Data) },
		},
		{
			name:    "GemmTransB",
			weights: map[string]weight{"w": f32w(randT(r, 40, 32)), "b": f32w(randT(r, 40))},
			inputs:  map[string]*tensor.Tensor{"x": randT(r, 3, 32)},
			build: func(g *onnx.Graph, w func(string) onnx.Value, in map[string]onnx.Value) onnx.Value {
				return g.Gemm(in["x"], w("w"), w("b"), onnx.Attrs{"transB": 1})
			},
			ref: func(in, w map[string]*tensor.Tensor) *tensor.Tensor { return refLinear(in["x"], w["w"], w["b"].Data) },
		},
		unary("Softmax", randT(r, 2, 3, 17), func(g *onnx.Graph, x onnx.Value) onnx.Value { return g.Softmax(x, -1) }, nil),
		unary("Gelu", randT(r, 4, 33), func(g *onnx.Graph, x onnx.Value) onnx.Value { return g.Gelu(x) }, gelu),
		unary("QuickGelu", randT(r, 4, 33), func(g *onnx.Graph, x onnx.Value) onnx.Value { return g.QuickGelu(x) }, quickGelu),
		unary("SiLU", randT(r, 4, 33), func(g *onnx.Graph, x onnx.Value) onnx.Value { return g.SiLU(x) }, silu),
		attn("AttentionPlain", false),
		attn("MultiHeadAttention", true),
		unary("ResizeNearest2x", randT(r, 2, 3, 4, 5), func(g *onnx.Graph, x onnx.Value) onnx.Value { return g.ResizeNearest(x, 2) }, nil),
		{
			name:    "Concat",
			weights: map[string]weight{"c": f32w(randT(r, 2, 3, 4, 5))},
			inputs:  map[string]*tensor.Tensor{"x": randT(r, 2, 2, 4, 5)},
			build: func(g *onnx.Graph, w func(string) onnx.Value, in map[string]onnx.Value) onnx.Value {
				return g.Concat(1, in["x"], w("c"))
			},
			ref: func(in, w map[string]*tensor.Tensor) *tensor.Tensor { return refConcat1(in["x"], w["c"]) },
			tol: 1e-30,
		},
		{
			name:   "SliceChunk",
			inputs: map[string]*tensor.Tensor{"x": randT(r, 2, 5, 8)},
			build: func(g *onnx.Graph, w func(string) onnx.Value, in map[string]onnx.Value) onnx.Value {
				// GEGLU-style chunk: second half of the last axis, every other row
				return g.Slice(in["x"], []int64{4, 1}, []int64{8, 5}, []int64{2, 1}, []int64{1, 2})
			},
			ref: func(in, w map[string]*tensor.Tensor) *tensor.Tensor {
				x := in["x"]
				out := tensor.New(2, 2, 4)
				for b := 0; b < 2; b++ {
					for i, row := range []int{1, 3} {
						copy(out.Data[(b*2+i)*4:], x.Data[(b*5+row)*8+4:(b*5+row)*8+8])
					}
				}
				return out
			},
			tol: 1e-30,
		},
		{
			name:   "ReshapeTranspose",
			inputs: map[string]*tensor.Tensor{"x": randT(r, 2, 6, 3, 4)},
			build: func(g *onnx.Graph, w func(string) onnx.Value, in map[string]onnx.Value) onnx.Value {
				// NCHW -> [B, HW, C], as UNet transformer blocks do
				return g.Reshape(g.Transpose(in["x"], 0, 2, 3, 1), 0, -1, 6)
			},
			ref: func(in, w map[string]*tensor.Tensor) *tensor.Tensor {
				p := refPermute(in["x"], 0, 2, 3, 1)
				p.Shape = []int{2, 12, 6}
				return p
			},
			tol: 1e-30,
		},
		{
			// LoRA merge in-graph: Linear with W + s·(up·down), weights F16, factors BF16/F32.
			name: "AddLowRankLinear",
			weights: map[string]weight{"w": {randT(r, 24, 16), safetensors.F16}, "up": {randT(r, 24, 4), safetensors.BF16},
				"down": f32w(randT(r, 4, 16))},
			inputs: map[string]*tensor.Tensor{"x": randT(r, 2, 3, 16)},
			build: func(g *onnx.Graph, w func(string) onnx.Value, in map[string]onnx.Value) onnx.Value {
				return g.Linear(in["x"], g.AddLowRank(w("w"), w("up"), w("down"), 0.7, []int{24, 16}), onnx.Value{})
			},
			ref: func(in, w map[string]*tensor.Tensor) *tensor.Tensor {
				return refLinear(in["x"], refAddLowRank(w["w"], w["up"], w["down"], 0.7), nil)
			},
		},
		{
			name: "AddLowRankConv",
			weights: map[string]weight{"w": {randT(r, 5, 6, 3, 3), safetensors.F16}, "up": f32w(randT(r, 5, 2, 1, 1)),
				"down": {randT(r, 2, 6, 3, 3), safetensors.F16}},
			inputs: map[string]*tensor.Tensor{"x": randT(r, 1, 6, 7, 6)},
			build: func(g *onnx.Graph, w func(string) onnx.Value, in map[string]onnx.Value) onnx.Value {
				mw := g.AddLowRank(w("w"), w("up"), w("down"), -1.5, []int{5, 6, 3, 3})
				return g.Conv(in["x"], mw, onnx.Value{}, onnx.Attrs{"pads": []int64{1, 1, 1, 1}})
			},
			ref: func(in, w map[string]*tensor.Tensor) *tensor.Tensor {
				return refConv2d(in["x"], refAddLowRank(w["w"], w["up"], w["down"], -1.5), nil, 1, 1)
			},
		},
		castCase(safetensors.F16),
		castCase(safetensors.BF16),
	}
}

func TestOps(t *testing.T) {
	rt := testRuntime(t)
	for _, c := range opCases() {
		t.Run(c.name, func(t *testing.T) {
			runOpCase(t, rt, c)
		})
	}
}

func runOpCase(t *testing.T, rt *Runtime, c opCase) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	var raws []safetensors.RawTensor
	for name, w := range c.weights {
		raw, err := safetensors.FromFloat32(name, w.t, w.dtype)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
	}
	stored := map[string]*tensor.Tensor{}
	g := onnx.NewGraph(c.name)
	var f *safetensors.File
	if len(raws) > 0 {
		// Misalign 1: the data area starts at an odd offset, so no tensor is aligned.
		if err := safetensors.Write(path, raws, nil, safetensors.WriteOptions{Misalign: 1}); err != nil {
			t.Fatal(err)
		}
		var err error
		if f, err = safetensors.Open(path); err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for name, w := range c.weights {
			info, _ := f.Info(name)
			if info.Offset%int64(w.dtype.Size()) == 0 && w.dtype.Size() > 1 {
				t.Fatalf("weight %s is aligned (offset %d); the test wants unaligned offsets", name, info.Offset)
			}
			if stored[name], err = f.Float32(name); err != nil {
				t.Fatal(err)
			}
		}
	}
	ins := map[string]onnx.Value{}
	for name, x := range c.inputs {
		dims := make([]any, len(x.Shape))
		for i, d := range x.Shape {
			dims[i] = d
		}
		dims[0] = onnx.Dim("batch")
		ins[name] = g.Input(name, onnx.Float, dims...)
	}
	g.Output(c.build(g, func(k string) onnx.Value { return g.Weight(f, k) }, ins), "out")
	m, err := g.Model()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.NewSession(m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(context.Background(), c.inputs)
	if err != nil {
		t.Fatal(err)
	}
	got := out["out"]
	var want *tensor.Tensor
	if c.ref != nil {
		want = c.ref(c.inputs, stored)
	} else if c.name == "Softmax" {
		want = refSoftmax(c.inputs["x"])
	} else if c.name == "ResizeNearest2x" {
		want = refUpsample2(c.inputs["x"])
	}
	rel, err := compare(got, want, c.tol)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("max relative error %.2g", rel)
}

func compare(got, want *tensor.Tensor, tol float64) (float64, error) {
	if tol == 0 {
		tol = 1e-5
	}
	if !reflect.DeepEqual(got.Shape, want.Shape) {
		return 0, fmt.Errorf("shape %v, want %v", got.Shape, want.Shape)
	}
	var maxRef, maxErr float64
	worst := 0
	for i := range want.Data {
		maxRef = math.Max(maxRef, math.Abs(float64(want.Data[i])))
		if e := math.Abs(float64(got.Data[i]) - float64(want.Data[i])); e > maxErr || math.IsNaN(e) {
			maxErr, worst = e, i
		}
	}
	rel := maxErr / math.Max(maxRef, 1e-30)
	if !(rel <= tol) {
		return rel, fmt.Errorf("max relative error %.3g > %.0g (at %d: got %v want %v)", rel, tol, worst, got.Data[worst], want.Data[worst])
	}
	return rel, nil
}
