package models

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"
	"unsafe"

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

// writeMerged writes W + Σ strength·delta for every key into path (checkpoint dtypes kept).
// The file is scratch: no fsync, no atomic rename. A single low-rank patch on an fp16 weight
// (the LoRA case) is merged tile by tile straight from the mapped checkpoint into fp16; other
// cases go through one fp32 copy of the weight. Writer goroutines overlap the file writes
// with the next weight's merge.
func (m *Manager) writeMerged(ctx context.Context, f *safetensors.File, keys []string, p Patches, path string) (err error) {
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
	hdr, ordered, err := safetensors.EncodeHeader(raws, nil, safetensors.WriteOptions{})
	if err != nil {
		return err
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	if _, err := out.Write(hdr); err != nil {
		return err
	}
	// Merge buffers cycle between the merging loop and two writer goroutines (copying into the
	// page cache costs about as much CPU as the merge itself, so it runs on both cores too).
	type job struct {
		b    []byte
		off  int64
		pool bool
	}
	const writers, buffers = 2, 3
	writes := make(chan job, 1)
	free := make(chan []byte, buffers)
	for range buffers {
		free <- nil
	}
	werr := make(chan error, writers)
	for range writers {
		go func() {
			var e error
			for j := range writes {
				if e == nil {
					_, e = out.WriteAt(j.b, j.off)
				}
				if j.pool {
					free <- j.b
				}
			}
			werr <- e
		}()
	}
	start := time.Now()
	var compute time.Duration
	merged := 0
	off := int64(len(hdr))
	err = func() error {
		for _, t := range ordered {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := t.DType.Size() * tensor.Numel(t.Shape)
			at := off
			off += int64(n)
			if len(p[t.Name]) == 0 {
				b, err := f.Bytes(t.Name)
				if err != nil {
					return err
				}
				writes <- job{b: b, off: at}
				continue
			}
			buf := <-free
			if cap(buf) < n {
				buf = make([]byte, n)
			}
			buf = buf[:n]
			tm := time.Now()
			err := m.mergeInto(ctx, buf, f, t, p[t.Name])
			compute += time.Since(tm)
			merged++
			if err != nil {
				free <- buf
				return fmt.Errorf("%s: %w", t.Name, err)
			}
			writes <- job{b: buf, off: at, pool: true}
		}
		return nil
	}()
	close(writes)
	for range writers {
		if e := <-werr; err == nil {
			err = e
		}
	}
	if err == nil {
		m.log.Debug("merged patched weights", "weights", merged, "file", path, "took", time.Since(start), "compute", compute)
	}
	return err
}

// mergeInto writes W + Σ strength·delta of tensor t into dst (t's dtype, len = its bytes).
// Low-rank products run on the vector kernels where the CPU has them (amd64 with FMA3/F16C),
// else on ONNX Runtime's MatMul (NEON etc.), which beats the portable Go loop.
func (m *Manager) mergeInto(ctx context.Context, dst []byte, f *safetensors.File, t safetensors.RawTensor, wps []WeightPatch) error {
	src, err := f.Bytes(t.Name)
	if err != nil {
		return err
	}
	if len(src) != len(dst) {
		return fmt.Errorf("%d bytes stored for %s%v", len(src), t.DType, t.Shape)
	}
	var active []WeightPatch
	for _, wp := range wps {
		if wp.Strength != 0 {
			active = append(active, wp)
		}
	}
	useORT := !hasFMA && m.factory != nil
	if len(active) == 1 && !useORT && t.DType == safetensors.F16 && aligned(src, 2) && aligned(dst, 2) {
		if up, down, s, out, r, in, ok := lowRankOf(active[0], t.Shape); ok {
			AddLowRankF16(u16(dst), u16(src), up, down, out, r, in, s)
			return nil
		}
	}
	x := make([]float32, tensor.Numel(t.Shape))
	if t.DType == safetensors.F16 && aligned(src, 2) {
		f16ToF32(x, u16(src))
	} else if err := safetensors.ToFloat32(x, t.DType, src); err != nil {
		return err
	}
	for _, wp := range active {
		if up, down, s, out, r, in, ok := lowRankOf(wp, t.Shape); ok {
			if !useORT {
				AddLowRankF32(x, x, up, down, out, r, in, s)
				continue
			}
			res, err := m.runMerge(ctx, map[string]*tensor.Tensor{
				"w": tensor.FromData(x, out, in), "u": tensor.FromData(up, out, r),
				"d": tensor.FromData(down, r, in), "s": tensor.FromData([]float32{s}, 1),
			})
			if err != nil {
				return fmt.Errorf("%s: %w", wp.Source, err)
			}
			if len(res.Data) != len(x) {
				return fmt.Errorf("%s: merge returned %d values for %d", wp.Source, len(res.Data), len(x))
			}
			copy(x, res.Data)
			continue
		}
		d, err := wp.Patch.Delta(t.Shape)
		if err != nil {
			return fmt.Errorf("%s: %w", wp.Source, err)
		}
		if len(d.Data) != len(x) {
			return fmt.Errorf("%s: delta has shape %v, weight %v", wp.Source, d.Shape, t.Shape)
		}
		s := float32(wp.Strength)
		for i, v := range d.Data {
			x[i] += s * v
		}
	}
	switch t.DType {
	case safetensors.F16:
		if aligned(dst, 2) {
			f32ToF16(u16(dst), x)
		} else {
			tensor.F32SliceToF16(dst, x)
		}
	case safetensors.BF16:
		tensor.F32SliceToBF16(dst, x)
	case safetensors.F32:
		for i, v := range x {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	default:
		return fmt.Errorf("cannot patch a weight stored as %s", t.DType)
	}
	return nil
}

// lowRankOf returns the factors of a plain low-rank patch that fits a weight of shape
// (up [out,r], down [r,in], s = strength·scale), ok false for other patches.
func lowRankOf(wp WeightPatch, shape []int) (up, down []float32, s float32, out, r, in int, ok bool) {
	lr, isLR := wp.Patch.(LowRank)
	if !isLR {
		return
	}
	u, d, scale := lr.Factors()
	if u == nil || d == nil || len(u.Shape) < 2 || len(d.Shape) < 2 || len(shape) < 1 {
		return
	}
	r, out = u.Shape[1], u.Shape[0]
	if r == 0 || d.Shape[0] != r || numel(u.Shape) != out*r || len(u.Data) != out*r || len(d.Data) != numel(d.Shape) {
		return
	}
	in = numel(d.Shape) / r
	if out*in != numel(shape) {
		return
	}
	return u.Data, d.Data, float32(wp.Strength * scale), out, r, in, true
}

// aligned reports whether b can be viewed as n-byte little-endian words in place.
func aligned(b []byte, n uintptr) bool {
	return nativeLE && (len(b) == 0 || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%n == 0)
}

var nativeLE = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// u16 views little-endian bytes as uint16 values (callers check aligned first).
func u16(b []byte) []uint16 {
	if len(b) < 2 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/2)
}

// runMerge evaluates w + s·(u·d) with a shape-generic ORT session (built once).
func (m *Manager) runMerge(ctx context.Context, in map[string]*tensor.Tensor) (*tensor.Tensor, error) {
	m.mergeSessOnce.Do(func() {
		g := onnx.NewGraph("lora_merge")
		w := g.Input("w", onnx.Float, onnx.Dim("out"), onnx.Dim("in"))
		u := g.Input("u", onnx.Float, onnx.Dim("out"), onnx.Dim("rank"))
		d := g.Input("d", onnx.Float, onnx.Dim("rank"), onnx.Dim("in"))
		s := g.Input("s", onnx.Float, 1)
		g.Output(g.Op1("Add", nil, w, g.Op1("Mul", nil, g.Op1("MatMul", nil, u, d), s)), "out")
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
	mergeMu     sync.Mutex
	merged      map[string]*mergedWeights
	mergedOrder []string
	work        string

	mergeSessOnce sync.Once
	mergeSess     Session // ORT merge session, used without the vector kernels only
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
