package lora

import (
	"math"
	"math/rand"
	"testing"

	"github.com/comfygo/comfygo/internal/tensor"
)

func randT(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(shape...)
	for i := range t.Data {
		t.Data[i] = float32(r.NormFloat64())
	}
	return t
}

func scalar(v float32) *tensor.Tensor { return tensor.FromData([]float32{v}) }

// naive reference matmul in float64
func mm(a *tensor.Tensor, b *tensor.Tensor, m, k, n int) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for p := 0; p < k; p++ {
				s += float64(a.Data[i*k+p]) * float64(b.Data[p*n+j])
			}
			out[i*n+j] = s
		}
	}
	return out
}

func maxDiff(got []float32, want []float64) float64 {
	w := 0.0
	for i := range want {
		w = math.Max(w, math.Abs(float64(got[i])-want[i]))
	}
	return w
}

func TestKeySpellings(t *testing.T) {
	ck := []string{
		"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight",
		"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_out.0.weight",
		"model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_out.0.bias",
		"model.diffusion_model.input_blocks.1.0.in_layers.2.weight",
	}
	dm := map[string]string{
		"down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q":     "input_blocks.1.1.transformer_blocks.0.attn1.to_q",
		"down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0": "input_blocks.1.1.transformer_blocks.0.attn1.to_out.0",
		"down_blocks.0.resnets.0.conv1":                                  "input_blocks.1.0.in_layers.2",
	}
	m := UNetKeyMap(ck, dm)
	q := "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"
	o := "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_out.0.weight"
	for k, want := range map[string]string{
		"lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q":                  q,
		"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q":        q,
		"lycoris_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q":          q,
		"diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q":            q,
		"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_q":   q,
		"down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out":      o,
		"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q":             q,
		"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0":         o,
		"base_model.model.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q": q,
		"lora_unet_down_blocks_0_resnets_0_conv1":                                     "model.diffusion_model.input_blocks.1.0.in_layers.2.weight",
		"diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_out.0.bias":   "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_out.0.bias",
	} {
		if m[k] != want {
			t.Errorf("%s -> %q, want %q", k, m[k], want)
		}
	}
	cm := CLIPKeyMap([]string{
		"clip_l.transformer.text_model.encoder.layers.0.mlp.fc1.weight",
		"clip_g.transformer.text_model.encoder.layers.1.self_attn.q_proj.weight",
		"clip_g.transformer.text_projection.weight",
	})
	for k, want := range map[string]string{
		"lora_te_text_model_encoder_layers_0_mlp_fc1":                          "clip_l.transformer.text_model.encoder.layers.0.mlp.fc1.weight",
		"lora_te1_text_model_encoder_layers_0_mlp_fc1":                         "clip_l.transformer.text_model.encoder.layers.0.mlp.fc1.weight",
		"text_encoder.text_model.encoder.layers.0.mlp.fc1":                     "clip_l.transformer.text_model.encoder.layers.0.mlp.fc1.weight",
		"text_encoders.clip_l.transformer.text_model.encoder.layers.0.mlp.fc1": "clip_l.transformer.text_model.encoder.layers.0.mlp.fc1.weight",
		"lora_te2_text_model_encoder_layers_1_self_attn_q_proj":                "clip_g.transformer.text_model.encoder.layers.1.self_attn.q_proj.weight",
		"text_encoder_2.text_model.encoder.layers.1.self_attn.q_proj":          "clip_g.transformer.text_model.encoder.layers.1.self_attn.q_proj.weight",
		"lora_te2_text_projection":                                             "clip_g.transformer.text_projection.weight",
	} {
		if cm[k] != want {
			t.Errorf("clip %s -> %q, want %q", k, cm[k], want)
		}
	}
	// refiner (bigG only): lora_te_ and lora_prior_te_ spellings
	rm := CLIPKeyMap([]string{"clip_g.transformer.text_model.encoder.layers.0.mlp.fc2.weight"})
	if rm["lora_te_text_model_encoder_layers_0_mlp_fc2"] == "" || rm["lora_prior_te_text_model_encoder_layers_0_mlp_fc2"] == "" {
		t.Errorf("refiner map missing lora_te_/lora_prior_te_: %v", rm)
	}
}

