// Package conditioning holds ComfyUI's text-encoding and conditioning nodes: CLIPLoader,
// DualCLIPLoader, CLIPSetLastLayer, CLIPTextEncode, CLIPTextEncodeSDXL,
// CLIPTextEncodeSDXLRefiner, ConditioningCombine, ConditioningConcat, ConditioningSetArea and
// ConditioningZeroOut, with ComfyUI's names, inputs, defaults and outputs.
package conditioning

import (
	"fmt"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

// MaxResolution is ComfyUI's MAX_RESOLUTION.
const MaxResolution = 16384

func init() {
	nodes.Register(
		&nodes.Def{
			Name: "CLIPTextEncode", DisplayName: "CLIP Text Encode (Prompt)", Category: "conditioning",
			Description: "Encodes a text prompt using a CLIP model into an embedding that can be used to guide the diffusion model towards generating specific images.",
			Required: []nodes.Input{
				{Name: "text", Type: nodes.TypeString, Multiline: true, Extra: map[string]any{"dynamicPrompts": true}, Tooltip: "The text to be encoded."},
				{Name: "clip", Type: nodes.TypeClip, Tooltip: "The CLIP model used for encoding the text."},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeCond, Tooltip: "A conditioning containing the embedded text used to guide the diffusion model."}},
			Execute: clipTextEncode,
		},
		&nodes.Def{
			Name: "CLIPSetLastLayer", DisplayName: "CLIP Set Last Layer", Category: "conditioning",
			Required: []nodes.Input{
				{Name: "clip", Type: nodes.TypeClip},
				{Name: "stop_at_clip_layer", Type: nodes.TypeInt, Default: -1, Min: -24, Max: -1, Step: 1},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeClip}},
			Execute: clipSetLastLayer,
		},
		&nodes.Def{
			Name: "CLIPTextEncodeSDXL", DisplayName: "CLIP Text Encode (SDXL)", Category: "advanced/conditioning",
			Required: []nodes.Input{
				{Name: "clip", Type: nodes.TypeClip},
				{Name: "width", Type: nodes.TypeInt, Default: 1024, Min: 0, Max: MaxResolution},
				{Name: "height", Type: nodes.TypeInt, Default: 1024, Min: 0, Max: MaxResolution},
				{Name: "crop_w", Type: nodes.TypeInt, Default: 0, Min: 0, Max: MaxResolution},
				{Name: "crop_h", Type: nodes.TypeInt, Default: 0, Min: 0, Max: MaxResolution},
				{Name: "target_width", Type: nodes.TypeInt, Default: 1024, Min: 0, Max: MaxResolution},
				{Name: "target_height", Type: nodes.TypeInt, Default: 1024, Min: 0, Max: MaxResolution},
				{Name: "text_g", Type: nodes.TypeString, Multiline: true, Extra: map[string]any{"dynamicPrompts": true}},
				{Name: "text_l", Type: nodes.TypeString, Multiline: true, Extra: map[string]any{"dynamicPrompts": true}},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeCond}},
			Execute: clipTextEncodeSDXL,
		},
		&nodes.Def{
			Name: "CLIPTextEncodeSDXLRefiner", DisplayName: "CLIPTextEncodeSDXLRefiner", Category: "advanced/conditioning",
			Required: []nodes.Input{
				{Name: "ascore", Type: nodes.TypeFloat, Default: 6.0, Min: 0.0, Max: 1000.0, Step: 0.01},
				{Name: "width", Type: nodes.TypeInt, Default: 1024, Min: 0, Max: MaxResolution},
				{Name: "height", Type: nodes.TypeInt, Default: 1024, Min: 0, Max: MaxResolution},
				{Name: "text", Type: nodes.TypeString, Multiline: true, Extra: map[string]any{"dynamicPrompts": true}},
				{Name: "clip", Type: nodes.TypeClip},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeCond}},
			Execute: clipTextEncodeRefiner,
		},
		&nodes.Def{
			Name: "ConditioningCombine", DisplayName: "Conditioning (Combine)", Category: "conditioning",
			Required: []nodes.Input{{Name: "conditioning_1", Type: nodes.TypeCond}, {Name: "conditioning_2", Type: nodes.TypeCond}},
			Outputs:  []nodes.Output{{Type: nodes.TypeCond}},
			Execute:  conditioningCombine,
		},
		&nodes.Def{
			Name: "ConditioningAverage", DisplayName: "ConditioningAverage", Category: "conditioning",
			Required: []nodes.Input{
				{Name: "conditioning_to", Type: nodes.TypeCond},
				{Name: "conditioning_from", Type: nodes.TypeCond},
				{Name: "conditioning_to_strength", Type: nodes.TypeFloat, Default: 1.0, Min: 0.0, Max: 1.0, Step: 0.01},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeCond}},
			Execute: conditioningAverage,
		},
		&nodes.Def{
			Name: "ConditioningConcat", DisplayName: "Conditioning (Concat)", Category: "conditioning",
			Required: []nodes.Input{{Name: "conditioning_to", Type: nodes.TypeCond}, {Name: "conditioning_from", Type: nodes.TypeCond}},
			Outputs:  []nodes.Output{{Type: nodes.TypeCond}},
			Execute:  conditioningConcat,
		},
		&nodes.Def{
			Name: "ConditioningSetArea", DisplayName: "Conditioning (Set Area)", Category: "conditioning",
			Required: []nodes.Input{
				{Name: "conditioning", Type: nodes.TypeCond},
				{Name: "width", Type: nodes.TypeInt, Default: 64, Min: 64, Max: MaxResolution, Step: 8},
				{Name: "height", Type: nodes.TypeInt, Default: 64, Min: 64, Max: MaxResolution, Step: 8},
				{Name: "x", Type: nodes.TypeInt, Default: 0, Min: 0, Max: MaxResolution, Step: 8},
				{Name: "y", Type: nodes.TypeInt, Default: 0, Min: 0, Max: MaxResolution, Step: 8},
				{Name: "strength", Type: nodes.TypeFloat, Default: 1.0, Min: 0.0, Max: 10.0, Step: 0.01},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeCond}},
			Execute: conditioningSetArea,
		},
		&nodes.Def{
			Name: "ConditioningZeroOut", DisplayName: "ConditioningZeroOut", Category: "advanced/conditioning",
			Required: []nodes.Input{{Name: "conditioning", Type: nodes.TypeCond}},
			Outputs:  []nodes.Output{{Type: nodes.TypeCond}},
			Execute:  conditioningZeroOut,
		},
	)
}

