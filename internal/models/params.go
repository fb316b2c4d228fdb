package models

import "fmt"

// ParamKind tells the tiny-model generator how to initialise a tensor.
type ParamKind int

// Parameter kinds.
const (
	KindWeight   ParamKind = iota // random, small std
	KindBias                      // random, small std
	KindNormW                     // ones
	KindNormB                     // zeros
	KindEmbed                     // token/position embeddings
	KindConstant                  // scalar-like (logit_scale)
)

// Param is one tensor of a network: its key (without checkpoint prefix), shape and init kind.
type Param struct {
	Name  string
	Shape []int
	Kind  ParamKind
}

type paramList []Param

func (p *paramList) add(kind ParamKind, name string, shape ...int) {
	*p = append(*p, Param{Name: name, Shape: shape, Kind: kind})
}

func (p *paramList) linear(name string, out, in int, bias bool) {
	p.add(KindWeight, name+".weight", out, in)
	if bias {
		p.add(KindBias, name+".bias", out)
	}
}

func (p *paramList) conv(name string, out, in, k int) {
	p.add(KindWeight, name+".weight", out, in, k, k)
	p.add(KindBias, name+".bias", out)
}

func (p *paramList) norm(name string, c int) {
	p.add(KindNormW, name+".weight", c)
	p.add(KindNormB, name+".bias", c)
}

// UNetParams enumerates the tensors of a UNet with config c, keys relative to the UNet prefix,
// in forward order. It mirrors the graph builder and is used by the tiny-model generator.
func UNetParams(c *UNetConfig) []Param {
	var p paramList
	mc, ted := c.ModelChannels, c.TimeEmbedDim()
	p.linear("time_embed.0", ted, mc, true)
	p.linear("time_embed.2", ted, ted, true)
	if c.AdmInChannels > 0 {
		p.linear("label_emb.0.0", ted, c.AdmInChannels, true)
		p.linear("label_emb.0.2", ted, ted, true)
	}
	res := func(pre string, cin, cout int) {
		p.norm(pre+"in_layers.0", cin)
		p.conv(pre+"in_layers.2", cout, cin, 3)
		p.linear(pre+"emb_layers.1", cout, ted, true)
		p.norm(pre+"out_layers.0", cout)
		p.conv(pre+"out_layers.3", cout, cout, 3)
		if cin != cout {
			p.conv(pre+"skip_connection", cout, cin, 1)
		}
	}
	st := func(pre string, ch, depth int) {
		p.norm(pre+"norm", ch)
		if c.UseLinear {
			p.linear(pre+"proj_in", ch, ch, true)
		} else {
			p.conv(pre+"proj_in", ch, ch, 1)
		}
		for k := 0; k < depth; k++ {
			b := fmt.Sprintf("%stransformer_blocks.%d.", pre, k)
			p.norm(b+"norm1", ch)
			p.linear(b+"attn1.to_q", ch, ch, false)
			p.linear(b+"attn1.to_k", ch, ch, false)
			p.linear(b+"attn1.to_v", ch, ch, false)
			p.linear(b+"attn1.to_out.0", ch, ch, true)
			p.norm(b+"norm2", ch)
			p.linear(b+"attn2.to_q", ch, ch, false)
			p.linear(b+"attn2.to_k", ch, c.ContextDim, false)
			p.linear(b+"attn2.to_v", ch, c.ContextDim, false)
			p.linear(b+"attn2.to_out.0", ch, ch, true)
			p.norm(b+"norm3", ch)
			p.linear(b+"ff.net.0.proj", ch*8, ch, true)
			p.linear(b+"ff.net.2", ch, ch*4, true)
		}
		if c.UseLinear {
			p.linear(pre+"proj_out", ch, ch, true)
		} else {
			p.conv(pre+"proj_out", ch, ch, 1)
		}
	}
	walkUNet(c, unetVisitor{
		convIn: func() { p.conv("input_blocks.0.0", mc, c.InChannels, 3) },
		res:    res,
		st:     st,
		down:   func(pre string, ch int) { p.conv(pre+"op", ch, ch, 3) },
		up:     func(pre string, ch int) { p.conv(pre+"conv", ch, ch, 3) },
		out: func() {
			p.norm("out.0", mc)
			p.conv("out.2", c.OutChannels, mc, 3)
		},
	})
	return p
}

