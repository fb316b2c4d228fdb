package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// DataType is an ONNX TensorProto element type.
type DataType int32

// ONNX element types.
const (
	Float    DataType = 1
	Uint8    DataType = 2
	Int8     DataType = 3
	Uint16   DataType = 4
	Int16    DataType = 5
	Int32    DataType = 6
	Int64    DataType = 7
	Bool     DataType = 9
	Float16  DataType = 10
	Double   DataType = 11
	Uint32   DataType = 12
	Uint64   DataType = 13
	BFloat16 DataType = 16
	F8E4M3FN DataType = 17
	F8E5M2   DataType = 19
)

// Versions written into every model.
const (
	IRVersion        = 8
	Opset            = 17 // ai.onnx
	MicrosoftOpset   = 1  // com.microsoft
	MicrosoftDomain  = "com.microsoft"
	producerName     = "comfygo"
	minExternalBytes = 0
)

// FromSafetensors maps a safetensors dtype to the ONNX element type.
func FromSafetensors(d safetensors.DType) (DataType, error) {
	switch d {
	case safetensors.F32:
		return Float, nil
	case safetensors.F16:
		return Float16, nil
	case safetensors.BF16:
		return BFloat16, nil
	case safetensors.F64:
		return Double, nil
	case safetensors.I64:
		return Int64, nil
	case safetensors.I32:
		return Int32, nil
	case safetensors.I16:
		return Int16, nil
	case safetensors.I8:
		return Int8, nil
	case safetensors.U64:
		return Uint64, nil
	case safetensors.U32:
		return Uint32, nil
	case safetensors.U16:
		return Uint16, nil
	case safetensors.U8:
		return Uint8, nil
	case safetensors.BOOL:
		return Bool, nil
	case safetensors.F8E4M3:
		return F8E4M3FN, nil
	case safetensors.F8E5M2:
		return F8E5M2, nil
	}
	return 0, fmt.Errorf("onnx: no ONNX type for safetensors dtype %q", d)
}

// Value is a named tensor in a graph (an input, initializer or node output). The zero Value
// stands for an omitted optional input.
type Value struct{ name string }

// Name is the value's name in the graph.
func (v Value) Name() string { return v.name }

// IsZero reports whether v is the omitted-input placeholder.
func (v Value) IsZero() bool { return v.name == "" }

// Attrs are node attributes: int, int64, float32, float64, string, []int, []int64, []float32,
// []string, or *tensor.Tensor (a float TENSOR attribute).
type Attrs map[string]any

// Dim is a symbolic dimension name for Graph.Input (e.g. Dim("batch")); ints are static.
type Dim string

type node struct {
	op, domain, name string
	inputs, outputs  []string
	attrs            Attrs
}

type valueInfo struct {
	name  string
	dtype DataType
	dims  []any // int64 or string (symbolic)
}

type initializer struct {
	name  string
	dtype DataType
	dims  []int64
	raw   []byte // in-proto data, or nil for external
	// external data
	file   string // absolute path of the file holding the data
	offset int64
	length int64
}

// Graph builds one ONNX graph. Builder methods never return errors: the first error is kept
// and reported by Model (so network code reads like the network).
type Graph struct {
	name     string
	nodes    []node
	inits    []initializer
	inputs   []valueInfo
	outputs  []valueInfo
	used     map[string]bool
	counter  map[string]int
	err      error
	weights  map[string]Value // cache: file|key|dtype -> value
	extDir   string
	usesMS   bool
	computeT DataType
}

// NewGraph starts an empty graph. Float weights are cast to Float (fp32) unless
// SetComputeType says otherwise.
func NewGraph(name string) *Graph {
	return &Graph{name: name, used: map[string]bool{}, counter: map[string]int{}, weights: map[string]Value{}, computeT: Float}
}

// SetComputeType sets the element type Weight casts floating-point weights to (Float for CPU,
// Float16 for fp16 CUDA graphs).
func (g *Graph) SetComputeType(t DataType) { g.computeT = t }

// ComputeType is the type set by SetComputeType (Float by default).
func (g *Graph) ComputeType() DataType { return g.computeT }

