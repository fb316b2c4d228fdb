package models

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// FuzzDetect mutates the key/shape table of the tiny SD1.5 and SDXL UNets (dropping keys,
// changing dims): Detect must never panic, and a config it accepts must build a graph (or
// fail with an error) without panicking.
func FuzzDetect(f *testing.F) {
	f.Add([]byte{}, false)
	f.Add([]byte{3, 0, 7, 1, 200, 2}, true)
	f.Add([]byte{0, 0, 0, 0}, false)
	bases := []map[string]TensorInfo{{}, {}}
	for i, c := range []*UNetConfig{&TinyUNetSD15, &TinyUNetSDXL} {
		for _, p := range UNetParams(c) {
			bases[i][UNetPrefix+p.Name] = TensorInfo{DType: "F16", Shape: p.Shape}
		}
	}
	f.Fuzz(func(t *testing.T, ops []byte, xl bool) {
		base := bases[0]
		if xl {
			base = bases[1]
		}
		keys := make([]string, 0, len(base))
		for k := range base {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		h := &Header{Tensors: map[string]TensorInfo{}, Metadata: map[string]string{"tiny.family": map[bool]string{false: "SD15", true: "SDXL"}[xl]}}
		for k, v := range base {
			h.Tensors[k] = TensorInfo{DType: v.DType, Shape: append([]int(nil), v.Shape...)}
		}
		for i := 0; i+1 < len(ops); i += 2 {
			k := keys[int(ops[i])*7%len(keys)]
			ti, ok := h.Tensors[k]
			if !ok {
				continue
			}
			if ops[i+1] == 0 {
				delete(h.Tensors, k)
				continue
			}
			if len(ti.Shape) > 0 {
				ti.Shape[int(ops[i+1])%len(ti.Shape)] = int(ops[i+1]) % 97
				h.Tensors[k] = ti
			} else {
				ti.Shape = []int{int(ops[i+1])}
				h.Tensors[k] = ti
			}
		}
		fam, err := Detect(h, DetectOptions{})
		if err != nil {
			return
		}
		param := func(k string) (string, []int, error) {
			ti, ok := h.Tensors[UNetPrefix+k]
			if !ok {
				return "", nil, os.ErrNotExist
			}
			return UNetPrefix + k, ti.Shape, nil
		}
		BuildUNet(fam.UNet, UNetShape{1, 3, 5, 77}, param, false)
	})
}

// FuzzSidecar feeds arbitrary JSON to the sidecar config reader.
func FuzzSidecar(f *testing.F) {
	f.Add([]byte(`{"unet":{"config":{"num_heads":2,"use_linear_in_transformer":false}},"text_encoder":{"config":{"num_attention_heads":2}}}`))
	f.Add([]byte(`{"family":"SDXL","unet":{"config":{"num_head_channels":16}}}`))
	f.Add([]byte(`[1,2`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "m.safetensors")
		if err := os.WriteFile(filepath.Join(dir, "m.json"), data, 0o644); err != nil {
			t.Skip()
		}
		SidecarOptions(p)
	})
}