// clipInput returns the CLIP input or ComfyUI's error for a missing one.
func clipInput(in nodes.Inputs) (models.CLIP, error) {
	c, ok := in["clip"].(models.CLIP)
	if !ok || c == nil {
		return nil, fmt.Errorf("ERROR: clip input is invalid: None\n\nIf the clip is from a checkpoint loader node your checkpoint does not contain a valid clip or text encoder model.")
	}
	return c, nil
}

// condInput returns a CONDITIONING input.
func condInput(in nodes.Inputs, name string) (nodes.Conditioning, error) {
	switch c := in[name].(type) {
	case nodes.Conditioning:
		return c, nil
	case []nodes.CondEntry:
		return nodes.Conditioning(c), nil
	}
	return nil, fmt.Errorf("input %q is not a CONDITIONING (got %T)", name, in[name])
}

// encode runs clip.Encode and wraps the result as a one-entry conditioning: Cond, Pooled
// (ComfyUI's "pooled_output") and the extra options (SDXL sizes as int, aesthetic_score float64).
func encode(ctx *nodes.Context, clip models.CLIP, text string, opts map[string]string, add map[string]any) (nodes.Result, error) {
	enc, err := clip.Encode(ctx, text, opts)
	if err != nil {
		return nodes.Result{}, err
	}
	o := map[string]any{}
	for k, v := range add {
		o[k] = v
	}
	return nodes.Out(nodes.Conditioning{{Cond: enc.Cond, Pooled: enc.Pooled, Options: o}})
}

