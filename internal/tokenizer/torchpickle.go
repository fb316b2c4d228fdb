package tokenizer

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"strings"

	"github.com/comfygo/comfygo/internal/tensor"
)

// This file reads textual-inversion embeddings saved with torch.save (A1111 .pt, diffusers
// learned_embeds.bin): a zip archive holding data.pkl and the raw storages under data/. The
// pickle is run on a restricted machine that knows only the opcodes torch.save emits and a
// short allow-list of globals (tensor rebuild functions, storage types, OrderedDict); anything
// else is refused, so no code from the file ever runs. Legacy (pre-1.6, non-zip) files are not
// supported.

// pickled values: string, int64, *big.Int, float64, bool, nil, *pList, pTuple, *pDict,
// pGlobal, *pStorage, *tensor.Tensor.
type (
	pList  struct{ items []any }
	pTuple []any
	pDict  struct {
		keys []any
		vals map[any]any
	}
	pGlobal  struct{ module, name string }
	pStorage struct {
		dtype string // "F32", "F16", "BF16", "F64"
		key   string
	}
	pMark struct{}
)

func newDict() *pDict { return &pDict{vals: map[any]any{}} }

func (d *pDict) set(k, v any) error {
	switch k.(type) {
	case string, int64, float64, bool, nil:
	default:
		return fmt.Errorf("unsupported dict key type %T", k)
	}
	if _, ok := d.vals[k]; !ok {
		d.keys = append(d.keys, k)
	}
	d.vals[k] = v
	return nil
}

var storageTypes = map[string]string{
	"FloatStorage": "F32", "HalfStorage": "F16", "BFloat16Storage": "BF16", "DoubleStorage": "F64",
}

var allowedGlobals = map[string]bool{
	"torch._utils._rebuild_tensor_v2": true, "torch._utils._rebuild_tensor": true,
	"torch._utils._rebuild_parameter": true, "collections.OrderedDict": true,
	"torch.FloatStorage": true, "torch.HalfStorage": true, "torch.BFloat16Storage": true, "torch.DoubleStorage": true,
	"torch.LongStorage": true, "torch.IntStorage": true,
}