func TestPatchMath(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	// plain conv LoRA with alpha: delta = alpha/r * up·down
	up, down := randT(r, 6, 3, 1, 1), randT(r, 3, 5, 3, 3)
	f := &File{Name: "x", Tensors: map[string]*tensor.Tensor{
		"m.lora_up.weight": up, "m.lora_down.weight": down, "m.alpha": scalar(1.5),
		"junk.weight": scalar(1),
	}}
	l, err := f.Apply(map[string]string{"m": "W.weight"}, nil, -0.5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.NotLoaded) != 1 || l.NotLoaded[0] != "junk.weight" {
		t.Errorf("not loaded = %v, want [junk.weight]", l.NotLoaded)
	}
	wp := l.UNet["W.weight"][0]
	if wp.Strength != -0.5 || wp.Source != "x" {
		t.Errorf("patch strength/source %v %q", wp.Strength, wp.Source)
	}
	d, err := wp.Patch.Delta([]int{6, 5, 3, 3})
	if err != nil {
		t.Fatal(err)
	}
	want := mm(up, down, 6, 3, 45)
	for i := range want {
		want[i] *= 0.5
	}
	if md := maxDiff(d.Data, want); md > 1e-5 {
		t.Errorf("conv lora delta diff %g", md)
	}
	if _, err := wp.Patch.Delta([]int{6, 5}); err == nil {
		t.Error("wrong-size weight accepted")
	}

	// LoCon Tucker: delta[o,i,y,x] = Σ_a Σ_b up[o,a] mid[a,b,y,x] down[b,i]
	up2, mid, down2 := randT(r, 4, 2, 1, 1), randT(r, 2, 2, 3, 3), randT(r, 2, 3, 1, 1)
	f2 := &File{Name: "t", Tensors: map[string]*tensor.Tensor{"m.lora_up.weight": up2, "m.lora_mid.weight": mid, "m.lora_down.weight": down2}}
	l2, _ := f2.Apply(map[string]string{"m": "W"}, nil, 1, 0)
	d2, err := l2.UNet["W"][0].Patch.Delta([]int{4, 3, 3, 3})
	if err != nil {
		t.Fatal(err)
	}
	ref := make([]float64, 4*3*9)
	for o := 0; o < 4; o++ {
		for i := 0; i < 3; i++ {
			for s := 0; s < 9; s++ {
				v := 0.0
				for a := 0; a < 2; a++ {
					for b := 0; b < 2; b++ {
						v += float64(up2.Data[o*2+a]) * float64(mid.Data[(a*2+b)*9+s]) * float64(down2.Data[b*3+i])
					}
				}
				ref[(o*3+i)*9+s] = v
			}
		}
	}
	if md := maxDiff(d2.Data, ref); md > 1e-5 || len(l2.NotLoaded) != 0 {
		t.Errorf("tucker delta diff %g, not loaded %v", md, l2.NotLoaded)
	}

	// LoHa: (w1a·w1b) ⊙ (w2a·w2b) * alpha/r
	w1a, w1b, w2a, w2b := randT(r, 4, 2), randT(r, 2, 6), randT(r, 4, 2), randT(r, 2, 6)
	f3 := &File{Name: "h", Tensors: map[string]*tensor.Tensor{"m.hada_w1_a": w1a, "m.hada_w1_b": w1b, "m.hada_w2_a": w2a, "m.hada_w2_b": w2b, "m.alpha": scalar(1)}}
	l3, _ := f3.Apply(map[string]string{"m": "W"}, nil, 1, 0)
	d3, err := l3.UNet["W"][0].Patch.Delta([]int{4, 6})
	if err != nil {
		t.Fatal(err)
	}
	m1, m2 := mm(w1a, w1b, 4, 2, 6), mm(w2a, w2b, 4, 2, 6)
	for i := range m1 {
		m1[i] *= m2[i] * 0.5
	}
	if md := maxDiff(d3.Data, m1); md > 1e-5 || len(l3.NotLoaded) != 0 {
		t.Errorf("loha delta diff %g, not loaded %v", md, l3.NotLoaded)
	}

	// LoHa with Tucker cores: m[p,q,y,x] = Σ_i Σ_j t[i,j,y,x]·wb[j,q]·wa[i,p]
	t1, t2 := randT(r, 2, 2, 3, 3), randT(r, 2, 2, 3, 3)
	a1, b1, a2, b2 := randT(r, 2, 4), randT(r, 2, 5), randT(r, 2, 4), randT(r, 2, 5)
	f4 := &File{Name: "ht", Tensors: map[string]*tensor.Tensor{"m.hada_w1_a": a1, "m.hada_w1_b": b1, "m.hada_w2_a": a2, "m.hada_w2_b": b2, "m.hada_t1": t1, "m.hada_t2": t2}}
	l4, _ := f4.Apply(map[string]string{"m": "W"}, nil, 1, 0)
	d4, err := l4.UNet["W"][0].Patch.Delta([]int{4, 5, 3, 3})
	if err != nil {
		t.Fatal(err)
	}
	core := func(tt, wa, wb *tensor.Tensor, p, q, s int) float64 {
		v := 0.0
		for i := 0; i < 2; i++ {
			for j := 0; j < 2; j++ {
				v += float64(tt.Data[(i*2+j)*9+s]) * float64(wb.Data[j*5+q]) * float64(wa.Data[i*4+p])
			}
		}
		return v
	}
	ref4 := make([]float64, 4*5*9)
	for p := 0; p < 4; p++ {
		for q := 0; q < 5; q++ {
			for s := 0; s < 9; s++ {
				ref4[(p*5+q)*9+s] = core(t1, a1, b1, p, q, s) * core(t2, a2, b2, p, q, s)
			}
		}
	}
	if md := maxDiff(d4.Data, ref4); md > 1e-4 {
		t.Errorf("loha tucker delta diff %g", md)
	}

	// LoKr: kron(w1, w2a·w2b) * alpha/dim(w2b)
	k1, k2a, k2b := randT(r, 2, 3), randT(r, 4, 2), randT(r, 2, 5)
	f5 := &File{Name: "k", Tensors: map[string]*tensor.Tensor{"m.lokr_w1": k1, "m.lokr_w2_a": k2a, "m.lokr_w2_b": k2b, "m.alpha": scalar(4)}}
	l5, _ := f5.Apply(map[string]string{"m": "W"}, nil, 1, 0)
	d5, err := l5.UNet["W"][0].Patch.Delta([]int{8, 15})
	if err != nil {
		t.Fatal(err)
	}
	w2 := mm(k2a, k2b, 4, 2, 5)
	ref5 := make([]float64, 8*15)
	for a := 0; a < 2; a++ {
		for c := 0; c < 3; c++ {
			for b := 0; b < 4; b++ {
				for d := 0; d < 5; d++ {
					ref5[(a*4+b)*15+c*5+d] = float64(k1.Data[a*3+c]) * w2[b*5+d] * 2
				}
			}
		}
	}
	if md := maxDiff(d5.Data, ref5); md > 1e-5 || len(l5.NotLoaded) != 0 {
		t.Errorf("lokr delta diff %g, not loaded %v", md, l5.NotLoaded)
	}
	// LoKr with whole factors ignores alpha; 4-D w2 widens w1
	k4 := randT(r, 3, 2, 3, 3)
	f6 := &File{Name: "k4", Tensors: map[string]*tensor.Tensor{"m.lokr_w1": k1, "m.lokr_w2": k4, "m.alpha": scalar(8)}}
	l6, _ := f6.Apply(map[string]string{"m": "W"}, nil, 1, 0)
	d6, err := l6.UNet["W"][0].Patch.Delta([]int{6, 6, 3, 3})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d6.Data[((1*3+2)*6+(2*2+1))*9+4], k1.Data[1*3+2]*k4.Data[(2*2+1)*9+4]; math.Abs(float64(got-want)) > 1e-6 {
		t.Errorf("lokr 4-D element %v, want %v", got, want)
	}

	// diff + diff_b
	dd, db := randT(r, 2, 2), randT(r, 2)
	f7 := &File{Name: "d", Tensors: map[string]*tensor.Tensor{"m.diff": dd, "m.diff_b": db}}
	l7, _ := f7.Apply(map[string]string{"m": "W.weight"}, nil, 1, 0)
	if len(l7.UNet["W.weight"]) != 1 || len(l7.UNet["W.bias"]) != 1 {
		t.Errorf("diff patches: %v", l7.UNet)
	}
}

