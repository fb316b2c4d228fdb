package models

import (
	"context"
	"encoding/binary"
	"io"
	"math"
	"path/filepath"
	"sort"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// MergeForBench writes the merged weights of a patched UNet model into dir/merged.safetensors,
// with the current kernels or (viaORT) the previous implementation: one ORT MatMul+Mul+Add
// session run per weight, scalar fp16↔fp32 conversions, a synced stream write. Benchmarks only.
func MergeForBench(ctx context.Context, mdl Model, dir string, viaORT bool) error {
	u := mdl.(*unetModel)
	var keys []string
	for k := range u.patches {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := filepath.Join(dir, "merged.safetensors")
	if viaORT {
		return u.m.writeMergedORT(ctx, u.f.file, keys, u.patches, out)
	}
	return u.m.writeMerged(ctx, u.f.file, keys, u.patches, out)
}

func (m *Manager) writeMergedORT(ctx context.Context, f *safetensors.File, keys []string, p Patches, path string) error {
	g := onnx.NewGraph("lora_merge")
	w := g.Input("w", onnx.Float, onnx.Dim("out"), onnx.Dim("in"))
	u := g.Input("u", onnx.Float, onnx.Dim("out"), onnx.Dim("rank"))
	d := g.Input("d", onnx.Float, onnx.Dim("rank"), onnx.Dim("in"))
	s := g.Input("s", onnx.Float, 1)
	g.Output(g.Op1("Add", nil, w, g.Op1("Mul", nil, g.Op1("MatMul", nil, u, d), s)), "out")
	model, err := g.Model()
	if err != nil {
		return err
	}
	sess, err := m.factory.NewSession(model)
	if err != nil {
		return err
	}
	defer sess.Close()
	raws := make([]safetensors.RawTensor, 0, len(keys))
	for _, k := range keys {
		info, _ := f.Info(k)
		raws = append(raws, safetensors.RawTensor{Name: k, DType: info.DType, Shape: info.Shape})
	}
	return safetensors.WriteStream(path, raws, nil, safetensors.WriteOptions{}, func(t safetensors.RawTensor, wr io.Writer) error {
		x, err := f.Float32(t.Name)
		if err != nil {
			return err
		}
		for _, wp := range p[t.Name] {
			up, down, s, out, r, in, ok := lowRankOf(wp, t.Shape)
			if !ok {
				dd, err := wp.Patch.Delta(t.Shape)
				if err != nil {
					return err
				}
				for i, v := range dd.Data {
					x.Data[i] += float32(wp.Strength) * v
				}
				continue
			}
			res, err := sess.Run(ctx, map[string]*tensor.Tensor{
				"w": tensor.FromData(x.Data, out, in), "u": tensor.FromData(up, out, r),
				"d": tensor.FromData(down, r, in), "s": tensor.FromData([]float32{s}, 1),
			})
			if err != nil {
				return err
			}
			x = tensor.FromData(res["out"].Data, t.Shape...)
		}
		buf := make([]byte, 0, len(x.Data)*t.DType.Size())
		for _, v := range x.Data {
			switch t.DType {
			case safetensors.F32:
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			case safetensors.F16:
				buf = binary.LittleEndian.AppendUint16(buf, tensor.F32ToF16(v))
			case safetensors.BF16:
				buf = binary.LittleEndian.AppendUint16(buf, tensor.F32ToBF16(v))
			}
		}
		_, err = wr.Write(buf)
		return err
	})
}