// loadTorchZip unpickles a torch.save zip archive.
func loadTorchZip(raw []byte) (any, error) {
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, fmt.Errorf("not a torch zip archive (legacy .pt files are not supported): %w", err)
	}
	var pkl *zip.File
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
		if strings.HasSuffix(f.Name, "data.pkl") && (pkl == nil || len(f.Name) < len(pkl.Name)) {
			pkl = f
		}
	}
	if pkl == nil {
		return nil, errors.New("torch archive has no data.pkl")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	read := func(f *zip.File) ([]byte, error) {
		if f.UncompressedSize64 > 1<<30 {
			return nil, fmt.Errorf("%s: entry too large", f.Name)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(io.LimitReader(rc, 1<<30))
	}
	code, err := read(pkl)
	if err != nil {
		return nil, err
	}
	m := &unpickler{code: code, memo: map[int]any{}, storage: func(key string) ([]byte, error) {
		f := files[prefix+"data/"+key]
		if f == nil {
			return nil, fmt.Errorf("torch archive lacks storage %q", key)
		}
		return read(f)
	}}
	return m.run()
}

type unpickler struct {
	code    []byte
	pos     int
	stack   []any
	memo    map[int]any
	storage func(key string) ([]byte, error)
	loaded  map[string][]float32
}

func (u *unpickler) next(n int) ([]byte, error) {
	if n < 0 || u.pos+n > len(u.code) {
		return nil, errors.New("pickle: truncated")
	}
	b := u.code[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) pop() (any, error) {
	if len(u.stack) == 0 {
		return nil, errors.New("pickle: stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	if _, ok := v.(pMark); ok {
		return nil, errors.New("pickle: unexpected mark")
	}
	return v, nil
}

// popMark pops everything above the topmost mark.
func (u *unpickler) popMark() ([]any, error) {
	for i := len(u.stack) - 1; i >= 0; i-- {
		if _, ok := u.stack[i].(pMark); ok {
			items := append([]any(nil), u.stack[i+1:]...)
			u.stack = u.stack[:i]
			return items, nil
		}
	}
	return nil, errors.New("pickle: no mark")
}

func (u *unpickler) line() (string, error) {
	i := bytes.IndexByte(u.code[u.pos:], '\n')
	if i < 0 {
		return "", errors.New("pickle: truncated line")
	}
	s := string(u.code[u.pos : u.pos+i])
	u.pos += i + 1
	return s, nil
}

func (u *unpickler) run() (any, error) {
	const maxOps = 10_000_000
	for ops := 0; ops < maxOps; ops++ {
		b, err := u.next(1)
		if err != nil {
			return nil, err
		}
		switch op := b[0]; op {
		case 0x80: // PROTO
			if _, err := u.next(1); err != nil {
				return nil, err
			}
		case 0x95: // FRAME
			if _, err := u.next(8); err != nil {
				return nil, err
			}
		case '.': // STOP
			return u.pop()
		case '(':
			u.push(pMark{})
		case '}':
			u.push(newDict())
		case ']':
			u.push(&pList{})
		case ')':
			u.push(pTuple{})
		case 'N':
			u.push(nil)
		case 0x88:
			u.push(true)
		case 0x89:
			u.push(false)
		case 'K':
			x, err := u.next(1)
			if err != nil {
				return nil, err
			}
			u.push(int64(x[0]))
		case 'M':
			x, err := u.next(2)
			if err != nil {
				return nil, err
			}
			u.push(int64(binary.LittleEndian.Uint16(x)))
		case 'J':
			x, err := u.next(4)
			if err != nil {
				return nil, err
			}
			u.push(int64(int32(binary.LittleEndian.Uint32(x))))
		case 0x8a, 0x8b: // LONG1, LONG4
			nb := 1
			if op == 0x8b {
				nb = 4
			}
			x, err := u.next(nb)
			if err != nil {
				return nil, err
			}
			n := int(x[0])
			if op == 0x8b {
				n = int(binary.LittleEndian.Uint32(x))
			}
			if n > 64 {
				return nil, errors.New("pickle: long too large")
			}
			v, err := u.next(n)
			if err != nil {
				return nil, err
			}
			u.push(decodeLong(v))
		case 'G':
			x, err := u.next(8)
			if err != nil {
				return nil, err
			}
			u.push(math.Float64frombits(binary.BigEndian.Uint64(x)))
		case 'X', 0x8c, 'T', 'U', 'B', 'C', 0x8d, 0x8e: // strings and bytes
			var n int
			switch op {
			case 0x8c, 'U', 'C':
				x, err := u.next(1)
				if err != nil {
					return nil, err
				}
				n = int(x[0])
			case 0x8d, 0x8e:
				x, err := u.next(8)
				if err != nil {
					return nil, err
				}
				n = int(binary.LittleEndian.Uint64(x))
			default:
				x, err := u.next(4)
				if err != nil {
					return nil, err
				}
				n = int(binary.LittleEndian.Uint32(x))
			}
			x, err := u.next(n)
			if err != nil {
				return nil, err
			}
			u.push(string(x))
		case 'q', 'r': // BINPUT, LONG_BINPUT
			var idx int
			if op == 'q' {
				x, err := u.next(1)
				if err != nil {
					return nil, err
				}
				idx = int(x[0])
			} else {
				x, err := u.next(4)
				if err != nil {
					return nil, err
				}
				idx = int(binary.LittleEndian.Uint32(x))
			}
			if len(u.stack) == 0 {
				return nil, errors.New("pickle: put on empty stack")
			}
			u.memo[idx] = u.stack[len(u.stack)-1]
		case 0x94: // MEMOIZE
			if len(u.stack) == 0 {
				return nil, errors.New("pickle: memoize on empty stack")
			}
			u.memo[len(u.memo)] = u.stack[len(u.stack)-1]
		case 'h', 'j': // BINGET, LONG_BINGET
			var idx int
			if op == 'h' {
				x, err := u.next(1)
				if err != nil {
					return nil, err
				}
				idx = int(x[0])
			} else {
				x, err := u.next(4)
				if err != nil {
					return nil, err
				}
				idx = int(binary.LittleEndian.Uint32(x))
			}
			v, ok := u.memo[idx]
			if !ok {
				return nil, fmt.Errorf("pickle: memo %d missing", idx)
			}
			u.push(v)
		case 'c': // GLOBAL
			mod, err := u.line()
			if err != nil {
				return nil, err
			}
			name, err := u.line()
			if err != nil {
				return nil, err
			}
			if err := u.global(mod, name); err != nil {
				return nil, err
			}
		case 0x93: // STACK_GLOBAL
			name, err := u.pop()
			if err != nil {
				return nil, err
			}
			mod, err := u.pop()
			if err != nil {
				return nil, err
			}
			ms, ok1 := mod.(string)
			ns, ok2 := name.(string)
			if !ok1 || !ok2 {
				return nil, errors.New("pickle: bad STACK_GLOBAL")
			}
			if err := u.global(ms, ns); err != nil {
				return nil, err
			}
		case 't':
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			u.push(pTuple(items))
		case 0x85, 0x86, 0x87:
			n := int(op-0x85) + 1
			items := make([]any, n)
			for i := n - 1; i >= 0; i-- {
				if items[i], err = u.pop(); err != nil {
					return nil, err
				}
			}
			u.push(pTuple(items))
		case 'a', 'e': // APPEND, APPENDS
			var items []any
			if op == 'a' {
				v, err := u.pop()
				if err != nil {
					return nil, err
				}
				items = []any{v}
			} else if items, err = u.popMark(); err != nil {
				return nil, err
			}
			l, ok := u.top().(*pList)
			if !ok {
				return nil, errors.New("pickle: append to a non-list")
			}
			l.items = append(l.items, items...)
		case 's', 'u': // SETITEM, SETITEMS
			var items []any
			if op == 's' {
				v, err := u.pop()
				if err != nil {
					return nil, err
				}
				k, err := u.pop()
				if err != nil {
					return nil, err
				}
				items = []any{k, v}
			} else if items, err = u.popMark(); err != nil {
				return nil, err
			}
			d, ok := u.top().(*pDict)
			if !ok || len(items)%2 != 0 {
				return nil, errors.New("pickle: setitems on a non-dict")
			}
			for i := 0; i < len(items); i += 2 {
				if err := d.set(items[i], items[i+1]); err != nil {
					return nil, err
				}
			}
		case 'Q': // BINPERSID
			pid, err := u.pop()
			if err != nil {
				return nil, err
			}
			st, err := persistent(pid)
			if err != nil {
				return nil, err
			}
			u.push(st)
		case 'R': // REDUCE
			args, err := u.pop()
			if err != nil {
				return nil, err
			}
			fn, err := u.pop()
			if err != nil {
				return nil, err
			}
			v, err := u.reduce(fn, args)
			if err != nil {
				return nil, err
			}
			u.push(v)
		case 'b': // BUILD: only the empty state of OrderedDict / parameters is accepted
			state, err := u.pop()
			if err != nil {
				return nil, err
			}
			switch s := state.(type) {
			case nil:
			case *pDict:
				if len(s.keys) != 0 {
					if d, ok := u.top().(*pDict); ok {
						for _, k := range s.keys {
							if err := d.set(k, s.vals[k]); err != nil {
								return nil, err
							}
						}
					}
				}
			}
		default:
			return nil, fmt.Errorf("pickle: unsupported opcode 0x%02x", op)
		}
	}
	return nil, errors.New("pickle: too many operations")
}

func (u *unpickler) top() any {
	if len(u.stack) == 0 {
		return nil
	}
	return u.stack[len(u.stack)-1]
}

func (u *unpickler) global(mod, name string) error {
	if !allowedGlobals[mod+"."+name] {
		return fmt.Errorf("pickle: refusing global %s.%s", mod, name)
	}
	u.push(pGlobal{mod, name})
	return nil
}

func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var v uint64
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		shift := 64 - 8*uint(len(b))
		return int64(v<<shift) >> shift
	}
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	n := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return n
}

// persistent resolves torch's storage reference ('storage', StorageType, key, location, numel).
func persistent(pid any) (any, error) {
	t, ok := pid.(pTuple)
	if !ok || len(t) < 3 || t[0] != "storage" {
		return nil, errors.New("pickle: unsupported persistent id")
	}
	g, ok := t[1].(pGlobal)
	if !ok {
		return nil, errors.New("pickle: storage without a type")
	}
	dt, ok := storageTypes[g.name]
	if !ok {
		return nil, fmt.Errorf("pickle: unsupported storage %s", g.name)
	}
	key, ok := t[2].(string)
	if !ok {
		return nil, errors.New("pickle: storage key is not a string")
	}
	return &pStorage{dtype: dt, key: key}, nil
}

func asInt(v any) (int, bool) {
	if i, ok := v.(int64); ok {
		return int(i), true
	}
	return 0, false
}

func asInts(v any) ([]int, bool) {
	t, ok := v.(pTuple)
	if !ok {
		return nil, false
	}
	out := make([]int, len(t))
	for i, x := range t {
		if out[i], ok = asInt(x); !ok {
			return nil, false
		}
	}
	return out, true
}

func (u *unpickler) reduce(fn, args any) (any, error) {
	g, ok := fn.(pGlobal)
	if !ok {
		return nil, errors.New("pickle: reduce of a non-global")
	}
	a, _ := args.(pTuple)
	switch g.module + "." + g.name {
	case "collections.OrderedDict":
		return newDict(), nil
	case "torch._utils._rebuild_parameter":
		if len(a) < 1 {
			return nil, errors.New("pickle: bad _rebuild_parameter")
		}
		return a[0], nil
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		if len(a) < 4 {
			return nil, errors.New("pickle: bad _rebuild_tensor")
		}
		st, ok := a[0].(*pStorage)
		off, ok1 := asInt(a[1])
		size, ok2 := asInts(a[2])
		stride, ok3 := asInts(a[3])
		if !ok || !ok1 || !ok2 || !ok3 || len(size) != len(stride) {
			return nil, errors.New("pickle: bad tensor arguments")
		}
		return u.tensor(st, off, size, stride)
	}
	return nil, fmt.Errorf("pickle: cannot call %s.%s", g.module, g.name)
}

func (u *unpickler) tensor(st *pStorage, off int, size, stride []int) (*tensor.Tensor, error) {
	if u.loaded == nil {
		u.loaded = map[string][]float32{}
	}
	data, ok := u.loaded[st.key]
	if !ok {
		raw, err := u.storage(st.key)
		if err != nil {
			return nil, err
		}
		switch st.dtype {
		case "F32":
			data = make([]float32, len(raw)/4)
			for i := range data {
				data[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			}
		case "F16":
			data = make([]float32, len(raw)/2)
			tensor.F16SliceToF32(data, raw[:2*len(data)])
		case "BF16":
			data = make([]float32, len(raw)/2)
			tensor.BF16SliceToF32(data, raw[:2*len(data)])
		case "F64":
			data = make([]float32, len(raw)/8)
			for i := range data {
				data[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
			}
		}
		u.loaded[st.key] = data
	}
	n := 1
	for _, s := range size {
		if s < 0 || s > len(data) {
			return nil, errors.New("pickle: bad tensor size")
		}
		n *= s
		if n > len(data) {
			return nil, errors.New("pickle: tensor larger than its storage")
		}
	}
	out := tensor.New(size...)
	idx := make([]int, len(size))
	for i := 0; i < n; i++ {
		p := off
		for d := range size {
			p += idx[d] * stride[d]
		}
		if p < 0 || p >= len(data) {
			return nil, errors.New("pickle: tensor view outside its storage")
		}
		out.Data[i] = data[p]
		for d := len(size) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < size[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out, nil
}

// embeddingFromPickle applies upstream load_embed's rules to an unpickled object: a
// "string_to_param" dict gives its first value; otherwise the dict's tensors are offered by
// key (in the file's order).
func embeddingFromPickle(obj any) (*EmbeddingFile, error) {
	d, ok := obj.(*pDict)
	if !ok {
		return nil, fmt.Errorf("unsupported embedding layout (%T at the top level)", obj)
	}
	e := &EmbeddingFile{Tensors: map[string]*tensor.Tensor{}}
	if sp, ok := d.vals["string_to_param"].(*pDict); ok {
		for _, k := range sp.keys {
			if t, ok := sp.vals[k].(*tensor.Tensor); ok {
				e.Param = t
				break
			}
		}
		if e.Param == nil {
			return nil, errors.New("string_to_param holds no tensor")
		}
		return e, nil
	}
	for _, k := range d.keys {
		ks, ok := k.(string)
		t, ok2 := d.vals[k].(*tensor.Tensor)
		if ok && ok2 {
			e.Names = append(e.Names, ks)
			e.Tensors[ks] = t
		}
	}
	if len(e.Names) == 0 {
		return nil, errors.New("no tensors in the embedding file")
	}
	return e, nil
}