// SetExternalDir sets the folder external-data locations are written relative to (it must
// contain every safetensors file used, possibly in subfolders). By default it is the folder of
// the first safetensors file used.
func (g *Graph) SetExternalDir(dir string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		g.fail(fmt.Errorf("onnx: external dir %q: %w", dir, err))
		return
	}
	g.extDir = abs
}

// Err is the first error recorded while building.
func (g *Graph) Err() error { return g.err }

func (g *Graph) fail(err error) {
	if g.err == nil {
		g.err = err
	}
}

// fresh returns a unique name derived from base.
func (g *Graph) fresh(base string) string {
	if !g.used[base] {
		g.used[base] = true
		return base
	}
	for {
		g.counter[base]++
		n := base + "_" + strconv.Itoa(g.counter[base])
		if !g.used[n] {
			g.used[n] = true
			return n
		}
	}
}

func (g *Graph) claim(name string) bool {
	if name == "" || g.used[name] {
		g.fail(fmt.Errorf("onnx: graph %q: duplicate or empty name %q", g.name, name))
		return false
	}
	g.used[name] = true
	return true
}

// Input declares a graph input. Dims are ints (static) or Dim / string (symbolic, e.g. "batch").
func (g *Graph) Input(name string, dtype DataType, dims ...any) Value {
	g.claim(name)
	vi := valueInfo{name: name, dtype: dtype}
	for _, d := range dims {
		switch d := d.(type) {
		case int:
			vi.dims = append(vi.dims, int64(d))
		case int64:
			vi.dims = append(vi.dims, d)
		case Dim:
			vi.dims = append(vi.dims, string(d))
		case string:
			vi.dims = append(vi.dims, d)
		default:
			g.fail(fmt.Errorf("onnx: input %q: bad dim %v (%T)", name, d, d))
		}
	}
	g.inputs = append(g.inputs, vi)
	return Value{name}
}

// Output marks v as a graph output called name (an Identity node is added when renaming).
func (g *Graph) Output(v Value, name string) {
	if v.name != name {
		g.claim(name)
		g.nodes = append(g.nodes, node{op: "Identity", name: g.fresh("Identity_" + name), inputs: []string{v.name}, outputs: []string{name}})
	}
	g.outputs = append(g.outputs, valueInfo{name: name})
}

// OutputTyped is Output with a declared element type (dims unknown).
func (g *Graph) OutputTyped(v Value, name string, dtype DataType) {
	g.Output(v, name)
	g.outputs[len(g.outputs)-1].dtype = dtype
}

// Op adds a node of the ai.onnx domain with nOut outputs.
func (g *Graph) Op(op string, inputs []Value, attrs Attrs, nOut int) []Value {
	return g.OpDomain("", op, inputs, attrs, nOut)
}

// Op1 is Op for the common single-output case.
func (g *Graph) Op1(op string, attrs Attrs, inputs ...Value) Value {
	return g.OpDomain("", op, inputs, attrs, 1)[0]
}

// OpDomain adds a node of the given domain ("" = ai.onnx, "com.microsoft").
func (g *Graph) OpDomain(domain, op string, inputs []Value, attrs Attrs, nOut int) []Value {
	name := g.fresh(op)
	n := node{op: op, domain: domain, name: name, attrs: attrs}
	for _, v := range inputs {
		n.inputs = append(n.inputs, v.name)
	}
	// trailing omitted inputs are dropped
	for len(n.inputs) > 0 && n.inputs[len(n.inputs)-1] == "" {
		n.inputs = n.inputs[:len(n.inputs)-1]
	}
	outs := make([]Value, nOut)
	for i := range outs {
		o := g.fresh(name + "_o" + strconv.Itoa(i))
		n.outputs = append(n.outputs, o)
		outs[i] = Value{o}
	}
	if domain == MicrosoftDomain {
		g.usesMS = true
	} else if domain != "" {
		g.fail(fmt.Errorf("onnx: unsupported domain %q", domain))
	}
	g.nodes = append(g.nodes, n)
	return outs
}

// --- initializers ---

