package onnx

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

func writeST(t *testing.T, path string, names ...string) *safetensors.File {
	t.Helper()
	m := map[string]*tensor.Tensor{}
	for _, n := range names {
		m[n] = tensor.FromData([]float32{1, 2, 3, 4}, 2, 2)
	}
	if err := safetensors.WriteFloat32(path, m, safetensors.F16, nil); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func build(t *testing.T, f *safetensors.File) *Graph {
	g := NewGraph("t")
	x := g.Input("x", Float, Dim("batch"), 2)
	ids := g.Input("ids", Int64, 1, "n")
	w := g.Weight(f, "w")
	if g.Weight(f, "w") != w {
		t.Error("Weight not cached")
	}
	y := g.Linear(x, w, g.ConstFloat(1, 2))
	g.Output(y, "y")
	g.Output(g.Cast(ids, Float), "idsf")
	return g
}

func TestModelBytesAndInspect(t *testing.T) {
	dir := t.TempDir()
	f := writeST(t, filepath.Join(dir, "w.safetensors"), "w")
	m, err := build(t, f).Model()
	if err != nil {
		t.Fatal(err)
	}
	if m.ExternalDir != dir {
		t.Errorf("external dir %q", m.ExternalDir)
	}
	b1, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := build(t, f).Model()
	b2, _ := m2.Bytes()
	if !bytes.Equal(b1, b2) {
		t.Error("serialization not deterministic")
	}
	ins, outs, err := Inspect(b1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ins, []string{"x", "ids"}) || !reflect.DeepEqual(outs, []string{"y", "idsf"}) {
		t.Errorf("inspect: %v %v", ins, outs)
	}
	info, _ := f.Info("w")
	for _, want := range []string{"location", "w.safetensors", "offset", "length", "com.microsoft", "FusedMatMul"} {
		if !bytes.Contains(b1, []byte(want)) {
			t.Errorf("model lacks %q", want)
		}
	}
	if !bytes.Contains(b1, []byte(itoa(info.Offset))) {
		t.Error("model lacks the absolute offset")
	}
	m.SetDims(map[string]int64{"batch": 3})
	b3, _ := m.Bytes()
	if bytes.Contains(b3, []byte("batch")) || !bytes.Contains(b1, []byte("batch")) {
		t.Error("SetDims did not replace the symbolic dim")
	}
	g := NewGraph("plain")
	g.Output(g.Add(g.Input("a", Float, 1), g.ConstFloat(1)), "b")
	pm, _ := g.Model()
	if pb, _ := pm.Bytes(); bytes.Contains(pb, []byte("com.microsoft")) {
		t.Error("com.microsoft opset imported but unused")
	}
	if _, _, err := Inspect([]byte{0xff}); err == nil {
		t.Error("Inspect accepted garbage")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	os.MkdirAll(filepath.Join(dir, "b"), 0o755)
	f1 := writeST(t, filepath.Join(dir, "a", "1.safetensors"), "w")
	f2 := writeST(t, filepath.Join(dir, "b", "2.safetensors"), "w")
	g := NewGraph("e")
	g.Output(g.Add(g.Weight(f1, "w"), g.Weight(f2, "w")), "y")
	if _, err := g.Model(); err == nil || !strings.Contains(err.Error(), "outside the external-data folder") {
		t.Errorf("want folder error, got %v", err)
	}
	g.SetExternalDir(dir)
	if _, err := g.Model(); err != nil {
		t.Errorf("common parent refused: %v", err)
	}

	g = NewGraph("e")
	g.Weight(f1, "missing")
	if _, err := g.Model(); err == nil || !strings.Contains(err.Error(), "no tensor") {
		t.Errorf("want missing tensor error, got %v", err)
	}
	g = NewGraph("e")
	g.Input("x", Float, 1)
	g.Input("x", Float, 1)
	if _, err := g.Model(); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Errorf("want duplicate error, got %v", err)
	}
	g = NewGraph("e")
	x := g.Input("x", Float, 1)
	g.Output(g.Op1("Foo", Attrs{"bad": struct{}{}}, x), "y")
	m, _ := g.Model()
	if _, err := m.Bytes(); err == nil || !strings.Contains(err.Error(), "unsupported type") {
		t.Errorf("want attribute error, got %v", err)
	}
	if _, err := NewGraph("empty").Model(); err == nil {
		t.Error("graph without outputs accepted")
	}
}

func FuzzInspect(f *testing.F) {
	g := NewGraph("f")
	x := g.Input("x", Float, 1, 2)
	g.Output(g.Add(x, g.ConstFloat(1, 2)), "y")
	m, _ := g.Model()
	b, _ := m.Bytes()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		Inspect(data) // must not panic
	})
}
