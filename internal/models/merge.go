package models

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// LoRA-patched weights are merged once per (checkpoint, patch set) into a safetensors file in
// the Manager's work folder, in the checkpoint's own dtype (ComfyUI merges in fp32 and rounds
// back to the weight's dtype). UNet sessions then read patched weights from that file and the
// others from a hard link of the checkpoint in the same folder (ORT wants all external data in
// one folder). Merging in the ONNX graph instead makes ORT's constant folding hold several
// full-size fp32 copies (OOM for SD1.5 + LCM-LoRA on 24 GB), and a proto holding merged weights
// exceeds protobuf's 2 GiB.

// maxMergedSets is how many merged patch sets stay on disk.
const maxMergedSets = 4

// mergedWeights is a merged-weights file plus the checkpoint link next to it.
type mergedWeights struct {
	merged *safetensors.File // patched tensors (all UNet tensors when full is set)
	ckpt   *safetensors.File // hard link of the checkpoint, nil when full
	dir    string
}

func (mw *mergedWeights) close() {
	if mw.merged != nil {
		mw.merged.Close()
	}
	if mw.ckpt != nil {
		mw.ckpt.Close()
	}
}

// source returns the file holding key for a patched session.
func (mw *mergedWeights) source(key string) *safetensors.File {
	if mw.merged.Has(key) || mw.ckpt == nil {
		return mw.merged
	}
	return mw.ckpt
}

// workDir returns the Manager's scratch folder (created on first use, removed by Close).
func (m *Manager) workDir() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.work != "" {
		return m.work, nil
	}
	base := os.Getenv("COMFYGO_WORK_DIR")
	removeStaleWorkDirs(base)
	d, err := os.MkdirTemp(base, fmt.Sprintf("comfygo-merged-%d-", os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("model work folder: %w", err)
	}
	m.work = d
	return d, nil
}

