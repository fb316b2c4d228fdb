// Package lora reads LoRA-style adapter files (LoRA, LoCon, LoHa, LoKr, full diffs) and turns
// them into weight patches for a loaded model, with ComfyUI's key maps for SD1/SD2/SDXL UNets
// and text encoders.
package lora

import (
	"fmt"
	"strings"
)

// UNetPrefix is the checkpoint prefix of UNet weights.
const UNetPrefix = "model.diffusion_model."

// UNetKeyMap returns the LoRA module key → checkpoint weight key map of a UNet (spec §6.2).
// ckptKeys are the model's checkpoint keys ("model.diffusion_model.X.weight", ...);
// diffusers maps diffusers module paths to LDM module paths relative to the UNet prefix
// (models.DiffusersUNetMap). Besides every spelling ComfyUI accepts, it adds the modern
// diffusers/PEFT attention names ComfyUI misses (".to_q" without ".processor", "to_out.0",
// "base_model.model." prefixes).
func UNetKeyMap(ckptKeys []string, diffusers map[string]string) map[string]string {
	m := map[string]string{}
	have := map[string]bool{}
	for _, k := range ckptKeys {
		if !strings.HasPrefix(k, UNetPrefix) {
			continue
		}
		have[k] = true
		x := strings.TrimPrefix(k, UNetPrefix)
		if strings.HasSuffix(x, ".weight") {
			mod := strings.TrimSuffix(x, ".weight")
			m["lora_unet_"+strings.ReplaceAll(mod, ".", "_")] = k
			m["diffusion_model."+mod] = k
		} else {
			m["diffusion_model."+x] = k
		}
	}
	for d, ldm := range diffusers {
		target := UNetPrefix + ldm + ".weight"
		if !have[target] {
			continue
		}
		flat := strings.ReplaceAll(d, ".", "_")
		m["lora_unet_"+flat] = target
		m["lycoris_"+flat] = target
		proc := strings.ReplaceAll(d, ".to_", ".processor.to_")
		if strings.HasSuffix(proc, ".to_out.0") {
			proc = proc[:len(proc)-2]
		}
		for _, p := range []string{"", "unet."} {
			m[p+proc] = target
		}
		// Gap in upstream: plain diffusers / PEFT spellings of attention modules.
		for _, p := range []string{"", "unet.", "base_model.model.", "base_model.model.unet."} {
			if _, taken := m[p+d]; !taken {
				m[p+d] = target
			}
		}
	}
	return m
}

// clipModules is ComfyUI's LORA_CLIP_MAP: internal module → kohya spelling.
var clipModules = [][2]string{
	{"mlp.fc1", "mlp_fc1"},
	{"mlp.fc2", "mlp_fc2"},
	{"self_attn.k_proj", "self_attn_k_proj"},
	{"self_attn.q_proj", "self_attn_q_proj"},
	{"self_attn.v_proj", "self_attn_v_proj"},
	{"self_attn.out_proj", "self_attn_out_proj"},
}

// CLIPKeyMap returns the LoRA module key → text-encoder weight map. internalKeys are ComfyUI's
// internal text-encoder names (models.CLIP.Keys: "clip_l.transformer.text_model...weight").
func CLIPKeyMap(internalKeys []string) map[string]string {
	m := map[string]string{}
	have := map[string]bool{}
	for _, k := range internalKeys {
		have[k] = true
		if strings.HasSuffix(k, ".weight") {
			m["text_encoders."+strings.TrimSuffix(k, ".weight")] = k
		}
	}
	clipL := false
	for _, k := range internalKeys {
		clipL = clipL || strings.HasPrefix(k, "clip_l.")
	}
	for b := 0; b < 64; b++ {
		for _, c := range clipModules {
			kohya := fmt.Sprintf("text_model_encoder_layers_%d_%s", b, c[1])
			diff := fmt.Sprintf("text_model.encoder.layers.%d.%s", b, c[0])
			for _, enc := range []string{"clip_h", "clip_l"} {
				k := fmt.Sprintf("%s.transformer.text_model.encoder.layers.%d.%s.weight", enc, b, c[0])
				if have[k] {
					m["lora_te_"+kohya] = k
					m["lora_te1_"+kohya] = k
					m["text_encoder."+diff] = k
				}
			}
			k := fmt.Sprintf("clip_g.transformer.text_model.encoder.layers.%d.%s.weight", b, c[0])
			if have[k] {
				if clipL {
					m["lora_te2_"+kohya] = k
					m["text_encoder_2."+diff] = k
				} else {
					m["lora_te_"+kohya] = k
					m["text_encoder."+diff] = k
					m["lora_prior_te_"+kohya] = k
				}
			}
		}
	}
	for _, k := range internalKeys {
		if !strings.HasSuffix(k, "transformer.text_projection.weight") {
			continue
		}
		switch {
		case strings.HasPrefix(k, "clip_l."):
			m["lora_te1_text_projection"] = k
		case strings.HasPrefix(k, "clip_g."):
			if clipL {
				m["lora_te2_text_projection"] = k
			} else {
				m["lora_prior_te_text_projection"] = k
			}
		}
	}
	return m
}