// unetVisitor receives the UNet's blocks in forward order from walkUNet. Prefixes end with ".".
type unetVisitor struct {
	convIn func()
	res    func(pre string, cin, cout int)
	st     func(pre string, ch, depth int)
	down   func(pre string, ch int)
	// push is called after every input block (skip stack); pop before every output block.
	push func()
	pop  func()
	// middleStart / outputStart mark phases (optional).
	middleStart, outputStart func()
	up                       func(pre string, ch int)
	out                      func()
}

func (v unetVisitor) call(f func()) {
	if f != nil {
		f()
	}
}

// walkUNet visits the blocks of UNet c in forward order (spec §3.4), tracking channel counts.
func walkUNet(c *UNetConfig, v unetVisitor) {
	mc := c.ModelChannels
	v.convIn()
	v.call(v.push)
	chans := []int{mc}
	ch := mc
	idx, tdi := 1, 0
	for lvl, mult := range c.ChannelMult {
		for r := 0; r < c.NumResBlocks[lvl]; r++ {
			pre := fmt.Sprintf("input_blocks.%d.", idx)
			v.res(pre+"0.", ch, mult*mc)
			ch = mult * mc
			if d := c.TransformerDepth[tdi]; d > 0 {
				v.st(pre+"1.", ch, d)
			}
			tdi++
			chans = append(chans, ch)
			v.call(v.push)
			idx++
		}
		if lvl != len(c.ChannelMult)-1 {
			v.down(fmt.Sprintf("input_blocks.%d.0.", idx), ch)
			chans = append(chans, ch)
			v.call(v.push)
			idx++
		}
	}
	v.call(v.middleStart)
	if c.TransformerDepthMiddle >= -1 {
		v.res("middle_block.0.", ch, ch)
		if c.TransformerDepthMiddle >= 0 {
			if c.TransformerDepthMiddle > 0 {
				v.st("middle_block.1.", ch, c.TransformerDepthMiddle)
			}
			v.res("middle_block.2.", ch, ch)
		}
	}
	v.call(v.outputStart)
	oi := 0
	tdo := c.TransformerDepthOutput
	for lvl := len(c.ChannelMult) - 1; lvl >= 0; lvl-- {
		mult := c.ChannelMult[lvl]
		for i := 0; i <= c.NumResBlocks[lvl]; i++ {
			skip := chans[len(chans)-1]
			chans = chans[:len(chans)-1]
			v.call(v.pop)
			pre := fmt.Sprintf("output_blocks.%d.", oi)
			v.res(pre+"0.", ch+skip, mult*mc)
			ch = mult * mc
			sub := 1
			if d := tdo[len(tdo)-1-oi]; d > 0 {
				v.st(pre+"1.", ch, d)
				sub = 2
			}
			if lvl > 0 && i == c.NumResBlocks[lvl] {
				v.up(fmt.Sprintf("%s%d.", pre, sub), ch)
			}
			oi++
		}
	}
	v.out()
}

