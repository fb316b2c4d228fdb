package safetensors

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/comfygo/comfygo/internal/tensor"
)

// rawFile builds a file image from a header string and a data area.
func rawFile(hdr string, data []byte) []byte {
	b := make([]byte, 8, 8+len(hdr)+len(data))
	binary.LittleEndian.PutUint64(b, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, data...)
}

func TestRoundTrip(t *testing.T) {
	for _, mis := range []int{0, 1, 3} {
		dir := t.TempDir()
		p := filepath.Join(dir, "m.safetensors")
		a := tensor.FromData([]float32{1, -2, 3.5, 0.25, 1e-3, 7}, 2, 3)
		b := tensor.FromData([]float32{0.5, -1.5}, 2)
		s := tensor.FromData([]float32{4}) // scalar
		ra, _ := FromFloat32("a.weight", a, F32)
		rb, _ := FromFloat32("b", b, F16)
		rs, _ := FromFloat32("alpha", s, BF16)
		ri := RawTensor{Name: "ids", DType: I64, Shape: []int{1, 2}, Data: []byte{5, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
		re := RawTensor{Name: "empty", DType: F32, Shape: []int{0, 3}, Data: []byte{}}
		meta := map[string]string{"format": "pt", "x": "y"}
		if err := Write(p, []RawTensor{ra, rb, rs, ri, re}, meta, WriteOptions{Misalign: mis}); err != nil {
			t.Fatal(err)
		}
		f, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Keys(); !reflect.DeepEqual(got, []string{"a.weight", "alpha", "b", "empty", "ids"}) {
			t.Errorf("keys %v", got)
		}
		if !reflect.DeepEqual(f.Metadata(), meta) {
			t.Errorf("meta %v", f.Metadata())
		}
		if f.Header().DataStart%8 != int64(mis) {
			t.Errorf("misalign %d: data start %d", mis, f.Header().DataStart)
		}
		for name, want := range map[string]*tensor.Tensor{"a.weight": a, "b": b, "alpha": s} {
			got, err := f.Float32(name)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Shape, want.Shape) || !reflect.DeepEqual(got.Data, want.Data) {
				t.Errorf("%s: got %v %v want %v %v", name, got.Shape, got.Data, want.Shape, want.Data)
			}
		}
		info, ok := f.Info("b")
		if !ok || info.DType != F16 || info.Size != 4 || !reflect.DeepEqual(info.Shape, []int{2}) {
			t.Errorf("info %+v", info)
		}
		raw, _ := os.ReadFile(p)
		bb, _ := f.Bytes("b")
		if string(raw[info.Offset:info.Offset+info.Size]) != string(bb) || string(bb) != string(rb.Data) {
			t.Errorf("Offset does not point at the tensor bytes")
		}
		ids, err := f.Int64("ids")
		if err != nil || !reflect.DeepEqual(ids, []int64{5, -1}) {
			t.Errorf("ids %v %v", ids, err)
		}
		e, err := f.Float32("empty")
		if err != nil || len(e.Data) != 0 {
			t.Errorf("empty %v %v", e, err)
		}
		if _, err := f.Float32("nope"); err == nil || !strings.Contains(err.Error(), "no tensor") {
			t.Errorf("missing key err %v", err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Bytes("b"); err == nil {
			t.Error("Bytes after Close should fail")
		}
		if matches, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(matches) != 0 {
			t.Errorf("temp files left: %v", matches)
		}
	}
}

func TestDeterministic(t *testing.T) {
	dir := t.TempDir()
	m := map[string]*tensor.Tensor{"z": tensor.New(2), "a": tensor.New(3), "m": tensor.New(1, 1)}
	var prev []byte
	for i := range 3 {
		p := filepath.Join(dir, "d.safetensors")
		if err := WriteFloat32(p, m, F16, map[string]string{"b": "1", "a": "2"}); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		if i > 0 && string(b) != string(prev) {
			t.Fatal("output differs between writes")
		}
		prev = b
	}
	if (8+binary.LittleEndian.Uint64(prev))%8 != 0 {
		t.Error("data area not 8-byte aligned")
	}
}

func TestF8Unsupported(t *testing.T) {
	img := rawFile(`{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}`, []byte{1, 2})
	p := filepath.Join(t.TempDir(), "f8.safetensors")
	os.WriteFile(p, img, 0o644)
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if info, _ := f.Info("w"); info.DType != F8E4M3 {
		t.Errorf("dtype %v", info.DType)
	}
	if _, err := f.Float32("w"); err == nil || !strings.Contains(err.Error(), "fp8") {
		t.Errorf("want fp8 unsupported error, got %v", err)
	}
}

func TestMalformed(t *testing.T) {
	d8 := make([]byte, 8)
	hugeLen := make([]byte, 16)
	binary.LittleEndian.PutUint64(hugeLen, 200_000_000)
	pastEOF := make([]byte, 12)
	binary.LittleEndian.PutUint64(pastEOF, 100)
	cases := []struct {
		name, want string
		img        []byte
	}{
		{"short", "too short", []byte{1, 2, 3}},
		{"huge header len", "exceeds the limit", hugeLen},
		{"header past EOF", "past the end of the file", pastEOF},
		{"truncated data", "past the end of the data area", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4))},
		{"not json", "not a JSON object", rawFile(`hello`, nil)},
		{"array", "not a JSON object", rawFile(`[1,2]`, nil)},
		{"broken json", "bad header JSON", rawFile(`{"a":{"dtype":"F32"`, nil)},
		{"bad utf8", "UTF-8", rawFile("{\"\xff\":1}", nil)},
		{"unknown dtype", "unsupported dtype", rawFile(`{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, make([]byte, 1))},
		{"missing dtype", "missing dtype", rawFile(`{"a":{"shape":[2],"data_offsets":[0,8]}}`, d8)},
		{"negative dim", "invalid dimension", rawFile(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, d8)},
		{"fractional dim", "bad entry", rawFile(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}`, d8)},
		{"offsets reversed", "invalid data_offsets", rawFile(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[8,0]}}`, d8)},
		{"offsets one value", "data_offsets must be", rawFile(`{"a":{"dtype":"U8","shape":[8],"data_offsets":[8]}}`, d8)},
		{"offsets out of range", "past the end of the data area", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, d8)},
		{"wrong size", "needs 8", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4))},
		{"wrong dtype size", "needs 16", rawFile(`{"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}`, d8)},
		{"overlap", "overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, d8)},
		{"hole", "hole", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, d8)},
		{"trailing data", "trailing or missing", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, d8)},
		{"duplicate", "duplicate", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, d8)},
		{"metadata nested", "__metadata__", rawFile(`{"__metadata__":{"a":{"b":1}}}`, nil)},
		{"metadata number", "__metadata__", rawFile(`{"__metadata__":{"a":1}}`, nil)},
		{"unknown field", "bad entry", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}`, []byte{1})},
		{"garbage after object", "trailing bytes", rawFile(`{} x`, nil)},
		{"overflowing shape", "too large", rawFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8]}}`, d8)},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseHeader(c.img)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseHeader: got %v, want error containing %q", err, c.want)
			}
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_"))
			os.WriteFile(p, c.img, 0o644)
			f, err := Open(p)
			if err == nil {
				f.Close()
				t.Fatal("Open accepted a malformed file")
			}
		})
	}
	// Valid corner cases.
	for _, img := range [][]byte{
		rawFile(`{}`, nil),
		rawFile(`{"__metadata__":{"k":"v"}}    `, nil),
		rawFile(`{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"e":{"dtype":"F16","shape":[3,0],"data_offsets":[4,4]}}`, make([]byte, 4)),
	} {
		if _, err := ParseHeader(img); err != nil {
			t.Errorf("valid file refused: %v", err)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)))
	f.Add(rawFile(`{"__metadata__":{"k":"v"},"b":{"dtype":"BF16","shape":[1,1],"data_offsets":[0,2]}}`, make([]byte, 2)))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, '{'})
	f.Fuzz(func(t *testing.T, img []byte) {
		h, err := ParseHeader(img)
		if err != nil {
			return
		}
		// Accepted headers must describe in-bounds, exactly tiling tensors.
		var total int64
		for name, info := range h.Tensors {
			if info.Offset < h.DataStart || info.Offset+info.Size > int64(len(img)) {
				t.Fatalf("%q out of bounds: %+v", name, info)
			}
			if info.Numel()*int64(info.DType.Size()) != info.Size {
				t.Fatalf("%q size mismatch: %+v", name, info)
			}
			total += info.Size
		}
		if total != int64(len(img))-h.DataStart {
			t.Fatalf("tensors cover %d of %d data bytes", total, int64(len(img))-h.DataStart)
		}
	})
}

func BenchmarkFloat32F16(b *testing.B) {
	p := filepath.Join(b.TempDir(), "b.safetensors")
	if err := WriteFloat32(p, map[string]*tensor.Tensor{"w": tensor.New(1 << 22)}, F16, nil); err != nil {
		b.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(2 << 22)
	for b.Loop() {
		if _, err := f.Float32("w"); err != nil {
			b.Fatal(err)
		}
	}
}
