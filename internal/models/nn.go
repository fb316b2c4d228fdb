package models

import (
	"fmt"
	"math"
)

// This file is a small, shape-tracking network description that the UNet and VAE builders
// emit (one Go function per block, like stable-diffusion.cpp's model building). It is turned
// into an ONNX model by lowerONNX (onnxgraph.go). Shapes are static: one graph per input shape.

// Node is one operator.
type Node struct {
	Op, Domain string
	In, Out    []string
	Attrs      map[string]any // int64, float32, string, []int64, []float32
}

// Weight is an initializer. Exactly one of Key (a checkpoint tensor used as external data, cast
// to float32 when stored in another dtype), F32 or I64 (in-memory) is set.
type Weight struct {
	Name string
	Key  string
	F32  []float32
	I64  []int64
	Dims []int
}

// Value is a graph value: its name and static shape.
type Value struct {
	Name  string
	Shape []int
}

// Net is a network under construction.
type Net struct {
	Nodes   []Node
	Weights []Weight
	Inputs  []Value
	Outputs []Value

	// Param resolves a parameter key (relative to the component prefix) to a checkpoint key and
	// its shape; set by the component builder.
	param func(key string) (ckptKey string, shape []int, err error)
	// UseMHA selects com.microsoft MultiHeadAttention instead of MatMul/Softmax attention.
	UseMHA bool

	n       int
	flops   struct{ conv, matmul, attn float64 }
	weights map[string]Value // checkpoint key -> float32 value name
	consts  map[string]string
	err     error
	used    []string
}

func newNet(param func(string) (string, []int, error)) *Net {
	return &Net{param: param, weights: map[string]Value{}, consts: map[string]string{}}
}

// Err is the first error met while building.
func (g *Net) Err() error { return g.err }

// UsedKeys lists the checkpoint keys the network reads, in first-use order.
func (g *Net) UsedKeys() []string { return g.used }

func (g *Net) fail(err error) {
	if g.err == nil {
		g.err = err
	}
}

func (g *Net) tmp(op string) string {
	g.n++
	return fmt.Sprintf("%s_%d", op, g.n)
}

func (g *Net) node(op string, in []string, attrs map[string]any, shape []int) Value {
	out := g.tmp(op)
	g.Nodes = append(g.Nodes, Node{Op: op, In: in, Out: []string{out}, Attrs: attrs})
	return Value{Name: out, Shape: shape}
}

// Input declares a float32 graph input.
func (g *Net) Input(name string, shape ...int) Value {
	v := Value{Name: name, Shape: shape}
	g.Inputs = append(g.Inputs, v)
	return v
}

// Output marks v as graph output name.
func (g *Net) Output(v Value, name string) {
	g.Nodes = append(g.Nodes, Node{Op: "Identity", In: []string{v.Name}, Out: []string{name}})
	g.Outputs = append(g.Outputs, Value{Name: name, Shape: v.Shape})
}

// W returns the float32 value of parameter key (relative to the component prefix), checking
// its shape against want (nil = any).
func (g *Net) W(key string, want ...int) Value {
	ck, shape, err := g.param(key)
	if err != nil {
		g.fail(err)
		return Value{Name: "missing", Shape: want}
	}
	if want != nil && !equalInts(shape, want) {
		g.fail(fmt.Errorf("tensor %s has shape %v, want %v", ck, shape, want))
		return Value{Name: "missing", Shape: want}
	}
	if v, ok := g.weights[ck]; ok {
		return v
	}
	v := Value{Name: ck, Shape: shape}
	g.Weights = append(g.Weights, Weight{Name: ck, Key: ck, Dims: shape})
	g.weights[ck] = v
	g.used = append(g.used, ck)
	return v
}

// constF adds an in-memory float32 constant.
func (g *Net) constF(data []float32, dims ...int) Value {
	name := g.tmp("const")
	g.Weights = append(g.Weights, Weight{Name: name, F32: data, Dims: dims})
	return Value{Name: name, Shape: dims}
}