// InitializerFromSafetensors adds tensor key of f as an initializer stored as external data
// pointing at the tensor's bytes inside the original file (no copy), in its stored dtype.
// Repeated calls for the same tensor return the same value.
func (g *Graph) InitializerFromSafetensors(f *safetensors.File, key string) Value {
	ck := f.Path() + "\x00" + key + "\x00raw"
	if v, ok := g.weights[ck]; ok {
		return v
	}
	info, ok := f.Info(key)
	if !ok {
		g.fail(fmt.Errorf("onnx: %s has no tensor %q", filepath.Base(f.Path()), key))
		return Value{g.fresh("missing")}
	}
	dt, err := FromSafetensors(info.DType)
	if err != nil {
		g.fail(fmt.Errorf("onnx: tensor %q: %w", key, err))
		return Value{g.fresh("missing")}
	}
	name := g.fresh(key)
	in := initializer{name: name, dtype: dt, dims: int64s(info.Shape), file: f.Path(), offset: info.Offset, length: info.Size}
	if info.Size == 0 { // ORT refuses zero-length external data; store empty raw data instead
		in.raw, in.file = []byte{}, ""
	}
	g.inits = append(g.inits, in)
	v := Value{name}
	g.weights[ck] = v
	return v
}

// Weight returns tensor key of f as a value of the graph's compute type: the external
// initializer itself when the dtypes agree, else the initializer followed by a Cast (ORT
// constant-folds the Cast once at session creation). Integer tensors are returned uncast.
func (g *Graph) Weight(f *safetensors.File, key string) Value {
	ck := f.Path() + "\x00" + key + "\x00" + strconv.Itoa(int(g.computeT))
	if v, ok := g.weights[ck]; ok {
		return v
	}
	raw := g.InitializerFromSafetensors(f, key)
	info, _ := f.Info(key)
	v := raw
	switch info.DType {
	case safetensors.F16, safetensors.BF16, safetensors.F32, safetensors.F64:
		if dt, _ := FromSafetensors(info.DType); dt != g.computeT {
			v = g.Cast(raw, g.computeT)
		}
	case safetensors.F8E4M3, safetensors.F8E5M2:
		g.fail(fmt.Errorf("onnx: tensor %q is %s: fp8 weights are not supported", key, info.DType))
	}
	g.weights[ck] = v
	return v
}

// InitializerFromTensor adds t as a float32 initializer with its data inside the model proto
// (copied at Model.Bytes). Use it for small or derived tensors; the proto must stay < 2 GiB.
func (g *Graph) InitializerFromTensor(name string, t *tensor.Tensor) Value {
	raw := make([]byte, 4*len(t.Data))
	for i, x := range t.Data {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return g.InitializerRaw(name, Float, t.Shape, raw)
}

// InitializerRaw adds an initializer from raw little-endian bytes (kept by reference until
// Model.Bytes). An empty name picks a fresh one.
func (g *Graph) InitializerRaw(name string, dtype DataType, shape []int, raw []byte) Value {
	if name == "" {
		name = g.fresh("const")
	} else if !g.claim(name) {
		return Value{name}
	}
	g.inits = append(g.inits, initializer{name: name, dtype: dtype, dims: int64s(shape), raw: raw})
	return Value{name}
}

// ConstInt64 is a 1-D int64 constant initializer (shapes, axes, ...).
func (g *Graph) ConstInt64(vals ...int64) Value {
	raw := make([]byte, 8*len(vals))
	for i, x := range vals {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(x))
	}
	return g.InitializerRaw("", Int64, []int{len(vals)}, raw)
}

// ConstFloat is a 1-D float32 constant.
func (g *Graph) ConstFloat(vals ...float32) Value {
	return g.constF(vals, []int{len(vals)})
}

// Scalar is a 0-D constant of the compute type (float32 or float16) for element-wise ops.
func (g *Graph) Scalar(f float32) Value {
	if g.computeT == Float16 {
		h := tensor.F32ToF16(f)
		return g.InitializerRaw("", Float16, []int{}, []byte{byte(h), byte(h >> 8)})
	}
	return g.constF([]float32{f}, []int{})
}