func clipTextEncode(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	clip, err := clipInput(in)
	if err != nil {
		return nodes.Result{}, err
	}
	return encode(ctx, clip, in.String("text"), nil, nil)
}

func clipSetLastLayer(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	clip, err := clipInput(in)
	if err != nil {
		return nodes.Result{}, err
	}
	return nodes.Out(clip.WithLastLayer(int(in.Int("stop_at_clip_layer"))))
}

func clipTextEncodeSDXL(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	clip, err := clipInput(in)
	if err != nil {
		return nodes.Result{}, err
	}
	add := map[string]any{}
	for _, k := range []string{"width", "height", "crop_w", "crop_h", "target_width", "target_height"} {
		add[k] = int(in.Int(k))
	}
	return encode(ctx, clip, in.String("text_g"), map[string]string{"clip_g": in.String("text_g"), "clip_l": in.String("text_l")}, add)
}

func clipTextEncodeRefiner(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	clip, err := clipInput(in)
	if err != nil {
		return nodes.Result{}, err
	}
	add := map[string]any{"aesthetic_score": in.Float("ascore"), "width": int(in.Int("width")), "height": int(in.Int("height"))}
	return encode(ctx, clip, in.String("text"), nil, add)
}

// copyEntry copies an entry's options map (tensors are shared, as ComfyUI's dict.copy()).
func copyEntry(e nodes.CondEntry) nodes.CondEntry {
	o := make(map[string]any, len(e.Options)+3)
	for k, v := range e.Options {
		o[k] = v
	}
	e.Options = o
	return e
}

func conditioningCombine(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	a, err := condInput(in, "conditioning_1")
	if err != nil {
		return nodes.Result{}, err
	}
	b, err := condInput(in, "conditioning_2")
	if err != nil {
		return nodes.Result{}, err
	}
	out := make(nodes.Conditioning, 0, len(a)+len(b))
	out = append(append(out, a...), b...)
	return nodes.Out(out)
}

func conditioningConcat(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	to, err := condInput(in, "conditioning_to")
	if err != nil {
		return nodes.Result{}, err
	}
	from, err := condInput(in, "conditioning_from")
	if err != nil {
		return nodes.Result{}, err
	}
	if len(from) == 0 {
		return nodes.Result{}, fmt.Errorf("ConditioningConcat: conditioning_from is empty")
	}
	if len(from) > 1 {
		ctx.Env.Logger().Warn("Warning: ConditioningConcat conditioning_from contains more than 1 cond, only the first one will actually be applied to conditioning_to.")
	}
	cf := from[0].Cond
	out := make(nodes.Conditioning, 0, len(to))
	for _, e := range to {
		c, err := catTokens(e.Cond, cf)
		if err != nil {
			return nodes.Result{}, fmt.Errorf("ConditioningConcat: %w", err)
		}
		n := copyEntry(e)
		n.Cond = c
		out = append(out, n)
	}
	return nodes.Out(out)
}

