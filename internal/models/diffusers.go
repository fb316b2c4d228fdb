package models

import (
	"fmt"
	"sort"
	"strings"
)

// DiffusersUNetMap maps every diffusers UNet module path of config c (e.g.
// "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q") to its LDM module path relative
// to the UNet prefix ("input_blocks.1.1.transformer_blocks.0.attn1.to_q"), as upstream
// utils.unet_to_diffusers does (spec §6.3). Only modules that exist in c are listed.
func DiffusersUNetMap(c *UNetConfig) map[string]string {
	blocks := map[string]string{ // LDM block prefix -> diffusers prefix
		"input_blocks.0.0": "conv_in",
		"time_embed.0":     "time_embedding.linear_1",
		"time_embed.2":     "time_embedding.linear_2",
		"label_emb.0.0":    "add_embedding.linear_1",
		"label_emb.0.2":    "add_embedding.linear_2",
		"out.0":            "conv_norm_out",
		"out.2":            "conv_out",
		"middle_block.0":   "mid_block.resnets.0",
		"middle_block.1":   "mid_block.attentions.0",
		"middle_block.2":   "mid_block.resnets.1",
	}
	levels := len(c.ChannelMult)
	tdo := c.TransformerDepthOutput
	for x := 0; x < levels; x++ {
		r := c.NumResBlocks[x]
		n0 := 1 + (r+1)*x
		for i := 0; i < r; i++ {
			blocks[fmt.Sprintf("input_blocks.%d.0", n0+i)] = fmt.Sprintf("down_blocks.%d.resnets.%d", x, i)
			blocks[fmt.Sprintf("input_blocks.%d.1", n0+i)] = fmt.Sprintf("down_blocks.%d.attentions.%d", x, i)
		}
		blocks[fmt.Sprintf("input_blocks.%d.0.op", n0+r)] = fmt.Sprintf("down_blocks.%d.downsamplers.0.conv", x)
	}
	oi := 0
	for x := 0; x < levels; x++ { // up level x = LDM level levels-1-x
		r := c.NumResBlocks[levels-1-x]
		for i := 0; i <= r; i++ {
			blocks[fmt.Sprintf("output_blocks.%d.0", oi)] = fmt.Sprintf("up_blocks.%d.resnets.%d", x, i)
			blocks[fmt.Sprintf("output_blocks.%d.1", oi)] = fmt.Sprintf("up_blocks.%d.attentions.%d", x, i)
			if i == r {
				sub := 1
				if len(tdo) > 0 && tdo[len(tdo)-1-oi] > 0 {
					sub = 2
				}
				blocks[fmt.Sprintf("output_blocks.%d.%d.conv", oi, sub)] = fmt.Sprintf("up_blocks.%d.upsamplers.0.conv", x)
			}
			oi++
		}
	}
	resInner := map[string]string{"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
		"out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}
	out := map[string]string{}
	for _, p := range UNetParams(c) {
		mod := strings.TrimSuffix(strings.TrimSuffix(p.Name, ".weight"), ".bias")
		// longest LDM block prefix that matches
		best := ""
		for b := range blocks {
			if (mod == b || strings.HasPrefix(mod, b+".")) && len(b) > len(best) {
				best = b
			}
		}
		if best == "" {
			continue
		}
		rest := strings.TrimPrefix(strings.TrimPrefix(mod, best), ".")
		dn := blocks[best]
		if strings.Contains(dn, "resnets") && rest != "" {
			r, ok := resInner[rest]
			if !ok {
				continue
			}
			rest = r
		}
		if rest != "" {
			dn += "." + rest
		}
		out[dn] = mod
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