// VAEParams enumerates the tensors of an AutoencoderKL (keys without prefix).
func VAEParams(c *VAEConfig) []Param {
	var p paramList
	res := func(pre string, cin, cout int) {
		p.norm(pre+"norm1", cin)
		p.conv(pre+"conv1", cout, cin, 3)
		p.norm(pre+"norm2", cout)
		p.conv(pre+"conv2", cout, cout, 3)
		if cin != cout {
			p.conv(pre+"nin_shortcut", cout, cin, 1)
		}
	}
	attn := func(pre string, ch int) {
		p.norm(pre+"norm", ch)
		for _, n := range []string{"q", "k", "v", "proj_out"} {
			p.conv(pre+n, ch, ch, 1)
		}
	}
	ch := c.Ch
	p.conv("encoder.conv_in", ch, c.InChannels, 3)
	bin := ch
	for i, m := range c.ChMult {
		for j := 0; j < c.NumResBlocks; j++ {
			res(fmt.Sprintf("encoder.down.%d.block.%d.", i, j), bin, ch*m)
			bin = ch * m
		}
		if i != len(c.ChMult)-1 {
			p.conv(fmt.Sprintf("encoder.down.%d.downsample.conv", i), bin, bin, 3)
		}
	}
	res("encoder.mid.block_1.", bin, bin)
	attn("encoder.mid.attn_1.", bin)
	res("encoder.mid.block_2.", bin, bin)
	p.norm("encoder.norm_out", bin)
	p.conv("encoder.conv_out", 2*c.ZChannels, bin, 3)
	if c.HasQuantConv {
		p.conv("quant_conv", 2*c.EmbedDim, 2*c.ZChannels, 1)
		p.conv("post_quant_conv", c.ZChannels, c.EmbedDim, 1)
	}
	bin = ch * c.ChMult[len(c.ChMult)-1]
	p.conv("decoder.conv_in", bin, c.ZChannels, 3)
	res("decoder.mid.block_1.", bin, bin)
	attn("decoder.mid.attn_1.", bin)
	res("decoder.mid.block_2.", bin, bin)
	for i := len(c.ChMult) - 1; i >= 0; i-- {
		for j := 0; j <= c.NumResBlocks; j++ {
			res(fmt.Sprintf("decoder.up.%d.block.%d.", i, j), bin, ch*c.ChMult[i])
			bin = ch * c.ChMult[i]
		}
		if i != 0 {
			p.conv(fmt.Sprintf("decoder.up.%d.upsample.conv", i), bin, bin, 3)
		}
	}
	p.norm("decoder.norm_out", bin)
	p.conv("decoder.conv_out", c.OutCh, bin, 3)
	return p
}

// CLIPConfig describes a CLIP text transformer for the tiny-model generator.
type CLIPConfig struct {
	Width, Layers, Heads, MLP int
	Vocab, Positions          int
	OpenCLIP                  bool // OpenCLIP key layout (packed in_proj, text_projection)
}

// CLIPParams enumerates a text encoder's tensors in its checkpoint layout (spec §2.2), keys
// relative to the encoder prefix.
func CLIPParams(c *CLIPConfig) []Param {
	var p paramList
	d := c.Width
	if c.OpenCLIP {
		p.add(KindEmbed, "token_embedding.weight", c.Vocab, d)
		p.add(KindEmbed, "positional_embedding", c.Positions, d)
		for i := 0; i < c.Layers; i++ {
			b := fmt.Sprintf("transformer.resblocks.%d.", i)
			p.norm(b+"ln_1", d)
			p.add(KindWeight, b+"attn.in_proj_weight", 3*d, d)
			p.add(KindBias, b+"attn.in_proj_bias", 3*d)
			p.linear(b+"attn.out_proj", d, d, true)
			p.norm(b+"ln_2", d)
			p.linear(b+"mlp.c_fc", c.MLP, d, true)
			p.linear(b+"mlp.c_proj", d, c.MLP, true)
		}
		p.norm("ln_final", d)
		p.add(KindWeight, "text_projection", d, d)
		p.add(KindConstant, "logit_scale")
		return p
	}
	p.add(KindEmbed, "embeddings.token_embedding.weight", c.Vocab, d)
	p.add(KindEmbed, "embeddings.position_embedding.weight", c.Positions, d)
	for i := 0; i < c.Layers; i++ {
		b := fmt.Sprintf("encoder.layers.%d.", i)
		p.norm(b+"layer_norm1", d)
		for _, n := range []string{"q_proj", "k_proj", "v_proj", "out_proj"} {
			p.linear(b+"self_attn."+n, d, d, true)
		}
		p.norm(b+"layer_norm2", d)
		p.linear(b+"mlp.fc1", c.MLP, d, true)
		p.linear(b+"mlp.fc2", d, c.MLP, true)
	}
	p.norm("final_layer_norm", d)
	return p
}
