package imageops

import (
	"math"
	"slices"
	"testing"

	"github.com/comfygo/comfygo/internal/tensor"
)

func near(a, b float32) bool { return math.Abs(float64(a-b)) < 1e-5 }

func TestUpscaleRow(t *testing.T) {
	row := tensor.FromData([]float32{0, 1}, 1, 1, 1, 2)
	cases := []struct {
		method string
		want   []float32
	}{
		// torch.nn.functional.interpolate(size=(1,4)) values for the row [0, 1]
		{"nearest-exact", []float32{0, 0, 1, 1}},
		{"bilinear", []float32{0, 0.25, 0.75, 1}},
		{"area", []float32{0, 0, 1, 1}},
	}
	for _, c := range cases {
		got, err := Upscale(row, 4, 1, c.method, "disabled")
		if err != nil {
			t.Fatal(err)
		}
		for i := range c.want {
			if !near(got.Data[i], c.want[i]) {
				t.Errorf("%s: got %v want %v", c.method, got.Data, c.want)
				break
			}
		}
	}
	// area downscale averages windows
	got, _ := Upscale(tensor.FromData([]float32{1, 3, 5, 7}, 1, 1, 1, 4), 2, 1, "area", "disabled")
	if !near(got.Data[0], 2) || !near(got.Data[1], 6) {
		t.Errorf("area down: %v", got.Data)
	}
}

func TestUpscaleKeepsConstants(t *testing.T) {
	src := tensor.New(1, 3, 5, 7)
	for i := range src.Data {
		src.Data[i] = 0.4
	}
	for _, m := range []string{"nearest-exact", "bilinear", "area", "bicubic", "bislerp", "lanczos"} {
		got, err := Upscale(src, 11, 9, m, "center")
		if err != nil {
			t.Fatal(err)
		}
		if got.Shape[2] != 9 || got.Shape[3] != 11 {
			t.Fatalf("%s: shape %v", m, got.Shape)
		}
		want := float32(0.4)
		if m == "lanczos" {
			want = float32(math.Floor(0.4*255+0)) / 255 // through 8-bit pixels (truncated)
		}
		for _, v := range got.Data {
			if math.Abs(float64(v-want)) > 1e-4 {
				t.Errorf("%s: value %v, want %v", m, v, want)
				break
			}
		}
	}
	if _, err := Upscale(src, 4, 4, "nope", "disabled"); err == nil {
		t.Error("unknown method accepted")
	}
}

func TestCenterCrop(t *testing.T) {
	// 1x1x2x4 to a square: crops x by round((4-4*(1/2))/2) = 1 each side
	src := tensor.FromData([]float32{0, 1, 2, 3, 4, 5, 6, 7}, 1, 1, 2, 4)
	got := centerCrop(src, 8, 8)
	want := []float32{1, 2, 5, 6}
	if len(got.Data) != 4 {
		t.Fatalf("shape %v", got.Shape)
	}
	for i := range want {
		if got.Data[i] != want[i] {
			t.Fatalf("got %v want %v", got.Data, want)
		}
	}
}

func TestTo8Bit(t *testing.T) {
	// SaveImage's float32 truncation (ComfyUI's test expectations)
	cases := map[float32]uint8{0.25: 63, 0.5: 127, 0.1: 25, 0.3: 76, 2.0 / 3.0: 170, -1: 0, 2: 255, 1: 255}
	for v, want := range cases {
		if got := to8bit(v); got != want {
			t.Errorf("to8bit(%v) = %d, want %d", v, got, want)
		}
	}
	if got := to8bit(float32(math.NaN())); got != 0 {
		t.Errorf("NaN -> %d", got)
	}
}

func TestImageRoundTrip(t *testing.T) {
	src := tensor.New(2, 3, 4, 3)
	for i := range src.Data {
		src.Data[i] = float32(i%256) / 255
	}
	img, err := ToImage(src, 1)
	if err != nil {
		t.Fatal(err)
	}
	back, _, alpha := FromImage(img)
	if alpha {
		t.Error("RGB image reported alpha")
	}
	per := 3 * 4 * 3
	for i := 0; i < per; i++ {
		if math.Abs(float64(back.Data[i]-src.Data[per+i])) > 1.0/255+1e-6 {
			t.Fatalf("pixel %d: %v vs %v", i, back.Data[i], src.Data[per+i])
		}
	}
	if nchw := NCHWToNHWC(NHWCToNCHW(src)); !slices.Equal(nchw.Data, src.Data) {
		t.Error("layout round trip changed data")
	}
}