func conditioningAverage(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	to, err := condInput(in, "conditioning_to")
	if err != nil {
		return nodes.Result{}, err
	}
	from, err := condInput(in, "conditioning_from")
	if err != nil {
		return nodes.Result{}, err
	}
	if len(from) == 0 {
		return nodes.Result{}, fmt.Errorf("ConditioningAverage: conditioning_from is empty")
	}
	if len(from) > 1 {
		ctx.Env.Logger().Warn("Warning: ConditioningAverage conditioning_from contains more than 1 cond, only the first one will actually be applied to conditioning_to.")
	}
	s := float32(in.Float("conditioning_to_strength"))
	cf, pf := from[0].Cond, from[0].Pooled
	out := make(nodes.Conditioning, 0, len(to))
	for _, e := range to {
		t1 := e.Cond
		if t1 == nil || cf == nil || len(t1.Shape) != 3 || len(cf.Shape) != 3 || t1.Shape[2] != cf.Shape[2] {
			return nodes.Result{}, fmt.Errorf("ConditioningAverage: cannot average conditionings of shapes %v and %v", shapeOf(t1), shapeOf(cf))
		}
		// t0 = cond_from cut or zero-padded to t1's token count (batch 0 of cond_from).
		B, T, D := t1.Shape[0], t1.Shape[1], t1.Shape[2]
		tf := min(T, cf.Shape[1])
		tw := tensor.New(t1.Shape...)
		for b := 0; b < B; b++ {
			for i := 0; i < T*D; i++ {
				var v0 float32
				if i < tf*D {
					v0 = cf.Data[i]
				}
				tw.Data[b*T*D+i] = t1.Data[b*T*D+i]*s + v0*(1-s)
			}
		}
		n := copyEntry(e)
		n.Cond = tw
		pt := e.Pooled
		if pt == nil {
			pt = pf
		}
		switch {
		case pf != nil && pt != nil && pt.Len() == pf.Len():
			p := tensor.New(pt.Shape...)
			for i := range p.Data {
				p.Data[i] = pt.Data[i]*s + pf.Data[i]*(1-s)
			}
			n.Pooled = p
		case pf != nil:
			n.Pooled = pf
		}
		out = append(out, n)
	}
	return nodes.Out(out)
}

// catTokens concatenates [1,T1,D] and [1,T2,D] along the token axis (torch.cat(dim=1)).
func catTokens(a, b *tensor.Tensor) (*tensor.Tensor, error) {
	if a == nil || b == nil || len(a.Shape) != 3 || len(b.Shape) != 3 || a.Shape[0] != b.Shape[0] || a.Shape[2] != b.Shape[2] {
		return nil, fmt.Errorf("cannot concatenate conditionings of shapes %v and %v", shapeOf(a), shapeOf(b))
	}
	B, T1, T2, D := a.Shape[0], a.Shape[1], b.Shape[1], a.Shape[2]
	out := tensor.New(B, T1+T2, D)
	for i := 0; i < B; i++ {
		copy(out.Data[i*(T1+T2)*D:], a.Data[i*T1*D:(i+1)*T1*D])
		copy(out.Data[(i*(T1+T2)+T1)*D:], b.Data[i*T2*D:(i+1)*T2*D])
	}
	return out, nil
}

func shapeOf(t *tensor.Tensor) []int {
	if t == nil {
		return nil
	}
	return t.Shape
}

func conditioningSetArea(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	c, err := condInput(in, "conditioning")
	if err != nil {
		return nodes.Result{}, err
	}
	w, h, x, y := int(in.Int("width")), int(in.Int("height")), int(in.Int("x")), int(in.Int("y"))
	out := make(nodes.Conditioning, 0, len(c))
	for _, e := range c {
		n := copyEntry(e)
		n.Options["area"] = [4]int{floorDiv(h, 8), floorDiv(w, 8), floorDiv(y, 8), floorDiv(x, 8)}
		n.Options["strength"] = in.Float("strength")
		n.Options["set_area_to_bounds"] = false
		out = append(out, n)
	}
	return nodes.Out(out)
}

// floorDiv is Python's // for ints.
func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func conditioningZeroOut(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	c, err := condInput(in, "conditioning")
	if err != nil {
		return nodes.Result{}, err
	}
	out := make(nodes.Conditioning, 0, len(c))
	for _, e := range c {
		n := copyEntry(e)
		if e.Cond != nil {
			n.Cond = tensor.New(e.Cond.Shape...)
		}
		if e.Pooled != nil {
			n.Pooled = tensor.New(e.Pooled.Shape...)
		}
		out = append(out, n)
	}
	return nodes.Out(out)
}
