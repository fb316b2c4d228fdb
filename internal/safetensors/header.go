// Package safetensors reads and writes .safetensors files.
//
// Reading memory-maps the file (read-only, MAP_SHARED) and validates the header strictly, as the
// reference implementation does: the 8-byte little-endian header length must fit the file, the
// header must be a UTF-8 JSON object, every tensor must have a known dtype, a non-negative shape
// and data_offsets whose length matches numel×element size, and the tensors must tile the data
// area exactly (no holes, no overlaps, nothing trailing). `__metadata__` must be a string→string
// map.
//
//	f, err := safetensors.Open(path)
//	defer f.Close()
//	info, ok := f.Info("model.diffusion_model.out.2.weight") // DType, Shape, absolute Offset, Size
//	t, err := f.Float32(key)                                // F16/BF16/F64/ints converted to float32
//	b, err := f.Bytes(key)                                  // zero-copy view; valid until Close
//
// Writing (Write, WriteFloat32) is atomic (temp file + rename) and deterministic (tensors sorted
// by decreasing alignment, then name; header padded so data starts on an 8-byte boundary).
// Info(key).Offset is the absolute file offset of the tensor bytes, i.e. what an ONNX external-data
// reference into this file needs.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"unicode/utf8"
)

// MaxHeaderLen is the largest header accepted (as in the reference reader).
const MaxHeaderLen = 100_000_000

// DType is a safetensors element type name, e.g. "F16".
type DType string

// The element types this package knows.
const (
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	F64    DType = "F64"
	I64    DType = "I64"
	I32    DType = "I32"
	I16    DType = "I16"
	I8     DType = "I8"
	U64    DType = "U64"
	U32    DType = "U32"
	U16    DType = "U16"
	U8     DType = "U8"
	BOOL   DType = "BOOL"
	F8E4M3 DType = "F8_E4M3" // recognised; conversion to float32 unsupported
	F8E5M2 DType = "F8_E5M2" // recognised; conversion to float32 unsupported
)

var dtypeSizes = map[DType]int{
	F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I16: 2, I8: 1,
	U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1, F8E4M3: 1, F8E5M2: 1,
}

// Size is the element size in bytes, 0 for an unknown dtype.
func (d DType) Size() int { return dtypeSizes[d] }

// Known reports whether d is a dtype this package recognises.
func (d DType) Known() bool { return dtypeSizes[d] != 0 }

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name   string
	DType  DType
	Shape  []int
	Offset int64 // absolute byte offset of the data in the file
	Size   int64 // bytes
}

// Numel is the number of elements (1 for a scalar).
func (t TensorInfo) Numel() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// Header is a parsed, validated safetensors header.
type Header struct {
	Tensors   map[string]TensorInfo
	Metadata  map[string]string
	DataStart int64 // absolute offset of the data area (8 + header length)
}

