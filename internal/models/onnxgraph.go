package models

import (
	"fmt"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// Lower turns the network into an ONNX model whose weights are external data pointing into f
// (cast to float32 in-graph where stored as F16/BF16; ORT folds the casts at load). Weights with
// patches get W + Σ strength·delta as constant subgraphs that ORT folds at session creation
// (low-rank patches keep only their factors in the proto).
func (n *Net) Lower(name string, f *safetensors.File, patches Patches) (*onnx.Model, error) {
	if n.err != nil {
		return nil, n.err
	}
	g := onnx.NewGraph(name)
	vals := map[string]onnx.Value{"": {}}
	for _, in := range n.Inputs {
		dims := make([]any, len(in.Shape))
		for i, d := range in.Shape {
			dims[i] = d
		}
		vals[in.Name] = g.Input(in.Name, onnx.Float, dims...)
	}
	for _, w := range n.Weights {
		switch {
		case w.Key != "":
			v := g.Weight(f, w.Key)
			for _, wp := range patches[w.Key] {
				var err error
				if v, err = applyPatch(g, v, w.Dims, wp); err != nil {
					return nil, fmt.Errorf("patch %s from %s: %w", w.Key, wp.Source, err)
				}
			}
			vals[w.Name] = v
		case w.I64 != nil:
			vals[w.Name] = g.ConstInt64(w.I64...)
		default:
			vals[w.Name] = g.Const(&tensor.Tensor{Shape: w.Dims, Data: w.F32})
		}
	}
	for _, nd := range n.Nodes {
		ins := make([]onnx.Value, len(nd.In))
		for i, x := range nd.In {
			v, ok := vals[x]
			if !ok {
				return nil, fmt.Errorf("lower %s: node %s uses undefined value %q", name, nd.Op, x)
			}
			ins[i] = v
		}
		if nd.Op == "Identity" && len(n.Outputs) > 0 && isOutput(n, nd.Out[0]) {
			g.Output(ins[0], nd.Out[0])
			continue
		}
		var attrs onnx.Attrs
		if nd.Attrs != nil {
			attrs = onnx.Attrs(nd.Attrs)
		}
		outs := g.OpDomain(nd.Domain, nd.Op, ins, attrs, len(nd.Out))
		for i, o := range nd.Out {
			vals[o] = outs[i]
		}
	}
	return g.Model()
}

func isOutput(n *Net, name string) bool {
	for _, o := range n.Outputs {
		if o.Name == name {
			return true
		}
	}
	return false
}

// applyPatch returns base + strength·delta as a constant subgraph.
func applyPatch(g *onnx.Graph, base onnx.Value, dims []int, wp WeightPatch) (onnx.Value, error) {
	if lr, ok := wp.Patch.(LowRank); ok {
		up, down, scale := lr.Factors()
		if up != nil && down != nil && len(up.Shape) >= 2 && len(down.Shape) >= 2 {
			r := up.Shape[1]
			out := up.Shape[0]
			in := numel(down.Shape) / down.Shape[0]
			if down.Shape[0] == r && numel(up.Shape) == out*r && out*in == numel(dims) {
				u := g.Const(tensor.FromData(up.Data, out, r))
				d := g.Const(tensor.FromData(down.Data, r, in))
				delta := g.Op1("MatMul", nil, u, d)
				shape := make([]int64, len(dims))
				for i, x := range dims {
					shape[i] = int64(x)
				}
				delta = g.Op1("Reshape", nil, delta, g.ConstInt64(shape...))
				delta = g.Op1("Mul", nil, delta, g.ScalarFloat(float32(wp.Strength*scale)))
				return g.Op1("Add", nil, base, delta), nil
			}
		}
	}
	d, err := wp.Patch.Delta(dims)
	if err != nil {
		return base, err
	}
	if numel(d.Shape) != numel(dims) {
		return base, fmt.Errorf("delta has shape %v, weight %v", d.Shape, dims)
	}
	s := float32(wp.Strength)
	data := make([]float32, len(d.Data))
	for i, x := range d.Data {
		data[i] = s * x
	}
	return g.Op1("Add", nil, base, g.Const(tensor.FromData(data, dims...))), nil
}
