package onnx

import (
	"encoding/binary"
	"errors"
	"math"
)

// pb is a minimal protobuf encoder (wire types 0, 2 and 5 are all ONNX needs).
type pb struct{ b []byte }

func (p *pb) tag(field, wire int) { p.b = binary.AppendUvarint(p.b, uint64(field)<<3|uint64(wire)) }

func (p *pb) varint(field int, v int64) {
	p.tag(field, 0)
	p.b = binary.AppendUvarint(p.b, uint64(v))
}

func (p *pb) bytes(field int, b []byte) {
	p.tag(field, 2)
	p.b = binary.AppendUvarint(p.b, uint64(len(b)))
	p.b = append(p.b, b...)
}

func (p *pb) str(field int, s string) {
	p.tag(field, 2)
	p.b = binary.AppendUvarint(p.b, uint64(len(s)))
	p.b = append(p.b, s...)
}

func (p *pb) msg(field int, m *pb) { p.bytes(field, m.b) }

func (p *pb) float(field int, f float32) {
	p.tag(field, 5)
	p.b = binary.LittleEndian.AppendUint32(p.b, math.Float32bits(f))
}

func (p *pb) packedInts(field int, v []int64) {
	var q []byte
	for _, x := range v {
		q = binary.AppendUvarint(q, uint64(x))
	}
	p.bytes(field, q)
}

func (p *pb) packedFloats(field int, v []float32) {
	q := make([]byte, 0, 4*len(v))
	for _, x := range v {
		q = binary.LittleEndian.AppendUint32(q, math.Float32bits(x))
	}
	p.bytes(field, q)
}

// field is one decoded protobuf field (for the small reader used by Inspect).
type field struct {
	num  int
	wire int
	v    uint64
	b    []byte
}

func decodeFields(b []byte, fn func(f field) error) error {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return errors.New("onnx: bad protobuf tag")
		}
		b = b[n:]
		f := field{num: int(key >> 3), wire: int(key & 7)}
		switch f.wire {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return errors.New("onnx: bad protobuf varint")
			}
			f.v, b = v, b[n:]
		case 1:
			if len(b) < 8 {
				return errors.New("onnx: truncated protobuf")
			}
			f.v, b = binary.LittleEndian.Uint64(b), b[8:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return errors.New("onnx: truncated protobuf")
			}
			f.b, b = b[n:n+int(l)], b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return errors.New("onnx: truncated protobuf")
			}
			f.v, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		default:
			return errors.New("onnx: unsupported protobuf wire type")
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// Inspect reads the graph input and output names of a serialized ModelProto (graph inputs that
// are also initializers are left out, as ORT does).
func Inspect(model []byte) (inputs, outputs []string, err error) {
	var graph []byte
	err = decodeFields(model, func(f field) error {
		if f.num == 7 && f.wire == 2 {
			graph = f.b
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if graph == nil {
		return nil, nil, errors.New("onnx: model has no graph")
	}
	inits := map[string]bool{}
	name := func(b []byte, num int) (string, error) {
		var s string
		err := decodeFields(b, func(f field) error {
			if f.num == num && f.wire == 2 {
				s = string(f.b)
			}
			return nil
		})
		return s, err
	}
	var ins []string
	err = decodeFields(graph, func(f field) error {
		if f.wire != 2 {
			return nil
		}
		var err error
		var s string
		switch f.num {
		case 5: // initializer
			s, err = name(f.b, 8)
			inits[s] = true
		case 11:
			s, err = name(f.b, 1)
			ins = append(ins, s)
		case 12:
			s, err = name(f.b, 1)
			outputs = append(outputs, s)
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	for _, s := range ins {
		if !inits[s] {
			inputs = append(inputs, s)
		}
	}
	return inputs, outputs, nil
}

// NodeOps lists the op_type of every node of a serialized model's main graph, in order (for
// tests that check what ORT folded or fused, via an optimized model saved by ORT).
func NodeOps(model []byte) ([]string, error) {
	var graph []byte
	if err := decodeFields(model, func(f field) error {
		if f.num == 7 && f.wire == 2 {
			graph = f.b
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var ops []string
	err := decodeFields(graph, func(f field) error {
		if f.num != 1 || f.wire != 2 {
			return nil
		}
		return decodeFields(f.b, func(n field) error {
			if n.num == 4 && n.wire == 2 {
				ops = append(ops, string(n.b))
			}
			return nil
		})
	})
	return ops, err
}
