package onnx

import (
	"fmt"
	"math"
)

// Element-wise and structural ops (ai.onnx opset 17 semantics).

func (g *Graph) Add(a, b Value) Value { return g.Op1("Add", nil, a, b) }
func (g *Graph) Sub(a, b Value) Value { return g.Op1("Sub", nil, a, b) }
func (g *Graph) Mul(a, b Value) Value { return g.Op1("Mul", nil, a, b) }
func (g *Graph) Div(a, b Value) Value { return g.Op1("Div", nil, a, b) }
func (g *Graph) Pow(a, b Value) Value { return g.Op1("Pow", nil, a, b) }

// MatMul is numpy-style batched matrix multiplication.
func (g *Graph) MatMul(a, b Value) Value { return g.Op1("MatMul", nil, a, b) }

func (g *Graph) Neg(x Value) Value      { return g.Op1("Neg", nil, x) }
func (g *Graph) Exp(x Value) Value      { return g.Op1("Exp", nil, x) }
func (g *Graph) Sin(x Value) Value      { return g.Op1("Sin", nil, x) }
func (g *Graph) Cos(x Value) Value      { return g.Op1("Cos", nil, x) }
func (g *Graph) Sqrt(x Value) Value     { return g.Op1("Sqrt", nil, x) }
func (g *Graph) Erf(x Value) Value      { return g.Op1("Erf", nil, x) }
func (g *Graph) Tanh(x Value) Value     { return g.Op1("Tanh", nil, x) }
func (g *Graph) Sigmoid(x Value) Value  { return g.Op1("Sigmoid", nil, x) }
func (g *Graph) Identity(x Value) Value { return g.Op1("Identity", nil, x) }
func (g *Graph) Shape(x Value) Value    { return g.Op1("Shape", nil, x) }

// Softmax over axis.
func (g *Graph) Softmax(x Value, axis int) Value { return g.Op1("Softmax", Attrs{"axis": axis}, x) }

// Cast converts x to element type to.
func (g *Graph) Cast(x Value, to DataType) Value { return g.Op1("Cast", Attrs{"to": int(to)}, x) }

// Reshape to a constant shape (0 copies the input dim, -1 is inferred).
func (g *Graph) Reshape(x Value, shape ...int64) Value {
	return g.Op1("Reshape", nil, x, g.ConstInt64(shape...))
}

// ReshapeTo reshapes x to the shape held by the int64 value shape.
func (g *Graph) ReshapeTo(x, shape Value) Value { return g.Op1("Reshape", nil, x, shape) }

// Transpose permutes dims.
func (g *Graph) Transpose(x Value, perm ...int64) Value {
	return g.Op1("Transpose", Attrs{"perm": perm}, x)
}

// Concat joins values along axis.
func (g *Graph) Concat(axis int, vs ...Value) Value {
	return g.Op1("Concat", Attrs{"axis": axis}, vs...)
}

// Split splits x along axis into pieces of the given sizes.
func (g *Graph) Split(x Value, axis int, sizes ...int64) []Value {
	return g.Op("Split", []Value{x, g.ConstInt64(sizes...)}, Attrs{"axis": axis}, len(sizes))
}

// Slice takes x[starts:ends:steps] on axes (steps may be nil for 1).
func (g *Graph) Slice(x Value, starts, ends, axes, steps []int64) Value {
	in := []Value{x, g.ConstInt64(starts...), g.ConstInt64(ends...), g.ConstInt64(axes...)}
	if steps != nil {
		in = append(in, g.ConstInt64(steps...))
	}
	return g.Op("Slice", in, nil, 1)[0]
}

// Unsqueeze inserts size-1 axes.
func (g *Graph) Unsqueeze(x Value, axes ...int64) Value {
	return g.Op1("Unsqueeze", nil, x, g.ConstInt64(axes...))
}

// Squeeze removes size-1 axes.
func (g *Graph) Squeeze(x Value, axes ...int64) Value {
	return g.Op1("Squeeze", nil, x, g.ConstInt64(axes...))
}

