package models

import (
	"fmt"
	"math"
)

// UNetShape is the static input shape a UNet graph is built for.
type UNetShape struct {
	Batch, Height, Width int // latent size
	Tokens               int // context length (77·k)
}

// BuildUNet describes the UNet of config c for one input shape. Graph inputs: "x" [B,in,H,W],
// "temb" [B,mc] (sinusoidal timestep embedding, see TimestepEmbedding), "context" [B,T,ctx]
// and, with adm, "y" [B,adm]. Output "out" [B,out,H,W]. param resolves UNet-relative keys.
func BuildUNet(c *UNetConfig, s UNetShape, param func(string) (string, []int, error), useMHA bool) (*Net, error) {
	g := newNet(param)
	g.UseMHA = useMHA
	mc, ted := c.ModelChannels, c.TimeEmbedDim()
	x := g.Input("x", s.Batch, c.InChannels, s.Height, s.Width)
	temb := g.Input("temb", s.Batch, mc)
	ctx := g.Input("context", s.Batch, s.Tokens, c.ContextDim)
	emb := g.Linear(g.SiLU(g.Linear(temb, "time_embed.0", ted, true)), "time_embed.2", ted, true)
	if c.AdmInChannels > 0 {
		y := g.Input("y", s.Batch, c.AdmInChannels)
		l := g.Linear(g.SiLU(g.Linear(y, "label_emb.0.0", ted, true)), "label_emb.0.2", ted, true)
		emb = g.Add(emb, l)
	}
	embAct := g.SiLU(emb)

	var h Value
	var stack []Value
	walkUNet(c, unetVisitor{
		convIn: func() { h = g.Conv3(x, "input_blocks.0.0", mc) },
		push:   func() { stack = append(stack, h) },
		pop: func() {
			skip := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			h = g.Concat(1, h, skip)
		},
		res: func(pre string, cin, cout int) { h = resBlock(g, h, embAct, pre, cout) },
		st: func(pre string, ch, depth int) {
			heads, _ := c.Heads(ch)
			h = spatialTransformer(g, h, ctx, pre, depth, heads, c.UseLinear)
		},
		down: func(pre string, ch int) { h = g.Conv(h, pre+"op", ch, 3, 2, [4]int{1, 1, 1, 1}) },
		up: func(pre string, ch int) {
			next := stack[len(stack)-1].Shape
			h = g.Conv3(g.ResizeNearest(h, next[2], next[3]), pre+"conv", ch)
		},
		out: func() {
			h = g.Conv3(g.SiLU(g.GroupNorm(h, "out.0", 1e-5)), "out.2", c.OutChannels)
		},
	})
	g.Output(h, "out")
	if g.err != nil {
		return nil, fmt.Errorf("build UNet: %w", g.err)
	}
	return g, nil
}

// resBlock is the UNet ResBlock (spec §3.5); embAct = SiLU(emb).
func resBlock(g *Net, x, embAct Value, pre string, cout int) Value {
	h := g.Conv3(g.SiLU(g.GroupNorm(x, pre+"in_layers.0", 1e-5)), pre+"in_layers.2", cout)
	e := g.Linear(embAct, pre+"emb_layers.1", cout, true)
	h = g.Add(h, g.Reshape(e, e.Shape[0], cout, 1, 1))
	h = g.Conv3(g.SiLU(g.GroupNorm(h, pre+"out_layers.0", 1e-5)), pre+"out_layers.3", cout)
	skip := x
	if x.Shape[1] != cout {
		skip = g.Conv1(x, pre+"skip_connection", cout)
	}
	return g.Add(skip, h)
}

// spatialTransformer is SpatialTransformer + BasicTransformerBlocks (spec §3.6).
func spatialTransformer(g *Net, x, ctx Value, pre string, depth, heads int, linear bool) Value {
	b, c, hh, ww := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	h := g.GroupNorm(x, pre+"norm", 1e-6)
	if linear {
		h = g.Transpose(g.Reshape(h, b, c, hh*ww), 0, 2, 1)
		h = g.Linear(h, pre+"proj_in", c, true)
	} else {
		h = g.Conv1(h, pre+"proj_in", c)
		h = g.Transpose(g.Reshape(h, b, c, hh*ww), 0, 2, 1)
	}
	for k := 0; k < depth; k++ {
		h = transformerBlock(g, h, ctx, fmt.Sprintf("%stransformer_blocks.%d.", pre, k), heads)
	}
	if linear {
		h = g.Linear(h, pre+"proj_out", c, true)
		h = g.Reshape(g.Transpose(h, 0, 2, 1), b, c, hh, ww)
	} else {
		h = g.Reshape(g.Transpose(h, 0, 2, 1), b, c, hh, ww)
		h = g.Conv1(h, pre+"proj_out", c)
	}
	return g.Add(h, x)
}

func transformerBlock(g *Net, x, ctx Value, pre string, heads int) Value {
	c := x.Shape[2]
	n := g.LayerNorm(x, pre+"norm1", 1e-5)
	x = g.Add(crossAttention(g, n, n, pre+"attn1.", heads), x)
	n = g.LayerNorm(x, pre+"norm2", 1e-5)
	x = g.Add(crossAttention(g, n, ctx, pre+"attn2.", heads), x)
	n = g.LayerNorm(x, pre+"norm3", 1e-5)
	p := g.Linear(n, pre+"ff.net.0.proj", 8*c, true)
	a := g.Slice(p, 2, 0, 4*c)
	gate := g.Slice(p, 2, 4*c, 8*c)
	u := g.Mul(a, g.GELU(gate))
	return g.Add(g.Linear(u, pre+"ff.net.2", c, true), x)
}

