package models

import (
	"fmt"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// Lower turns the network into an ONNX model whose weights are external data pointing into f
// (cast to float32 in-graph where stored as F16/BF16; ORT folds the casts at load).
func (n *Net) Lower(name string, f *safetensors.File) (*onnx.Model, error) {
	return n.LowerFrom(name, func(string) *safetensors.File { return f }, "")
}

// LowerFrom is Lower with weights taken from several files (src picks the file holding each
// checkpoint key); extDir, when set, is the folder holding all of them.
func (n *Net) LowerFrom(name string, src func(key string) *safetensors.File, extDir string) (*onnx.Model, error) {
	if n.err != nil {
		return nil, n.err
	}
	g := onnx.NewGraph(name)
	if extDir != "" {
		g.SetExternalDir(extDir)
	}
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
			f := src(w.Key)
			v := g.Weight(f, w.Key)
			if info, ok := f.Info(w.Key); ok && !equalInts(info.Shape, w.Dims) {
				// same bytes, another view (diffusers' Linear [C,C] as a 1×1 conv)
				shape := make([]int64, len(w.Dims))
				for i, d := range w.Dims {
					shape[i] = int64(d)
				}
				v = g.Op1("Reshape", nil, v, g.ConstInt64(shape...))
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