func TestPEFTAndStackingAndStrengthZero(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	a, b := randT(r, 2, 4), randT(r, 4, 2)
	f := &File{Name: "p", Tensors: map[string]*tensor.Tensor{"unet.x.lora_A.weight": a, "unet.x.lora_B.weight": b}}
	g := &File{Name: "q", Tensors: map[string]*tensor.Tensor{"lora_unet_x.lora_down.weight": a, "lora_unet_x.lora_up.weight": b}}
	km := map[string]string{"unet.x": "W", "lora_unet_x": "W"}
	l1, _ := f.Apply(km, nil, 1, 0)
	l2, _ := g.Apply(km, nil, 0.7, 0)
	stack := map[string][]float64{}
	for _, l := range []*Loaded{l1, l2} {
		for k, wps := range l.UNet {
			for _, wp := range wps {
				stack[k] = append(stack[k], wp.Strength)
			}
		}
	}
	if len(stack["W"]) != 2 || stack["W"][1] != 0.7 {
		t.Errorf("stacked patches = %v", stack)
	}
	l3, _ := f.Apply(km, nil, 0, 0)
	if len(l3.UNet) != 0 || len(l3.NotLoaded) != 0 {
		t.Errorf("strength 0: patches %v, not loaded %v", l3.UNet, l3.NotLoaded)
	}
	// DoRA modules are refused (reported as not loaded), not applied without their magnitude.
	h := &File{Name: "dora", Tensors: map[string]*tensor.Tensor{"m.lora_up.weight": b, "m.lora_down.weight": a, "m.dora_scale": randT(r, 4, 1)}}
	l4, _ := h.Apply(map[string]string{"m": "W"}, nil, 1, 0)
	if len(l4.UNet) != 0 || len(l4.NotLoaded) != 3 {
		t.Errorf("dora: patches %v, not loaded %v", l4.UNet, l4.NotLoaded)
	}
}