// constI adds (or reuses) an int64 constant.
func (g *Net) constI(data ...int64) string {
	k := fmt.Sprint(data)
	if n, ok := g.consts[k]; ok {
		return n
	}
	name := g.tmp("shape")
	g.Weights = append(g.Weights, Weight{Name: name, I64: data, Dims: []int{len(data)}})
	g.consts[k] = name
	return name
}

func (g *Net) scalar(v float32) Value {
	k := fmt.Sprintf("f%v", v)
	if n, ok := g.consts[k]; ok {
		return Value{Name: n, Shape: []int{}}
	}
	c := g.constF([]float32{v})
	c.Shape = []int{}
	g.Weights[len(g.Weights)-1].Dims = []int{}
	g.consts[k] = c.Name
	return c
}

func broadcast(a, b []int) []int {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 0; i < n; i++ {
		da, db := 1, 1
		if j := len(a) - n + i; j >= 0 {
			da = a[j]
		}
		if j := len(b) - n + i; j >= 0 {
			db = b[j]
		}
		out[i] = max(da, db)
	}
	return out
}

// Add, Mul, Sub: elementwise with broadcasting.
func (g *Net) Add(a, b Value) Value {
	return g.node("Add", []string{a.Name, b.Name}, nil, broadcast(a.Shape, b.Shape))
}
func (g *Net) Mul(a, b Value) Value {
	return g.node("Mul", []string{a.Name, b.Name}, nil, broadcast(a.Shape, b.Shape))
}
func (g *Net) Sub(a, b Value) Value {
	return g.node("Sub", []string{a.Name, b.Name}, nil, broadcast(a.Shape, b.Shape))
}

// SiLU is x·sigmoid(x).
func (g *Net) SiLU(x Value) Value {
	s := g.node("Sigmoid", []string{x.Name}, nil, x.Shape)
	return g.Mul(x, s)
}

// GELU is the exact (erf) GELU: 0.5·x·(1+erf(x/√2)).
func (g *Net) GELU(x Value) Value {
	d := g.node("Div", []string{x.Name, g.scalar(float32(math.Sqrt2)).Name}, nil, x.Shape)
	e := g.node("Erf", []string{d.Name}, nil, x.Shape)
	a := g.Add(e, g.scalar(1))
	m := g.Mul(x, a)
	return g.Mul(m, g.scalar(0.5))
}

// Reshape to a static shape.
func (g *Net) Reshape(x Value, shape ...int) Value {
	if numel(shape) != numel(x.Shape) {
		g.fail(fmt.Errorf("reshape %v to %v", x.Shape, shape))
	}
	s := make([]int64, len(shape))
	for i, d := range shape {
		s[i] = int64(d)
	}
	return g.node("Reshape", []string{x.Name, g.constI(s...)}, nil, append([]int(nil), shape...))
}

// Transpose with permutation perm.
func (g *Net) Transpose(x Value, perm ...int) Value {
	out := make([]int, len(perm))
	p := make([]int64, len(perm))
	for i, j := range perm {
		out[i] = x.Shape[j]
		p[i] = int64(j)
	}
	return g.node("Transpose", []string{x.Name}, map[string]any{"perm": p}, out)
}

// Concat along axis.
func (g *Net) Concat(axis int, xs ...Value) Value {
	out := append([]int(nil), xs[0].Shape...)
	names := make([]string, len(xs))
	out[axis] = 0
	for i, x := range xs {
		names[i] = x.Name
		out[axis] += x.Shape[axis]
	}
	return g.node("Concat", names, map[string]any{"axis": int64(axis)}, out)
}

// Slice x[start:end] along axis.
func (g *Net) Slice(x Value, axis, start, end int) Value {
	out := append([]int(nil), x.Shape...)
	out[axis] = end - start
	return g.node("Slice", []string{x.Name, g.constI(int64(start)), g.constI(int64(end)), g.constI(int64(axis))}, nil, out)
}