// ScalarFloat is a 0-D float32 constant regardless of the compute type.
func (g *Graph) ScalarFloat(f float32) Value { return g.constF([]float32{f}, []int{}) }

func (g *Graph) constF(vals []float32, shape []int) Value {
	raw := make([]byte, 4*len(vals))
	for i, x := range vals {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	return g.InitializerRaw("", Float, shape, raw)
}

// Const is a float32 constant tensor (data in the proto).
func (g *Graph) Const(t *tensor.Tensor) Value { return g.constF(t.Data, t.Shape) }

func int64s(s []int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = int64(d)
	}
	return out
}

// --- model ---

// Model is a serializable ModelProto built from a Graph.
type Model struct {
	g           *Graph
	ExternalDir string            // folder external-data locations are relative to ("" if none)
	Metadata    map[string]string // metadata_props
	dims        map[string]int64
}

// Model finishes the graph. It fails if any builder call failed, no output was declared, or
// external files are not all inside the external-data folder.
func (g *Graph) Model() (*Model, error) {
	if g.err != nil {
		return nil, g.err
	}
	if len(g.outputs) == 0 {
		return nil, fmt.Errorf("onnx: graph %q has no outputs", g.name)
	}
	m := &Model{g: g, ExternalDir: g.extDir}
	for _, in := range g.inits {
		if in.file == "" {
			continue
		}
		if m.ExternalDir == "" {
			m.ExternalDir = filepath.Dir(in.file)
		}
		rel, err := filepath.Rel(m.ExternalDir, in.file)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("onnx: weight file %s is outside the external-data folder %s (ONNX Runtime only reads external data inside one folder; call SetExternalDir with a common parent)", in.file, m.ExternalDir)
		}
	}
	return m, nil
}

// InputNames lists the graph inputs in declaration order.
func (m *Model) InputNames() []string {
	var out []string
	for _, v := range m.g.inputs {
		out = append(out, v.name)
	}
	return out
}

// OutputNames lists the graph outputs in declaration order.
func (m *Model) OutputNames() []string {
	var out []string
	for _, v := range m.g.outputs {
		out = append(out, v.name)
	}
	return out
}

// InputType is the declared element type of input name (0 if unknown).
func (m *Model) InputType(name string) DataType {
	for _, v := range m.g.inputs {
		if v.name == name {
			return v.dtype
		}
	}
	return 0
}

// ExternalFiles lists the absolute paths of the files external initializers point into.
func (m *Model) ExternalFiles() []string {
	seen := map[string]bool{}
	var out []string
	for _, in := range m.g.inits {
		if in.file != "" && !seen[in.file] {
			seen[in.file] = true
			out = append(out, in.file)
		}
	}
	sort.Strings(out)
	return out
}

// SetDims fixes symbolic input dimensions (e.g. {"batch": 2, "h": 128}) in the serialized
// model; this is the equivalent of ORT's free-dimension overrides, giving static shapes.
func (m *Model) SetDims(dims map[string]int64) {
	if m.dims == nil {
		m.dims = map[string]int64{}
	}
	for k, v := range dims {
		m.dims[k] = v
	}
}