func TestMatmulParallel(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	a, b := randT(r, 70, 33), randT(r, 33, 600)
	got := matmul(a.Data, b.Data, 70, 33, 600)
	if md := maxDiff(got, mm(a, b, 70, 33, 600)); md > 1e-4 {
		t.Errorf("matmul diff %g", md)
	}
}

// FuzzApply feeds arbitrary tensor shapes through module matching and Delta: it must return
// errors, never panic.
func FuzzApply(f *testing.F) {
	f.Add(uint8(4), uint8(2), uint8(3), uint8(1), uint8(0))
	f.Add(uint8(1), uint8(1), uint8(1), uint8(3), uint8(2))
	f.Fuzz(func(t *testing.T, o, rk, in, kind, extra uint8) {
		o, rk, in = o%9+1, rk%5+1, in%9+1
		r := rand.New(rand.NewSource(int64(o)*31 + int64(rk)))
		ts := map[string]*tensor.Tensor{}
		switch kind % 4 {
		case 0:
			ts["m.lora_up.weight"] = randT(r, int(o), int(rk))
			ts["m.lora_down.weight"] = randT(r, int(rk)+int(extra%2), int(in))
			if extra%3 == 0 {
				ts["m.lora_mid.weight"] = randT(r, int(rk), int(rk)+int(extra%2), 3, 3)
			}
		case 1:
			ts["m.hada_w1_a"] = randT(r, int(o), int(rk))
			ts["m.hada_w1_b"] = randT(r, int(rk), int(in))
			ts["m.hada_w2_a"] = randT(r, int(o), int(rk)+int(extra%2))
			ts["m.hada_w2_b"] = randT(r, int(rk), int(in))
		case 2:
			ts["m.lokr_w1"] = randT(r, int(o), int(rk))
			ts["m.lokr_w2_a"] = randT(r, int(in), int(extra%3)+1)
			ts["m.lokr_w2_b"] = randT(r, int(extra%3)+1, int(in))
		case 3:
			ts["m.diff"] = randT(r, int(o), int(in))
			ts["m.alpha"] = tensor.New(0)
		}
		file := &File{Name: "fuzz", Tensors: ts}
		l, err := file.Apply(map[string]string{"m": "W"}, nil, 1, 0)
		if err != nil {
			return
		}
		for _, wps := range l.UNet {
			for _, wp := range wps {
				_, _ = wp.Patch.Delta([]int{int(o), int(in)})
				_, _ = wp.Patch.Delta([]int{int(o), int(in), 3, 3})
			}
		}
	})
}

func TestApplyReusesPatchValues(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	f := &File{Name: "p", Tensors: map[string]*tensor.Tensor{"m.lora_down.weight": randT(r, 2, 4), "m.lora_up.weight": randT(r, 4, 2)}}
	a, _ := f.Apply(map[string]string{"m": "W"}, nil, 1, 0)
	b, _ := f.Apply(map[string]string{"m": "W"}, nil, 0.5, 0)
	if a.UNet["W"][0].Patch != b.UNet["W"][0].Patch {
		t.Error("second Apply built new patch values (breaks the session cache)")
	}
}

func BenchmarkMatmulRank64(b *testing.B) {
	r := rand.New(rand.NewSource(5))
	a, w := randT(r, 1280, 64), randT(r, 64, 1280)
	b.SetBytes(1280 * 1280 * 4)
	for i := 0; i < b.N; i++ {
		matmul(a.Data, w.Data, 1280, 64, 1280)
	}
}