type rawEntry struct {
	DType       DType   `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// ParseHeader parses and validates the header of a complete safetensors file image (all of
// the file's bytes; only len(file) of the data area is used, for the bounds checks).
func ParseHeader(file []byte) (*Header, error) {
	if len(file) < 8 {
		return nil, fmt.Errorf("safetensors: file too short (%d bytes) for the 8-byte header length", len(file))
	}
	return parse(file[8:], binary.LittleEndian.Uint64(file), int64(len(file)))
}

// parse validates header bytes hdr (starting right after the length prefix; at least n bytes)
// for a file of fileSize bytes.
func parse(rest []byte, n uint64, fileSize int64) (*Header, error) {
	if n > MaxHeaderLen {
		return nil, fmt.Errorf("safetensors: header length %d exceeds the limit %d", n, MaxHeaderLen)
	}
	if int64(n)+8 > fileSize || uint64(len(rest)) < n {
		return nil, fmt.Errorf("safetensors: header length %d runs past the end of the file (%d bytes); file truncated or not safetensors", n, fileSize)
	}
	hdr := rest[:n]
	if !utf8.Valid(hdr) {
		return nil, errors.New("safetensors: header is not valid UTF-8")
	}
	trimmed := bytes.TrimLeft(hdr, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, errors.New("safetensors: header is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("safetensors: header is not a JSON object")
	}
	h := &Header{Tensors: map[string]TensorInfo{}, DataStart: 8 + int64(n)}
	dataLen := fileSize - h.DataStart
	seen := map[string]bool{}
	type span struct {
		b, e int64
		name string
	}
	var spans []span
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("safetensors: bad header JSON: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("safetensors: bad header JSON: key is not a string")
		}
		if seen[name] {
			return nil, fmt.Errorf("safetensors: duplicate header entry %q", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("safetensors: bad header JSON at %q: %w", name, err)
		}
		if name == "__metadata__" {
			m := map[string]string{}
			if err := strictUnmarshal(raw, &m); err != nil {
				return nil, fmt.Errorf("safetensors: __metadata__ must map strings to strings: %w", err)
			}
			h.Metadata = m
			continue
		}
		var e rawEntry
		if err := strictUnmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: bad entry: %w", name, err)
		}
		if e.DType == "" {
			return nil, fmt.Errorf("safetensors: tensor %q: missing dtype", name)
		}
		size := e.DType.Size()
		if size == 0 {
			return nil, fmt.Errorf("safetensors: tensor %q: unsupported dtype %q (known: F32 F16 BF16 F64 I64 I32 I16 I8 U64 U32 U16 U8 BOOL F8_E4M3 F8_E5M2)", name, e.DType)
		}
		if e.Shape == nil {
			return nil, fmt.Errorf("safetensors: tensor %q: missing shape", name)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("safetensors: tensor %q: data_offsets must be [begin, end]", name)
		}
		shape := make([]int, len(e.Shape))
		numel := uint64(1)
		for i, d := range e.Shape {
			if d < 0 {
				return nil, fmt.Errorf("safetensors: tensor %q: invalid dimension %d in shape %v", name, d, e.Shape)
			}
			shape[i] = int(d)
			hi, lo := bits.Mul64(numel, uint64(d))
			if hi != 0 || lo > math.MaxInt64/8 {
				return nil, fmt.Errorf("safetensors: tensor %q: shape %v too large", name, e.Shape)
			}
			numel = lo
		}
		b, en := e.DataOffsets[0], e.DataOffsets[1]
		if b < 0 || en < b {
			return nil, fmt.Errorf("safetensors: tensor %q: invalid data_offsets [%d, %d]", name, b, en)
		}
		if en > dataLen {
			return nil, fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] past the end of the data area (%d bytes); file truncated?", name, b, en, dataLen)
		}
		if want := int64(numel) * int64(size); en-b != want {
			return nil, fmt.Errorf("safetensors: tensor %q: %d data bytes but dtype %s × shape %v needs %d", name, en-b, e.DType, shape, want)
		}
		h.Tensors[name] = TensorInfo{Name: name, DType: e.DType, Shape: shape, Offset: h.DataStart + b, Size: en - b}
		spans = append(spans, span{b, en, name})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("safetensors: bad header JSON: %w", err)
	}
	// Anything after the object must be padding.
	if off := dec.InputOffset(); len(bytes.TrimRight(hdr[off:], " \t\r\n")) != 0 {
		return nil, errors.New("safetensors: trailing bytes after the header JSON object")
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].b != spans[j].b {
			return spans[i].b < spans[j].b
		}
		return spans[i].e < spans[j].e
	})
	var pos int64
	var prev string
	for _, s := range spans {
		if s.b < pos {
			return nil, fmt.Errorf("safetensors: tensors %q and %q overlap (offset %d < %d)", prev, s.name, s.b, pos)
		}
		if s.b > pos {
			return nil, fmt.Errorf("safetensors: hole in the data area before tensor %q (offset %d, expected %d)", s.name, s.b, pos)
		}
		pos, prev = s.e, s.name
	}
	if pos != dataLen {
		return nil, fmt.Errorf("safetensors: data area is %d bytes but tensors cover %d (trailing or missing data)", dataLen, pos)
	}
	return h, nil
}

func strictUnmarshal(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}

// Keys returns the tensor names, sorted.
func (h *Header) Keys() []string {
	keys := make([]string, 0, len(h.Tensors))
	for k := range h.Tensors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