// mergedFor returns (building on first use) the merged weights of patch set p on file f.
func (m *Manager) mergedFor(ctx context.Context, f *ckptFile, p Patches, pkey string) (*mergedWeights, error) {
	key := f.ident + "|" + pkey
	m.mergeMu.Lock()
	defer m.mergeMu.Unlock()
	if mw, ok := m.merged[key]; ok {
		return mw, nil
	}
	dir, err := m.workDir()
	if err != nil {
		return nil, err
	}
	sub, err := os.MkdirTemp(dir, "unet-")
	if err != nil {
		return nil, err
	}
	mw := &mergedWeights{dir: sub}
	link := filepath.Join(sub, "checkpoint.safetensors")
	full := os.Link(f.path, link) != nil
	if !full {
		if mw.ckpt, err = safetensors.Open(link); err != nil {
			return nil, err
		}
	}
	var keys []string
	for k := range f.header.Tensors {
		if _, patched := p[k]; patched || (full && len(k) > len(UNetPrefix) && k[:len(UNetPrefix)] == UNetPrefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := filepath.Join(sub, "merged.safetensors")
	if err := m.writeMerged(ctx, f.file, keys, p, out); err != nil {
		mw.close()
		return nil, fmt.Errorf("merge patches: %w", err)
	}
	if mw.merged, err = safetensors.Open(out); err != nil {
		mw.close()
		return nil, err
	}
	if m.merged == nil {
		m.merged = map[string]*mergedWeights{}
	}
	m.merged[key] = mw
	m.mergedOrder = append(m.mergedOrder, key)
	// Keep the newest few merged sets on disk. Sessions built from an evicted set keep working:
	// ORT has copied (cast/folded) the weights, and unlinked mapped files stay valid on Linux.
	for len(m.mergedOrder) > maxMergedSets {
		old := m.mergedOrder[0]
		m.mergedOrder = m.mergedOrder[1:]
		if o := m.merged[old]; o != nil {
			o.close()
			os.RemoveAll(o.dir)
			delete(m.merged, old)
		}
	}
	return mw, nil
}

// writeMerged streams W + Σ strength·delta for every key into path (checkpoint dtypes kept).
func (m *Manager) writeMerged(ctx context.Context, f *safetensors.File, keys []string, p Patches, path string) error {
	raws := make([]safetensors.RawTensor, 0, len(keys))
	for _, k := range keys {
		info, ok := f.Info(k)
		if !ok {
			return fmt.Errorf("patch target %q is not in the checkpoint", k)
		}
		dt := info.DType
		switch dt {
		case safetensors.F32, safetensors.F16, safetensors.BF16:
		default:
			if len(p[k]) > 0 {
				return fmt.Errorf("cannot patch %q stored as %s", k, dt)
			}
		}
		raws = append(raws, safetensors.RawTensor{Name: k, DType: dt, Shape: info.Shape})
	}
	return safetensors.WriteStream(path, raws, nil, safetensors.WriteOptions{}, func(t safetensors.RawTensor, w io.Writer) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(p[t.Name]) == 0 {
			b, err := f.Bytes(t.Name)
			if err != nil {
				return err
			}
			_, err = w.Write(b)
			return err
		}
		x, err := f.Float32(t.Name)
		if err != nil {
			return err
		}
		for _, wp := range p[t.Name] {
			if x, err = m.applyPatch(ctx, x, wp); err != nil {
				return fmt.Errorf("%s (%s): %w", t.Name, wp.Source, err)
			}
		}
		return writeAs(w, x.Data, t.DType)
	})
}

func writeAs(w io.Writer, data []float32, dt safetensors.DType) error {
	const chunk = 1 << 16
	var buf []byte
	for i := 0; i < len(data); i += chunk {
		part := data[i:min(i+chunk, len(data))]
		buf = buf[:0]
		for _, v := range part {
			switch dt {
			case safetensors.F32:
				buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			case safetensors.F16:
				buf = binary.LittleEndian.AppendUint16(buf, tensor.F32ToF16(v))
			case safetensors.BF16:
				buf = binary.LittleEndian.AppendUint16(buf, tensor.F32ToBF16(v))
			}
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// applyPatch returns W + strength·delta in fp32; low-rank products run on ONNX Runtime.
func (m *Manager) applyPatch(ctx context.Context, w *tensor.Tensor, wp WeightPatch) (*tensor.Tensor, error) {
	if wp.Strength == 0 {
		return w, nil
	}
	if lr, ok := wp.Patch.(LowRank); ok {
		up, down, scale := lr.Factors()
		if up != nil && down != nil && len(up.Shape) >= 2 && len(down.Shape) >= 2 {
			r, out := up.Shape[1], up.Shape[0]
			in := numel(down.Shape) / down.Shape[0]
			if down.Shape[0] == r && numel(up.Shape) == out*r && out*in == len(w.Data) {
				s := tensor.FromData([]float32{float32(wp.Strength * scale)}, 1)
				res, err := m.runMerge(ctx, map[string]*tensor.Tensor{
					"w": tensor.FromData(w.Data, out, in),
					"u": tensor.FromData(up.Data, out, r),
					"d": tensor.FromData(down.Data, r, in),
					"s": s,
				})
				if err != nil {
					return nil, err
				}
				return tensor.FromData(res.Data, w.Shape...), nil
			}
		}
	}
	d, err := wp.Patch.Delta(w.Shape)
	if err != nil {
		return nil, err
	}
	if len(d.Data) != len(w.Data) {
		return nil, fmt.Errorf("delta has shape %v, weight %v", d.Shape, w.Shape)
	}
	s := float32(wp.Strength)
	out := w.Clone()
	for i, v := range d.Data {
		out.Data[i] += s * v
	}
	return out, nil
}

// runMerge evaluates w + s·(u·d) with a shape-generic ORT session (built once).
func (m *Manager) runMerge(ctx context.Context, in map[string]*tensor.Tensor) (*tensor.Tensor, error) {
	m.mergeSessOnce.Do(func() {
		g := onnx.NewGraph("lora_merge")
		w := g.Input("w", onnx.Float, onnx.Dim("out"), onnx.Dim("in"))
		u := g.Input("u", onnx.Float, onnx.Dim("out"), onnx.Dim("rank"))
		d := g.Input("d", onnx.Float, onnx.Dim("rank"), onnx.Dim("in"))
		s := g.Input("s", onnx.Float, 1)
		delta := g.Op1("Mul", nil, g.Op1("MatMul", nil, u, d), s)
		g.Output(g.Op1("Add", nil, w, delta), "out")
		model, err := g.Model()
		if err == nil {
			m.mergeSess, err = m.factory.NewSession(model)
		}
		m.mergeErr = err
	})
	if m.mergeErr != nil {
		return nil, m.mergeErr
	}
	out, err := m.mergeSess.Run(ctx, in)
	if err != nil {
		return nil, err
	}
	return out["out"], nil
}

// mergeState is embedded in Manager.
type mergeState struct {
	mergeMu       sync.Mutex
	merged        map[string]*mergedWeights
	mergedOrder   []string
	work          string
	mergeSessOnce sync.Once
	mergeSess     Session
	mergeErr      error
}

func (m *Manager) closeMerged() {
	m.mergeMu.Lock()
	defer m.mergeMu.Unlock()
	for k, mw := range m.merged {
		mw.close()
		delete(m.merged, k)
	}
	if m.mergeSess != nil {
		m.mergeSess.Close()
	}
	if m.work != "" {
		os.RemoveAll(m.work)
	}
}

// removeStaleWorkDirs deletes merged-weight folders left by comfygo processes that no longer
// run (killed before Close).
func removeStaleWorkDirs(base string) {
	if base == "" {
		base = os.TempDir()
	}
	dirs, _ := filepath.Glob(filepath.Join(base, "comfygo-merged-*-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "comfygo-merged-%d-", &pid); err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}