func crossAttention(g *Net, x, ctx Value, pre string, heads int) Value {
	c := x.Shape[2]
	q := g.Linear(x, pre+"to_q", c, false)
	k := g.Linear(ctx, pre+"to_k", c, false)
	v := g.Linear(ctx, pre+"to_v", c, false)
	return g.Linear(g.Attention(q, k, v, heads), pre+"to_out.0", c, true)
}

// TimestepEmbedding returns the sinusoidal embedding [len(t), dim] ([cos | sin], max period
// 10000), computed in float32 the way PyTorch does (spec §3.2).
func TimestepEmbedding(t []float32, dim int) []float32 {
	half := dim / 2
	freqs := make([]float32, half)
	lnp := float32(-math.Log(10000))
	for i := range freqs {
		freqs[i] = float32(math.Exp(float64(lnp * float32(i) / float32(half))))
	}
	out := make([]float32, len(t)*dim)
	for b, tv := range t {
		row := out[b*dim:]
		for i, f := range freqs {
			a := float64(tv * f)
			row[i] = float32(math.Cos(a))
			row[half+i] = float32(math.Sin(a))
		}
	}
	return out
}

// BuildVAEDecoder describes post_quant_conv + Decoder for a latent [B,z,h,w]; input "z",
// output "out" [B,3,8h,8w] (raw, before the (x+1)/2 clamp).
func BuildVAEDecoder(c *VAEConfig, b, h, w int, param func(string) (string, []int, error), useMHA bool) (*Net, error) {
	g := newNet(param)
	g.UseMHA = useMHA
	z := g.Input("z", b, c.EmbedDim, h, w)
	x := z
	if c.HasQuantConv {
		x = g.Conv1(x, "post_quant_conv", c.ZChannels)
	}
	ch := c.Ch * c.ChMult[len(c.ChMult)-1]
	x = g.Conv3(x, "decoder.conv_in", ch)
	x = vaeRes(g, x, "decoder.mid.block_1.", ch)
	x = vaeAttn(g, x, "decoder.mid.attn_1.")
	x = vaeRes(g, x, "decoder.mid.block_2.", ch)
	for i := len(c.ChMult) - 1; i >= 0; i-- {
		for j := 0; j <= c.NumResBlocks; j++ {
			x = vaeRes(g, x, fmt.Sprintf("decoder.up.%d.block.%d.", i, j), c.Ch*c.ChMult[i])
		}
		if i != 0 {
			x = g.Conv3(g.ResizeNearest(x, 2*x.Shape[2], 2*x.Shape[3]), fmt.Sprintf("decoder.up.%d.upsample.conv", i), x.Shape[1])
		}
	}
	x = g.Conv3(g.SiLU(g.GroupNorm(x, "decoder.norm_out", 1e-6)), "decoder.conv_out", c.OutCh)
	g.Output(x, "out")
	if g.err != nil {
		return nil, fmt.Errorf("build VAE decoder: %w", g.err)
	}
	return g, nil
}

// BuildVAEEncoder describes Encoder + quant_conv for an image [B,3,H,W] already mapped to
// [-1,1]; input "x", output "out" = moments [B,2·embed,H/8,W/8].
func BuildVAEEncoder(c *VAEConfig, b, h, w int, param func(string) (string, []int, error), useMHA bool) (*Net, error) {
	g := newNet(param)
	g.UseMHA = useMHA
	x := g.Input("x", b, c.InChannels, h, w)
	x = g.Conv3(x, "encoder.conv_in", c.Ch)
	for i, m := range c.ChMult {
		for j := 0; j < c.NumResBlocks; j++ {
			x = vaeRes(g, x, fmt.Sprintf("encoder.down.%d.block.%d.", i, j), c.Ch*m)
		}
		if i != len(c.ChMult)-1 {
			x = g.Conv(x, fmt.Sprintf("encoder.down.%d.downsample.conv", i), x.Shape[1], 3, 2, [4]int{0, 0, 1, 1})
		}
	}
	ch := x.Shape[1]
	x = vaeRes(g, x, "encoder.mid.block_1.", ch)
	x = vaeAttn(g, x, "encoder.mid.attn_1.")
	x = vaeRes(g, x, "encoder.mid.block_2.", ch)
	x = g.Conv3(g.SiLU(g.GroupNorm(x, "encoder.norm_out", 1e-6)), "encoder.conv_out", 2*c.ZChannels)
	if c.HasQuantConv {
		x = g.Conv1(x, "quant_conv", 2*c.EmbedDim)
	}
	g.Output(x, "out")
	if g.err != nil {
		return nil, fmt.Errorf("build VAE encoder: %w", g.err)
	}
	return g, nil
}

func vaeRes(g *Net, x Value, pre string, cout int) Value {
	h := g.Conv3(g.SiLU(g.GroupNorm(x, pre+"norm1", 1e-6)), pre+"conv1", cout)
	h = g.Conv3(g.SiLU(g.GroupNorm(h, pre+"norm2", 1e-6)), pre+"conv2", cout)
	skip := x
	if x.Shape[1] != cout {
		skip = g.Conv1(x, pre+"nin_shortcut", cout)
	}
	return g.Add(skip, h)
}

func vaeAttn(g *Net, x Value, pre string) Value {
	b, c, hh, ww := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	h := g.GroupNorm(x, pre+"norm", 1e-6)
	tok := func(v Value) Value { return g.Transpose(g.Reshape(v, b, c, hh*ww), 0, 2, 1) }
	q := tok(g.Conv1(h, pre+"q", c))
	k := tok(g.Conv1(h, pre+"k", c))
	v := tok(g.Conv1(h, pre+"v", c))
	o := g.Attention(q, k, v, 1)
	o = g.Reshape(g.Transpose(o, 0, 2, 1), b, c, hh, ww)
	return g.Add(x, g.Conv1(o, pre+"proj_out", c))
}