// MatMul with numpy semantics.
func (g *Net) MatMul(a, b Value) Value {
	n := max(len(a.Shape), len(b.Shape))
	out := broadcast(a.Shape[:len(a.Shape)-2], b.Shape[:len(b.Shape)-2])
	out = append(out, a.Shape[len(a.Shape)-2], b.Shape[len(b.Shape)-1])
	_ = n
	if a.Shape[len(a.Shape)-1] != b.Shape[len(b.Shape)-2] {
		g.fail(fmt.Errorf("matmul %v × %v", a.Shape, b.Shape))
	}
	g.flops.matmul += 2 * float64(numel(out)) * float64(a.Shape[len(a.Shape)-1])
	return g.node("MatMul", []string{a.Name, b.Name}, nil, out)
}

// Linear applies a torch Linear (weight [out,in]) to the last axis of x.
func (g *Net) Linear(x Value, key string, out int, bias bool) Value {
	in := x.Shape[len(x.Shape)-1]
	w := g.W(key+".weight", out, in)
	// com.microsoft FusedMatMul with transB reads the [out,in] weight as stored: no transposed
	// copy is folded at session creation (measured: -10% creation CPU, -5% peak RSS, same speed).
	outShape := append(append([]int(nil), x.Shape[:len(x.Shape)-1]...), out)
	g.flops.matmul += 2 * float64(numel(outShape)) * float64(in)
	y := g.node("FusedMatMul", []string{x.Name, w.Name}, map[string]any{"transB": int64(1)}, outShape)
	g.Nodes[len(g.Nodes)-1].Domain = "com.microsoft"
	if bias {
		y = g.Add(y, g.W(key+".bias", out))
	}
	return y
}

// Conv2d with a [out,in,k,k] weight and bias; pads = [top,left,bottom,right].
func (g *Net) Conv(x Value, key string, out, k, stride int, pads [4]int) Value {
	w := g.W(key+".weight", out, x.Shape[1], k, k)
	b := g.W(key+".bias", out)
	h := (x.Shape[2]+pads[0]+pads[2]-k)/stride + 1
	wd := (x.Shape[3]+pads[1]+pads[3]-k)/stride + 1
	g.flops.conv += 2 * float64(x.Shape[0]*out*h*wd) * float64(x.Shape[1]*k*k)
	return g.node("Conv", []string{x.Name, w.Name, b.Name}, map[string]any{
		"kernel_shape": []int64{int64(k), int64(k)},
		"strides":      []int64{int64(stride), int64(stride)},
		"pads":         []int64{int64(pads[0]), int64(pads[1]), int64(pads[2]), int64(pads[3])},
	}, []int{x.Shape[0], out, h, wd})
}

// Conv3 is a 3×3 conv, stride 1, padding 1.
func (g *Net) Conv3(x Value, key string, out int) Value {
	return g.Conv(x, key, out, 3, 1, [4]int{1, 1, 1, 1})
}

// Conv1 is a 1×1 conv.
func (g *Net) Conv1(x Value, key string, out int) Value {
	return g.Conv(x, key, out, 1, 1, [4]int{})
}

// GroupNorm with 32 groups over [B,C,...] and affine parameters key.weight/key.bias.
func (g *Net) GroupNorm(x Value, key string, eps float32) Value {
	const groups = 32
	c := x.Shape[1]
	if c%groups != 0 {
		g.fail(fmt.Errorf("GroupNorm %s: %d channels not divisible by 32", key, c))
		return x
	}
	b := x.Shape[0]
	r := g.Reshape(x, b, groups, numel(x.Shape)/(b*groups))
	ones := make([]float32, groups)
	for i := range ones {
		ones[i] = 1
	}
	sc := g.constOnes(groups, 1)
	bi := g.constOnes(groups, 0)
	n := g.node("InstanceNormalization", []string{r.Name, sc.Name, bi.Name}, map[string]any{"epsilon": eps}, r.Shape)
	y := g.Reshape(n, x.Shape...)
	bshape := make([]int, len(x.Shape)-1)
	bshape[0] = c
	for i := 1; i < len(bshape); i++ {
		bshape[i] = 1
	}
	w := g.Reshape(g.W(key+".weight", c), bshape...)
	bb := g.Reshape(g.W(key+".bias", c), bshape...)
	return g.Add(g.Mul(y, w), bb)
}

