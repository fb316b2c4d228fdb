package testpack

import (
	"fmt"
	"math"
	"time"

	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

// mix is TestLazyMixImages' blend.
func mix(img1, img2, mask *tensor.Tensor) (*tensor.Tensor, error) {
	if allEqual(mask, 0) {
		return img1, nil
	}
	if allEqual(mask, 1) {
		return img2, nil
	}
	if img1 == nil || img2 == nil {
		return nil, fmt.Errorf("missing image")
	}
	if len(img1.Shape) != 4 || !sameShape(img1.Shape, img2.Shape) {
		return nil, fmt.Errorf("The size of tensor a (%d) must match the size of tensor b (%d) at non-singleton dimension 1",
			dim(img1, 1), dim(img2, 1))
	}
	b, h, w, c := img1.Shape[0], img1.Shape[1], img1.Shape[2], img1.Shape[3]
	ms := mask.Shape
	mb, mh, mw := 1, 0, 0
	switch len(ms) {
	case 2:
		mh, mw = ms[0], ms[1]
	case 3:
		mb, mh, mw = ms[0], ms[1], ms[2]
	default:
		return nil, fmt.Errorf("unsupported mask shape %v", ms)
	}
	if mh != h || mw != w || (mb != b && mb != 1) {
		return nil, fmt.Errorf("The size of tensor a (%d) must match the size of tensor b (%d) at non-singleton dimension 1", h, mh)
	}
	out := tensor.New(img1.Shape...)
	for bi := 0; bi < b; bi++ {
		mbi := bi
		if mb == 1 {
			mbi = 0
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				m := mask.Data[(mbi*h+y)*w+x]
				base := ((bi*h+y)*w + x) * c
				for ch := 0; ch < c; ch++ {
					out.Data[base+ch] = img1.Data[base+ch]*(1-m) + img2.Data[base+ch]*m
				}
			}
		}
	}
	return out, nil
}