// Gather takes indices along axis.
func (g *Graph) Gather(x, indices Value, axis int) Value {
	return g.Op1("Gather", Attrs{"axis": axis}, x, indices)
}

// ReduceMean over axes (opset 17: axes attribute).
func (g *Graph) ReduceMean(x Value, keepDims bool, axes ...int64) Value {
	return g.Op1("ReduceMean", Attrs{"axes": axes, "keepdims": keepDims}, x)
}

// Conv is a 2-D (or N-D) convolution; b may be the zero Value. Typical attrs:
// Attrs{"pads": []int64{1,1,1,1}, "strides": []int64{2,2}}.
func (g *Graph) Conv(x, w, b Value, attrs Attrs) Value {
	return g.Op("Conv", []Value{x, w, b}, attrs, 1)[0]
}

// Gemm is alpha·A'·B' + beta·C (2-D); attrs e.g. Attrs{"transB": 1}. c may be zero.
func (g *Graph) Gemm(a, b, c Value, attrs Attrs) Value {
	return g.Op("Gemm", []Value{a, b, c}, attrs, 1)[0]
}

// Linear is torch.nn.Linear on the last axis of x (any rank): x·Wᵀ + b, with W [out,in] as
// stored in checkpoints, as com.microsoft FusedMatMul(transB=1) (CPU and CUDA kernels): no
// transposed copy of W is made at load, unlike MatMul(x, Transpose(W)), whose folded Transpose
// doubled peak memory for fp16 checkpoints in BenchmarkOpenSession1GB. b may be zero.
func (g *Graph) Linear(x, w, b Value) Value {
	y := g.OpDomain(MicrosoftDomain, "FusedMatMul", []Value{x, w}, Attrs{"transB": 1}, 1)[0]
	if !b.IsZero() {
		y = g.Add(y, b)
	}
	return y
}

// LayerNorm normalizes over the last axis (LayerNormalization, opset 17).
func (g *Graph) LayerNorm(x, scale, bias Value, eps float32) Value {
	return g.Op("LayerNormalization", []Value{x, scale, bias}, Attrs{"axis": -1, "epsilon": eps}, 1)[0]
}

// GroupNorm is torch GroupNorm on NCHW input x (rank 4) with per-channel scale and bias, built as
// Reshape→InstanceNormalization→Reshape→Mul→Add so it runs on every execution provider.
func (g *Graph) GroupNorm(x Value, groups int, scale, bias Value, eps float32) Value {
	return g.GroupNormRank(x, groups, scale, bias, eps, 4)
}

// GroupNormRank is GroupNorm for an input of the given rank (3 for [N,C,L], 4 for NCHW, ...).
func (g *Graph) GroupNormRank(x Value, groups int, scale, bias Value, eps float32, rank int) Value {
	ones := make([]float32, groups)
	zeros := make([]float32, groups)
	for i := range ones {
		ones[i] = 1
	}
	dt := g.computeT
	s, b := g.ConstFloat(ones...), g.ConstFloat(zeros...)
	if dt != Float {
		s, b = g.Cast(s, dt), g.Cast(b, dt)
	}
	r := g.Reshape(x, 0, int64(groups), -1)
	n := g.Op1("InstanceNormalization", Attrs{"epsilon": eps}, r, s, b)
	y := g.ReshapeTo(n, g.Shape(x))
	axes := make([]int64, 0, rank-2)
	for i := 1; i < rank-1; i++ {
		axes = append(axes, int64(i))
	}
	if !scale.IsZero() {
		y = g.Mul(y, g.Unsqueeze(scale, axes...))
	}
	if !bias.IsZero() {
		y = g.Add(y, g.Unsqueeze(bias, axes...))
	}
	return y
}

// Gelu is the exact (erf) GELU, as com.microsoft Gelu (CPU and CUDA kernels).
func (g *Graph) Gelu(x Value) Value {
	return g.OpDomain(MicrosoftDomain, "Gelu", []Value{x}, nil, 1)[0]
}

