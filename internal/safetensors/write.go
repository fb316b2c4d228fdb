package safetensors

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/comfygo/comfygo/internal/tensor"
)

// RawTensor is one tensor to write: raw little-endian bytes of DType with Shape.
type RawTensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// FromFloat32 encodes t as a RawTensor of dtype F32, F16 or BF16.
func FromFloat32(name string, t *tensor.Tensor, dtype DType) (RawTensor, error) {
	r := RawTensor{Name: name, DType: dtype, Shape: append([]int(nil), t.Shape...)}
	switch dtype {
	case F32:
		r.Data = make([]byte, 4*len(t.Data))
		for i, v := range t.Data {
			binary.LittleEndian.PutUint32(r.Data[4*i:], math.Float32bits(v))
		}
	case F16:
		r.Data = make([]byte, 2*len(t.Data))
		tensor.F32SliceToF16(r.Data, t.Data)
	case BF16:
		r.Data = make([]byte, 2*len(t.Data))
		tensor.F32SliceToBF16(r.Data, t.Data)
	default:
		return r, fmt.Errorf("safetensors: cannot encode float32 tensor %q as %s", name, dtype)
	}
	return r, nil
}

// WriteOptions tunes Write. The zero value writes like the reference writer.
type WriteOptions struct {
	// Misalign shifts the data area start by this many bytes past an 8-byte boundary (1..7), which
	// makes tensors start at unaligned file offsets, as some third-party writers do. For tests.
	Misalign int
}

// WriteFloat32 writes float32 tensors as dtype (F32, F16 or BF16) to path, atomically.
func WriteFloat32(path string, tensors map[string]*tensor.Tensor, dtype DType, metadata map[string]string) error {
	raws := make([]RawTensor, 0, len(tensors))
	for name, t := range tensors {
		r, err := FromFloat32(name, t, dtype)
		if err != nil {
			return err
		}
		raws = append(raws, r)
	}
	return Write(path, raws, metadata, WriteOptions{})
}

// Write writes tensors and metadata to path atomically (temp file in the same folder, then
// rename). Order is deterministic: decreasing element size, then name.
func Write(path string, tensors []RawTensor, metadata map[string]string, opt WriteOptions) error {
	for _, t := range tensors {
		if t.Data == nil && t.DType.Size()*tensor.Numel(t.Shape) != 0 {
			return fmt.Errorf("write safetensors %q: tensor %q has no data", path, t.Name)
		}
	}
	return WriteStream(path, tensors, metadata, opt, func(t RawTensor, w io.Writer) error {
		_, err := w.Write(t.Data)
		return err
	})
}

// EncodeHeader returns the file prefix (8-byte length + padded JSON header) for tensors in
// the order Write stores them, and that order. Only Name, DType, Shape and len(Data) are used,
// except that Data may be nil for streaming writers: then the size is computed from the shape.
func EncodeHeader(tensors []RawTensor, metadata map[string]string, opt WriteOptions) ([]byte, []RawTensor, error) {
	ordered := append([]RawTensor(nil), tensors...)
	sort.SliceStable(ordered, func(i, j int) bool {
		si, sj := ordered[i].DType.Size(), ordered[j].DType.Size()
		if si != sj {
			return si > sj
		}
		return ordered[i].Name < ordered[j].Name
	})
	type entry struct {
		DType       DType    `json:"dtype"`
		Shape       []int    `json:"shape"`
		DataOffsets [2]int64 `json:"data_offsets"`
	}
	buf := []byte{'{'}
	if metadata != nil {
		m, err := json.Marshal(metadata) // map keys are sorted
		if err != nil {
			return nil, nil, err
		}
		buf = append(buf, `"__metadata__":`...)
		buf = append(buf, m...)
	}
	var pos int64
	for i, t := range ordered {
		if t.Name == "__metadata__" || t.Name == "" {
			return nil, nil, fmt.Errorf("invalid tensor name %q", t.Name)
		}
		if i > 0 && t.Name == ordered[i-1].Name {
			return nil, nil, fmt.Errorf("duplicate tensor %q", t.Name)
		}
		sz := t.DType.Size()
		if sz == 0 {
			return nil, nil, fmt.Errorf("tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		n := int64(sz)
		for _, d := range shape {
			if d < 0 {
				return nil, nil, fmt.Errorf("tensor %q: negative dimension in %v", t.Name, shape)
			}
			n *= int64(d)
		}
		if t.Data != nil && int64(len(t.Data)) != n {
			return nil, nil, fmt.Errorf("tensor %q: %d bytes for %s %v (want %d)", t.Name, len(t.Data), t.DType, shape, n)
		}
		e, err := json.Marshal(entry{t.DType, shape, [2]int64{pos, pos + n}})
		if err != nil {
			return nil, nil, err
		}
		name, _ := json.Marshal(t.Name)
		if len(buf) > 1 {
			buf = append(buf, ',')
		}
		buf = append(buf, name...)
		buf = append(buf, ':')
		buf = append(buf, e...)
		pos += n
	}
	buf = append(buf, '}')
	total := 8 + len(buf)
	pad := (8 - total%8) % 8
	pad += opt.Misalign % 8
	for range pad {
		buf = append(buf, ' ')
	}
	out := make([]byte, 8, 8+len(buf))
	binary.LittleEndian.PutUint64(out, uint64(len(buf)))
	return append(out, buf...), ordered, nil
}

// WriteStream writes a file whose tensor bytes come from fill (called once per tensor, in file
// order, with the tensor and a writer taking exactly its bytes). For large synthetic files.
func WriteStream(path string, tensors []RawTensor, metadata map[string]string, opt WriteOptions, fill func(t RawTensor, w io.Writer) error) (err error) {
	hdr, ordered, err := EncodeHeader(tensors, metadata, opt)
	if err != nil {
		return fmt.Errorf("write safetensors %q: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 1<<20)
	if _, err = w.Write(hdr); err != nil {
		return fmt.Errorf("write safetensors %q: %w", path, err)
	}
	for _, t := range ordered {
		cw := &countWriter{w: w}
		if err = fill(t, cw); err != nil {
			return fmt.Errorf("write safetensors %q: tensor %q: %w", path, t.Name, err)
		}
		if want := int64(t.DType.Size()) * int64(tensor.Numel(t.Shape)); cw.n != want {
			return fmt.Errorf("write safetensors %q: tensor %q: wrote %d bytes, want %d", path, t.Name, cw.n, want)
		}
	}
	if err = w.Flush(); err != nil {
		return fmt.Errorf("write safetensors %q: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write safetensors %q: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write safetensors %q: %w", path, err)
	}
	// CreateTemp makes the file 0600; model files are ordinary readable files.
	if err = os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write safetensors %q: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write safetensors %q: %w", path, err)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