func dim(t *tensor.Tensor, i int) int {
	if t == nil || len(t.Shape) <= i {
		return 0
	}
	return t.Shape[i]
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// isFloat reports whether v is a Python float.
func isFloat(v any) bool {
	_, ok := v.(float64)
	return ok
}

// customMul is TestCustomValidation1..3's body.
func customMul(in nodes.Inputs) (nodes.Result, error) {
	a, b := in["input1"], in["input2"]
	if isFloat(a) && isFloat(b) {
		return nodes.Out(scale(full(1, 1, 512, 512, 3), a.(float64)*b.(float64)))
	}
	ta, aT := a.(*tensor.Tensor)
	tb, bT := b.(*tensor.Tensor)
	switch {
	case aT && bT:
		if !sameShape(ta.Shape, tb.Shape) {
			return nodes.Result{}, fmt.Errorf("The size of tensor a must match the size of tensor b")
		}
		o := ta.Clone()
		for i := range o.Data {
			o.Data[i] *= tb.Data[i]
		}
		return nodes.Out(o)
	case aT && isFloat(b):
		return nodes.Out(scale(ta, b.(float64)))
	case bT && isFloat(a):
		return nodes.Out(scale(tb, a.(float64)))
	}
	return nodes.Result{}, fmt.Errorf("unsupported operand types")
}

func valueTypeCheck(in nodes.Inputs, names ...string) error {
	for _, n := range names {
		v := in[n]
		if v == nil {
			continue
		}
		if _, ok := v.(*tensor.Tensor); ok {
			continue
		}
		if isFloat(v) {
			continue
		}
		return fmt.Errorf("Invalid type of %s: <class '%s'>", n, pyType(v))
	}
	return nil
}

func pyType(v any) string {
	switch v.(type) {
	case int64, uint64:
		return "int"
	case string:
		return "str"
	case bool:
		return "bool"
	case float64:
		return "float"
	}
	return fmt.Sprintf("%T", v)
}

func specificDefs() []*nodes.Def {
	const cat = "Testing/Nodes"
	imgFloat := "IMAGE,FLOAT"
	cv := func(name, display string) *nodes.Def {
		return &nodes.Def{Name: name, DisplayName: display, Category: cat,
			Required: []nodes.Input{sock("input1", imgFloat), sock("input2", imgFloat)},
			Outputs:  outs(nodes.TypeImage),
			Execute:  func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) { return customMul(in) }}
	}
	cv1 := cv("TestCustomValidation1", "Custom Validation 1")
	cv1.Validate = &nodes.Validator{Inputs: []string{"input1", "input2"}, Func: func(ctx *nodes.Context, in nodes.Inputs, _ map[string]string) error {
		return valueTypeCheck(in, "input1", "input2")
	}}
	cv2 := cv("TestCustomValidation2", "Custom Validation 2")
	cv2.Validate = &nodes.Validator{Inputs: []string{"input1", "input2"}, InputTypes: true, Func: func(ctx *nodes.Context, in nodes.Inputs, types map[string]string) error {
		if err := valueTypeCheck(in, "input1", "input2"); err != nil {
			return err
		}
		for _, n := range []string{"input1", "input2"} {
			if t, ok := types[n]; ok && t != "IMAGE" && t != "FLOAT" {
				return fmt.Errorf("Invalid type of %s: %s", n, t)
			}
		}
		return nil
	}}
	cv3 := variant(cv("TestCustomValidation3", "Custom Validation 3"))
	cv4 := &nodes.Def{Name: "TestCustomValidation4", DisplayName: "Custom Validation 4", Category: cat,
		Required: []nodes.Input{sock("input1", nodes.TypeFloat), sock("input2", nodes.TypeFloat)},
		Outputs:  outs(nodes.TypeImage),
		Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
			return nodes.Out(scale(full(1, 1, 512, 512, 3), in.Float("input1")*in.Float("input2")))
		},
		Validate: &nodes.Validator{Inputs: []string{"input1", "input2"}, Func: func(ctx *nodes.Context, in nodes.Inputs, _ map[string]string) error {
			for _, n := range []string{"input1", "input2"} {
				if v := in[n]; v != nil && !isFloat(v) {
					return fmt.Errorf("Invalid type of %s: <class '%s'>", n, pyType(v))
				}
			}
			return nil
		}}}
	cv5 := &nodes.Def{Name: "TestCustomValidation5", DisplayName: "Custom Validation 5", Category: cat,
		Required: []nodes.Input{floatIn("input1", nil, 0.0, 1.0), floatIn("input2", nil, 0.0, 1.0)},
		Outputs:  outs(nodes.TypeImage),
		Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
			return nodes.Out(scale(full(1, 1, 512, 512, 3), in.Float("input1")*in.Float("input2")))
		},
		Validate: &nodes.Validator{AllInputs: true, Func: func(ctx *nodes.Context, in nodes.Inputs, _ map[string]string) error {
			if v, ok := in["input2"].(float64); ok && v == 7.0 {
				return fmt.Errorf("7s are not allowed. I've never liked 7s.")
			}
			return nil
		}}}
	return []*nodes.Def{
		{
			Name: "TestLazyMixImages", DisplayName: "Lazy Mix Images", Category: cat,
			Required: []nodes.Input{{Name: "image1", Type: nodes.TypeImage, Lazy: true},
				{Name: "image2", Type: nodes.TypeImage, Lazy: true}, sock("mask", nodes.TypeMask)},
			Outputs: outs(nodes.TypeImage),
			CheckLazy: func(ctx *nodes.Context, in nodes.Inputs) ([]string, error) {
				mask := in.Tensor("mask")
				var need []string
				if in["image1"] == nil && (mask == nil || !allEqual(mask, 1)) {
					need = append(need, "image1")
				}
				if in["image2"] == nil && (mask == nil || !allEqual(mask, 0)) {
					need = append(need, "image2")
				}
				return need, nil
			},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				mask := in.Tensor("mask")
				if mask == nil {
					return nodes.Result{}, fmt.Errorf("mask is required")
				}
				r, err := mix(in.Tensor("image1"), in.Tensor("image2"), mask)
				if err != nil {
					return nodes.Result{}, err
				}
				return nodes.Out(r)
			},
		},
		{
			Name: "TestVariadicAverage", DisplayName: "Variadic Average", Category: cat,
			Required: []nodes.Input{sock("input1", nodes.TypeImage)},
			Outputs:  outs(nodes.TypeImage),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				var ts []*tensor.Tensor
				for i := 1; ; i++ {
					v, ok := in[fmt.Sprintf("input%d", i)]
					if !ok {
						break
					}
					t, _ := v.(*tensor.Tensor)
					if t == nil {
						return nodes.Result{}, fmt.Errorf("input%d is not an image", i)
					}
					ts = append(ts, t)
				}
				out := tensor.New(ts[0].Shape...)
				for _, t := range ts {
					if len(t.Data) != len(out.Data) {
						return nodes.Result{}, fmt.Errorf("stack expects each tensor to be equal size")
					}
					for i, x := range t.Data {
						out.Data[i] += x
					}
				}
				n := float32(len(ts))
				for i := range out.Data {
					out.Data[i] /= n
				}
				return nodes.Out(out)
			},
		},
		{
			Name: "TestCustomIsChanged", DisplayName: "Custom IsChanged", Category: cat,
			Required: []nodes.Input{sock("image", nodes.TypeImage)},
			Optional: []nodes.Input{{Name: "should_change", Type: "BOOL", Default: false}},
			Outputs:  outs(nodes.TypeImage),
			Execute:  func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) { return nodes.Out(in["image"]) },
			IsChanged: func(ctx *nodes.Context, in nodes.Inputs) (any, error) {
				if truthy(in["should_change"]) {
					return math.NaN(), nil
				}
				return false, nil
			},
		},
		{
			Name: "TestIsChangedWithConstants", DisplayName: "IsChanged With Constants", Category: cat,
			Required: []nodes.Input{sock("image", nodes.TypeImage), floatIn("value", 1.0, 0.0, 10.0)},
			Outputs:  outs(nodes.TypeImage),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Out(scale(in.Tensor("image"), in.Float("value")))
			},
			IsChanged: func(ctx *nodes.Context, in nodes.Inputs) (any, error) {
				if t := in.Tensor("image"); t != nil {
					return tensorMean(t) * in.Float("value"), nil
				}
				return in["value"], nil
			},
		},
		cv1, cv2, cv3, cv4, cv5,
		{
			Name: "TestDynamicDependencyCycle", DisplayName: "Dynamic Dependency Cycle", Category: cat,
			Required: []nodes.Input{sock("input1", nodes.TypeImage), sock("input2", nodes.TypeImage)},
			Outputs:  outs(nodes.TypeImage),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				b := ctx.NewGraphBuilder()
				mask := b.Node("StubMask", "", "value", 0.5, "height", int64(512), "width", int64(512), "batch_size", int64(1))
				mix1 := b.Node("TestLazyMixImages", "", "image1", in["input1"], "mask", mask.Out(0))
				mix2 := b.Node("TestLazyMixImages", "", "image1", mix1.Out(0), "image2", in["input2"], "mask", mask.Out(0))
				mix1.SetInput("image2", mix2.Out(0))
				return nodes.Result{Outputs: []any{mix2.Out(0)}, Expand: b.Finalize()}, nil
			},
		},
		{
			Name: "TestMixedExpansionReturns", DisplayName: "Mixed Expansion Returns", Category: cat,
			Required: []nodes.Input{floatIn("input1", nil, nil, nil)},
			Outputs:  outs(nodes.TypeImage, nodes.TypeImage),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				v := in.Float("input1")
				white := full(1, 1, 512, 512, 3)
				switch {
				case v <= 0.1:
					return nodes.Out(full(0.1, 1, 512, 512, 3), white)
				case v <= 0.2:
					return nodes.Result{Outputs: []any{full(0.2, 1, 512, 512, 3), white}}, nil
				}
				b := ctx.NewGraphBuilder()
				mask := b.Node("StubMask", "", "value", 0.3, "height", int64(512), "width", int64(512), "batch_size", int64(1))
				black := b.Node("StubImage", "", "content", "BLACK", "height", int64(512), "width", int64(512), "batch_size", int64(1))
				whiteN := b.Node("StubImage", "", "content", "WHITE", "height", int64(512), "width", int64(512), "batch_size", int64(1))
				m := b.Node("TestLazyMixImages", "", "image1", black.Out(0), "image2", whiteN.Out(0), "mask", mask.Out(0))
				return nodes.Result{Outputs: []any{m.Out(0), white}, Expand: b.Finalize()}, nil
			},
		},
		{
			Name: "TestSamplingInExpansion", DisplayName: "Sampling In Expansion", Category: cat,
			Required: []nodes.Input{sock("model", nodes.TypeModel), sock("clip", nodes.TypeClip), sock("vae", nodes.TypeVAE),
				{Name: "seed", Type: nodes.TypeInt, Default: 0, Min: 0, Max: u64max},
				{Name: "steps", Type: nodes.TypeInt, Default: 20, Min: 1, Max: 100},
				{Name: "cfg", Type: nodes.TypeFloat, Default: 7.0, Min: 0.0, Max: 30.0},
				{Name: "prompt", Type: nodes.TypeString, Multiline: true, Default: "a beautiful landscape with mountains and trees"},
				{Name: "negative_prompt", Type: nodes.TypeString, Multiline: true, Default: "blurry, bad quality, worst quality"}},
			Outputs: outs(nodes.TypeImage),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				b := ctx.NewGraphBuilder()
				pos := b.Node("CLIPTextEncode", "", "clip", in["clip"], "text", in["prompt"])
				neg := b.Node("CLIPTextEncode", "", "clip", in["clip"], "text", in["negative_prompt"])
				lat := b.Node("EmptyLatentImage", "", "width", int64(512), "height", int64(512), "batch_size", int64(1))
				ks := b.Node("KSampler", "", "model", in["model"], "seed", in["seed"], "steps", in["steps"], "cfg", in["cfg"],
					"sampler_name", "euler_ancestral", "scheduler", "normal", "positive", pos.Out(0), "negative", neg.Out(0),
					"latent_image", lat.Out(0), "denoise", 1.0)
				dec := b.Node("VAEDecode", "", "samples", ks.Out(0), "vae", in["vae"])
				return nodes.Result{Outputs: []any{dec.Out(0)}, Expand: b.Finalize()}, nil
			},
		},
		{
			Name: "TestSleep", DisplayName: "Test Sleep", Category: "_for_testing", Async: true,
			Required: []nodes.Input{sock("value", "*"), {Name: "seconds", Type: nodes.TypeFloat, Default: 1.0, Min: 0.0, Max: 9999.0, Step: 0.01}},
			Hidden:   []nodes.Hidden{{Name: "unique_id", Marker: "UNIQUE_ID"}},
			Outputs:  outs("*"),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				secs := in.Float("seconds")
				start := time.Now()
				for {
					el := time.Since(start).Seconds()
					if el >= secs {
						break
					}
					if err := ctx.Progress(el, secs, nil); err != nil {
						return nodes.Result{}, err
					}
					t := time.NewTimer(10 * time.Millisecond)
					select {
					case <-ctx.Done():
						t.Stop()
						return nodes.Result{}, ctx.Err()
					case <-t.C:
					}
				}
				return nodes.Out(in["value"])
			},
		},
		{
			Name: "TestParallelSleep", DisplayName: "Test Parallel Sleep", Category: "_for_testing", OutputNode: true,
			Required: []nodes.Input{sock("image1", nodes.TypeImage), sock("image2", nodes.TypeImage), sock("image3", nodes.TypeImage),
				floatIn("sleep1", 0.5, 0.0, 10.0), floatIn("sleep2", 0.5, 0.0, 10.0), floatIn("sleep3", 0.5, 0.0, 10.0)},
			Hidden:  []nodes.Hidden{{Name: "unique_id", Marker: "UNIQUE_ID"}},
			Outputs: outs(nodes.TypeImage),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				b := ctx.NewGraphBuilder()
				var kv []any
				for i := 1; i <= 3; i++ {
					s := b.Node("TestSleep", "", "value", in[fmt.Sprintf("image%d", i)], "seconds", in[fmt.Sprintf("sleep%d", i)])
					kv = append(kv, fmt.Sprintf("input%d", i), s.Out(0))
				}
				avg := b.Node("TestVariadicAverage", "", kv...)
				return nodes.Result{Outputs: []any{avg.Out(0)}, Expand: b.Finalize()}, nil
			},
		},
		{
			Name: "TestOutputNodeWithSocketOutput", DisplayName: "Test Output Node With Socket Output", Category: "_for_testing", OutputNode: true,
			Required: []nodes.Input{sock("image", nodes.TypeImage), floatIn("value", 1.0, 0.0, 10.0)},
			Outputs:  outs(nodes.TypeImage),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Out(scale(in.Tensor("image"), in.Float("value")))
			},
		},
	}
}