// GeluTanh is GELU with the tanh approximation (com.microsoft FastGelu).
func (g *Graph) GeluTanh(x Value) Value {
	return g.OpDomain(MicrosoftDomain, "FastGelu", []Value{x}, nil, 1)[0]
}

// QuickGelu is x·sigmoid(1.702·x) (CLIP ViT-L), as com.microsoft QuickGelu.
func (g *Graph) QuickGelu(x Value) Value {
	return g.OpDomain(MicrosoftDomain, "QuickGelu", []Value{x}, Attrs{"alpha": float32(1.702)}, 1)[0]
}

// SiLU is x·sigmoid(x).
func (g *Graph) SiLU(x Value) Value { return g.Mul(x, g.Sigmoid(x)) }

// ResizeNearest upsamples the two last axes of NCHW x by an integer factor, matching
// torch.nn.functional.interpolate(mode="nearest").
func (g *Graph) ResizeNearest(x Value, factor float32) Value {
	return g.Resize(x, []float32{1, 1, factor, factor}, Attrs{
		"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor",
	})
}

// Resize with per-axis scales and the given attributes.
func (g *Graph) Resize(x Value, scales []float32, attrs Attrs) Value {
	return g.Op("Resize", []Value{x, {}, g.ConstFloat(scales...)}, attrs, 1)[0]
}

// MultiHeadAttention is com.microsoft MultiHeadAttention: q [B,S,H·D], k and v [B,L,H·D] →
// [B,S,H·D], scaled by 1/√D. CPU kernel: float only.
func (g *Graph) MultiHeadAttention(q, k, v Value, heads int) Value {
	return g.OpDomain(MicrosoftDomain, "MultiHeadAttention", []Value{q, k, v}, Attrs{"num_heads": heads}, 1)[0]
}

// AttentionPlain is scaled dot-product attention with plain ONNX ops (Reshape, Transpose,
// MatMul, Softmax): q [B,S,H·D], k and v [B,L,H·D] → [B,S,H·D]; headDim is D.
func (g *Graph) AttentionPlain(q, k, v Value, heads, headDim int) Value {
	h := int64(heads)
	qh := g.Transpose(g.Reshape(q, 0, 0, h, -1), 0, 2, 1, 3) // [B,H,S,D]
	kh := g.Transpose(g.Reshape(k, 0, 0, h, -1), 0, 2, 3, 1) // [B,H,D,L]
	vh := g.Transpose(g.Reshape(v, 0, 0, h, -1), 0, 2, 1, 3) // [B,H,L,D]
	s := g.Mul(g.MatMul(qh, kh), g.Scalar(float32(1/math.Sqrt(float64(headDim)))))
	o := g.MatMul(g.Softmax(s, -1), vh)                    // [B,H,S,D]
	return g.Reshape(g.Transpose(o, 0, 2, 1, 3), 0, 0, -1) // [B,S,H·D]
}

// AddLowRank returns w + scale·(up·down) for a weight w of shape wShape ([out,in] or a conv
// [out,in,kh,kw]), up [out,r(,1,1)] and down [r,in(,kh,kw)], as one Gemm(up, down, w,
// alpha=scale, beta=1) (with Reshapes for rank ≠ 2). With constant inputs (checkpoint and LoRA
// weights) ORT folds it once at session creation into a single merged tensor; this is the
// cheapest in-graph LoRA merge measured by BenchmarkOpenSession1GB. All inputs must have the
// compute type (use Weight).
func (g *Graph) AddLowRank(w, up, down Value, scale float32, wShape []int) Value {
	if len(wShape) == 2 {
		return g.Gemm(up, down, w, Attrs{"alpha": scale, "beta": float32(1)})
	}
	if len(wShape) < 2 {
		g.fail(fmt.Errorf("onnx: AddLowRank: weight shape %v has rank < 2", wShape))
		return w
	}
	out := int64(wShape[0])
	w2 := g.Reshape(w, out, -1)
	up2 := g.Reshape(up, out, -1)
	r := g.Gemm(up2, g.Reshape(down, 0, -1), w2, Attrs{"alpha": scale, "beta": float32(1)})
	return g.Reshape(r, int64s(wShape)...)
}
