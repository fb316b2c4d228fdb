package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"

	"github.com/comfygo/comfygo/internal/tensor"
)

// File is an open, memory-mapped safetensors file. Its methods are safe for concurrent use;
// byte views returned by Bytes are valid until Close.
type File struct {
	path string
	data []byte // the whole file, mmapped read-only
	hdr  *Header
}

// Open memory-maps path and validates its header.
func Open(path string) (*File, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open safetensors %q: %w", path, err)
	}
	fd, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("open safetensors: %w", err)
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("open safetensors %q: %w", path, err)
	}
	size := st.Size()
	if size < 8 {
		return nil, fmt.Errorf("open safetensors %q: file too short (%d bytes)", path, size)
	}
	if size > math.MaxInt {
		return nil, fmt.Errorf("open safetensors %q: file too large", path)
	}
	data, err := syscall.Mmap(int(fd.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("open safetensors %q: mmap: %w", path, err)
	}
	hdr, err := parse(data[8:], binary.LittleEndian.Uint64(data), size)
	if err != nil {
		syscall.Munmap(data)
		return nil, fmt.Errorf("open %q: %w", path, err)
	}
	return &File{path: abs, data: data, hdr: hdr}, nil
}

// Close unmaps the file; views from Bytes become invalid.
func (f *File) Close() error {
	if f.data == nil {
		return nil
	}
	err := syscall.Munmap(f.data)
	f.data = nil
	return err
}

// Path is the file's absolute path.
func (f *File) Path() string { return f.path }

// Header is the parsed header.
func (f *File) Header() *Header { return f.hdr }

// Keys returns the tensor names, sorted.
func (f *File) Keys() []string { return f.hdr.Keys() }

// Info describes tensor key.
func (f *File) Info(key string) (TensorInfo, bool) {
	t, ok := f.hdr.Tensors[key]
	return t, ok
}

// Has reports whether the file holds tensor key.
func (f *File) Has(key string) bool { _, ok := f.hdr.Tensors[key]; return ok }

// Metadata is the `__metadata__` map (nil if absent). Do not modify it.
func (f *File) Metadata() map[string]string { return f.hdr.Metadata }

// Bytes returns the raw little-endian bytes of tensor key without copying (read-only memory:
// writing to it crashes). Valid until Close.
func (f *File) Bytes(key string) ([]byte, error) {
	t, ok := f.hdr.Tensors[key]
	if !ok {
		return nil, fmt.Errorf("safetensors %s: no tensor %q", filepath.Base(f.path), key)
	}
	if f.data == nil {
		return nil, fmt.Errorf("safetensors %s: file is closed", filepath.Base(f.path))
	}
	return f.data[t.Offset : t.Offset+t.Size : t.Offset+t.Size], nil
}

// Float32 returns tensor key converted to a new float32 tensor (F32, F16, BF16, F64 and the
// integer/bool types are converted; F8 types are refused).
func (f *File) Float32(key string) (*tensor.Tensor, error) {
	b, err := f.Bytes(key)
	if err != nil {
		return nil, err
	}
	t := f.hdr.Tensors[key]
	out := tensor.New(t.Shape...)
	if err := ToFloat32(out.Data, t.DType, b); err != nil {
		return nil, fmt.Errorf("safetensors %s: tensor %q: %w", filepath.Base(f.path), key, err)
	}
	return out, nil
}

// Int64 returns tensor key as int64 values (integer, bool and float dtypes; floats truncated).
func (f *File) Int64(key string) ([]int64, error) {
	t, ok := f.hdr.Tensors[key]
	if !ok {
		return nil, fmt.Errorf("safetensors %s: no tensor %q", filepath.Base(f.path), key)
	}
	if t.DType == I64 {
		b, err := f.Bytes(key)
		if err != nil {
			return nil, err
		}
		out := make([]int64, t.Numel())
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
		return out, nil
	}
	ft, err := f.Float32(key)
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(ft.Data))
	for i, v := range ft.Data {
		out[i] = int64(v)
	}
	return out, nil
}

// ToFloat32 converts len(dst) little-endian elements of dtype from src into dst.
func ToFloat32(dst []float32, dtype DType, src []byte) error {
	n := len(dst)
	if sz := dtype.Size(); sz == 0 {
		return fmt.Errorf("unknown dtype %q", dtype)
	} else if len(src) != n*sz {
		return fmt.Errorf("%d bytes for %d %s elements", len(src), n, dtype)
	}
	if n == 0 {
		return nil
	}
	le := binary.LittleEndian
	switch dtype {
	case F32:
		if uintptr(unsafe.Pointer(&src[0]))%4 == 0 && nativeLE {
			copy(dst, unsafe.Slice((*float32)(unsafe.Pointer(&src[0])), n))
		} else {
			for i := range dst {
				dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
			}
		}
	case F16:
		tensor.F16SliceToF32(dst, src)
	case BF16:
		tensor.BF16SliceToF32(dst, src)
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(src[8*i:])))
		}
	case I64:
		for i := range dst {
			dst[i] = float32(int64(le.Uint64(src[8*i:])))
		}
	case U64:
		for i := range dst {
			dst[i] = float32(le.Uint64(src[8*i:]))
		}
	case I32:
		for i := range dst {
			dst[i] = float32(int32(le.Uint32(src[4*i:])))
		}
	case U32:
		for i := range dst {
			dst[i] = float32(le.Uint32(src[4*i:]))
		}
	case I16:
		for i := range dst {
			dst[i] = float32(int16(le.Uint16(src[2*i:])))
		}
	case U16:
		for i := range dst {
			dst[i] = float32(le.Uint16(src[2*i:]))
		}
	case I8:
		for i := range dst {
			dst[i] = float32(int8(src[i]))
		}
	case U8:
		for i := range dst {
			dst[i] = float32(src[i])
		}
	case BOOL:
		for i := range dst {
			if src[i] != 0 {
				dst[i] = 1
			} else {
				dst[i] = 0
			}
		}
	default:
		return fmt.Errorf("dtype %s cannot be converted to float32 (fp8 checkpoints are not supported; use an F16/BF16/F32 file)", dtype)
	}
	return nil
}

var nativeLE = func() bool { x := uint16(1); return *(*byte)(unsafe.Pointer(&x)) == 1 }()
