package models

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// VAE key layouts other than ComfyUI's (spec §2.1, §5.3): diffusers names (standalone
// diffusion_pytorch_model.safetensors files, or inside a checkpoint), and quant convs stored as
// encoder.quant_conv / decoder.post_quant_conv. vaeKeyMap maps an LDM key (relative to the VAE
// prefix) to the key actually stored.

var (
	reDownBlock = regexp.MustCompile(`^encoder\.down\.(\d+)\.block\.(\d+)\.(.*)$`)
	reDownSamp  = regexp.MustCompile(`^encoder\.down\.(\d+)\.downsample\.(.*)$`)
	reUpBlock   = regexp.MustCompile(`^decoder\.up\.(\d+)\.block\.(\d+)\.(.*)$`)
	reUpSamp    = regexp.MustCompile(`^decoder\.up\.(\d+)\.upsample\.(.*)$`)
	reMidBlock  = regexp.MustCompile(`^(encoder|decoder)\.mid\.block_(\d)\.(.*)$`)
	reMidAttn   = regexp.MustCompile(`^(encoder|decoder)\.mid\.attn_1\.(\w+)\.(weight|bias)$`)
)

func isDiffusersVAE(t map[string]TensorInfo, prefix string) bool {
	_, ok := t[prefix+"decoder.up_blocks.0.resnets.0.norm1.weight"]
	return ok
}

// diffusersVAEKeys returns the candidate diffusers names of LDM VAE key k (levels = encoder
// levels).
func diffusersVAEKeys(k string, levels int) []string {
	res := func(s string) string { return strings.Replace(s, "nin_shortcut", "conv_shortcut", 1) }
	if m := reDownBlock.FindStringSubmatch(k); m != nil {
		return []string{fmt.Sprintf("encoder.down_blocks.%s.resnets.%s.%s", m[1], m[2], res(m[3]))}
	}
	if m := reDownSamp.FindStringSubmatch(k); m != nil {
		return []string{fmt.Sprintf("encoder.down_blocks.%s.downsamplers.0.%s", m[1], m[2])}
	}
	if m := reUpBlock.FindStringSubmatch(k); m != nil {
		i, _ := strconv.Atoi(m[1])
		return []string{fmt.Sprintf("decoder.up_blocks.%d.resnets.%s.%s", levels-1-i, m[2], res(m[3]))}
	}
	if m := reUpSamp.FindStringSubmatch(k); m != nil {
		i, _ := strconv.Atoi(m[1])
		return []string{fmt.Sprintf("decoder.up_blocks.%d.upsamplers.0.%s", levels-1-i, m[2])}
	}
	if m := reMidBlock.FindStringSubmatch(k); m != nil {
		j, _ := strconv.Atoi(m[2])
		return []string{fmt.Sprintf("%s.mid_block.resnets.%d.%s", m[1], j-1, res(m[3]))}
	}
	if m := reMidAttn.FindStringSubmatch(k); m != nil {
		names := map[string][]string{"norm": {"group_norm"}, "q": {"to_q", "query"}, "k": {"to_k", "key"},
			"v": {"to_v", "value"}, "proj_out": {"to_out.0", "proj_attn"}}[m[2]]
		var out []string
		for _, n := range names {
			out = append(out, fmt.Sprintf("%s.mid_block.attentions.0.%s.%s", m[1], n, m[3]))
		}
		return out
	}
	k = strings.Replace(k, "encoder.norm_out.", "encoder.conv_norm_out.", 1)
	k = strings.Replace(k, "decoder.norm_out.", "decoder.conv_norm_out.", 1)
	return []string{k}
}

// vaeResolver resolves LDM VAE keys (relative to prefix) in any supported layout. The returned
// shape is the LDM shape; diffusers' Linear attention weights [C,C] are reported as [C,C,1,1]
// (Net.Lower reshapes them, the bytes are identical).
func vaeResolver(h *Header, prefix string, levels int) func(string) (string, []int, error) {
	diff := isDiffusersVAE(h.Tensors, prefix)
	return func(k string) (string, []int, error) {
		cands := []string{k}
		if diff {
			cands = diffusersVAEKeys(k, levels)
		}
		switch k {
		case "quant_conv.weight", "quant_conv.bias":
			cands = append(cands, "encoder."+k)
		case "post_quant_conv.weight", "post_quant_conv.bias":
			cands = append(cands, "decoder."+k)
		}
		for _, c := range cands {
			ti, ok := h.Tensors[prefix+c]
			if !ok {
				continue
			}
			shape := ti.Shape
			if len(shape) == 2 && reMidAttn.MatchString(k) {
				shape = []int{shape[0], shape[1], 1, 1}
			}
			return prefix + c, shape, nil
		}
		return "", nil, fmt.Errorf("VAE has no tensor %q", prefix+cands[0])
	}
}

// vaeShape returns the shape of LDM key k in the stored layout (nil if absent), for detection.
func vaeShape(t map[string]TensorInfo, prefix, k string, levels int) []int {
	_, s, err := vaeResolver(&Header{Tensors: t}, prefix, levels)(k)
	if err != nil {
		return nil
	}
	return s
}