func (g *Net) constOnes(n int, v float32) Value {
	k := fmt.Sprintf("fill%d_%v", n, v)
	if name, ok := g.consts[k]; ok {
		return Value{Name: name, Shape: []int{n}}
	}
	d := make([]float32, n)
	for i := range d {
		d[i] = v
	}
	c := g.constF(d, n)
	g.consts[k] = c.Name
	return c
}

// LayerNorm over the last axis.
func (g *Net) LayerNorm(x Value, key string, eps float32) Value {
	c := x.Shape[len(x.Shape)-1]
	return g.node("LayerNormalization", []string{x.Name, g.W(key+".weight", c).Name, g.W(key+".bias", c).Name},
		map[string]any{"axis": int64(-1), "epsilon": eps}, x.Shape)
}

// Attention computes multi-head scaled dot-product attention of q [B,S,D] over k, v [B,L,D].
func (g *Net) Attention(q, k, v Value, heads int) Value {
	b, s, d := q.Shape[0], q.Shape[1], q.Shape[2]
	l := k.Shape[1]
	dh := d / heads
	g.flops.attn += 4 * float64(b*s*l*d)
	if g.UseMHA {
		n := g.node("MultiHeadAttention", []string{q.Name, k.Name, v.Name}, map[string]any{"num_heads": int64(heads)}, q.Shape)
		g.Nodes[len(g.Nodes)-1].Domain = "com.microsoft"
		return n
	}
	qh := g.Transpose(g.Reshape(q, b, s, heads, dh), 0, 2, 1, 3) // [B,h,S,dh]
	kh := g.Transpose(g.Reshape(k, b, l, heads, dh), 0, 2, 3, 1) // [B,h,dh,L]
	vh := g.Transpose(g.Reshape(v, b, l, heads, dh), 0, 2, 1, 3) // [B,h,L,dh]
	qh = g.Mul(qh, g.scalar(float32(1/math.Sqrt(float64(dh)))))
	w := g.MatMul(qh, kh)
	w = g.node("Softmax", []string{w.Name}, map[string]any{"axis": int64(-1)}, w.Shape)
	o := g.MatMul(w, vh)                   // [B,h,S,dh]
	g.flops.matmul -= 4 * float64(b*s*l*d) // counted as attention
	return g.Reshape(g.Transpose(o, 0, 2, 1, 3), b, s, d)
}

// ResizeNearest resizes [B,C,H,W] to [B,C,h,w] as PyTorch's nearest interpolation.
func (g *Net) ResizeNearest(x Value, h, w int) Value {
	sizes := g.constI(int64(x.Shape[0]), int64(x.Shape[1]), int64(h), int64(w))
	return g.node("Resize", []string{x.Name, "", "", sizes}, map[string]any{
		"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor",
	}, []int{x.Shape[0], x.Shape[1], h, w})
}

// Pad adds zero padding [top,left,bottom,right] to [B,C,H,W].
func (g *Net) Pad(x Value, pads [4]int) Value {
	p := g.constI(0, 0, int64(pads[0]), int64(pads[1]), 0, 0, int64(pads[2]), int64(pads[3]))
	return g.node("Pad", []string{x.Name, p}, nil, []int{x.Shape[0], x.Shape[1], x.Shape[2] + pads[0] + pads[2], x.Shape[3] + pads[1] + pads[3]})
}

func numel(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}