// Bytes serializes the ModelProto.
func (m *Model) Bytes() ([]byte, error) {
	g := m.g
	var mp pb
	mp.varint(1, IRVersion)
	mp.str(2, producerName)
	var os1 pb
	os1.str(1, "")
	os1.varint(2, Opset)
	mp.msg(8, &os1)
	if g.usesMS {
		var os2 pb
		os2.str(1, MicrosoftDomain)
		os2.varint(2, MicrosoftOpset)
		mp.msg(8, &os2)
	}
	var gp pb
	for _, n := range g.nodes {
		var np pb
		for _, s := range n.inputs {
			np.str(1, s)
		}
		for _, s := range n.outputs {
			np.str(2, s)
		}
		np.str(3, n.name)
		np.str(4, n.op)
		if n.domain != "" {
			np.str(7, n.domain)
		}
		keys := make([]string, 0, len(n.attrs))
		for k := range n.attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ap, err := encodeAttr(k, n.attrs[k])
			if err != nil {
				return nil, fmt.Errorf("onnx: node %s (%s): %w", n.name, n.op, err)
			}
			np.msg(5, ap)
		}
		gp.msg(1, &np)
	}
	gp.str(2, g.name)
	for _, in := range g.inits {
		var tp pb
		tp.packedInts(1, in.dims)
		tp.varint(2, int64(in.dtype))
		tp.str(8, in.name)
		if in.file != "" {
			rel, err := filepath.Rel(m.ExternalDir, in.file)
			if err != nil {
				return nil, err
			}
			for _, kv := range [][2]string{{"location", filepath.ToSlash(rel)}, {"offset", strconv.FormatInt(in.offset, 10)}, {"length", strconv.FormatInt(in.length, 10)}} {
				var e pb
				e.str(1, kv[0])
				e.str(2, kv[1])
				tp.msg(13, &e)
			}
			tp.varint(14, 1) // EXTERNAL
		} else {
			tp.bytes(9, in.raw)
		}
		gp.msg(5, &tp)
	}
	for _, vi := range g.inputs {
		gp.msg(11, m.valueInfo(vi))
	}
	for _, vi := range g.outputs {
		gp.msg(12, m.valueInfo(vi))
	}
	mp.msg(7, &gp)
	keys := make([]string, 0, len(m.Metadata))
	for k := range m.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var e pb
		e.str(1, k)
		e.str(2, m.Metadata[k])
		mp.msg(14, &e)
	}
	if len(mp.b) >= math.MaxInt32 {
		return nil, fmt.Errorf("onnx: model proto is %d bytes, over the 2 GiB protobuf limit (move weights to external data)", len(mp.b))
	}
	return mp.b, nil
}

// WriteFile writes the model to path (external-data locations stay relative to ExternalDir,
// so the file is only loadable from that folder).
func (m *Model) WriteFile(path string) error {
	b, err := m.Bytes()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func (m *Model) valueInfo(vi valueInfo) *pb {
	var p pb
	p.str(1, vi.name)
	if vi.dtype != 0 {
		var tt pb
		tt.varint(1, int64(vi.dtype))
		if vi.dims != nil {
			var sh pb
			for _, d := range vi.dims {
				var dp pb
				switch d := d.(type) {
				case int64:
					dp.varint(1, d)
				case string:
					if v, ok := m.dims[d]; ok {
						dp.varint(1, v)
					} else {
						dp.str(2, d)
					}
				}
				sh.msg(1, &dp)
			}
			tt.msg(2, &sh)
		}
		var tp pb
		tp.msg(1, &tt)
		p.msg(2, &tp)
	}
	return &p
}

func encodeAttr(name string, v any) (*pb, error) {
	var a pb
	a.str(1, name)
	switch v := v.(type) {
	case int:
		a.varint(3, int64(v))
		a.varint(20, 2)
	case int64:
		a.varint(3, v)
		a.varint(20, 2)
	case bool:
		b := int64(0)
		if v {
			b = 1
		}
		a.varint(3, b)
		a.varint(20, 2)
	case float32:
		a.float(2, v)
		a.varint(20, 1)
	case float64:
		a.float(2, float32(v))
		a.varint(20, 1)
	case string:
		a.str(4, v)
		a.varint(20, 3)
	case []int:
		a.packedInts(8, int64s(v))
		a.varint(20, 7)
	case []int64:
		a.packedInts(8, v)
		a.varint(20, 7)
	case []float32:
		a.packedFloats(7, v)
		a.varint(20, 6)
	case []string:
		for _, s := range v {
			a.str(9, s)
		}
		a.varint(20, 8)
	case *tensor.Tensor:
		var tp pb
		tp.packedInts(1, int64s(v.Shape))
		tp.varint(2, int64(Float))
		raw := make([]byte, 4*len(v.Data))
		for i, x := range v.Data {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
		}
		tp.bytes(9, raw)
		a.msg(5, &tp)
		a.varint(20, 4)
	default:
		return nil, fmt.Errorf("attribute %q: unsupported type %T", name, v)
	}
	return &a, nil
}
