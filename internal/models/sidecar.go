package models

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// sidecar is the part of a "<checkpoint>.json" config file comfygo reads: the format of the
// golden fixtures' tiny_sd15.json (ComfyUI's detected UNet config plus the text encoder config).
type sidecar struct {
	Family string `json:"family"`
	UNet   struct {
		Config struct {
			NumHeads        *int  `json:"num_heads"`
			NumHeadChannels *int  `json:"num_head_channels"`
			AdmInChannels   *int  `json:"adm_in_channels"`
			UseLinear       *bool `json:"use_linear_in_transformer"`
		} `json:"config"`
	} `json:"unet"`
	TextEncoder struct {
		Config struct {
			Heads int `json:"num_attention_heads"`
		} `json:"config"`
	} `json:"text_encoder"`
}

// SidecarOptions reads the optional config file next to a checkpoint (same name, ".json"):
// head counts and family for non-standard (tiny) models that detection cannot infer. It
// returns found=false when there is no such file.
func SidecarOptions(ckptPath string) (opt DetectOptions, found bool, err error) {
	p := strings.TrimSuffix(ckptPath, ".safetensors") + ".json"
	if p == ckptPath {
		return opt, false, nil
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return opt, false, nil
	}
	if err != nil {
		return opt, false, err
	}
	var s sidecar
	if err := json.Unmarshal(b, &s); err != nil {
		return opt, false, fmt.Errorf("config %s: %w", p, err)
	}
	c := s.UNet.Config
	opt.Family = s.Family
	if opt.Family == "" {
		switch {
		case c.AdmInChannels != nil && *c.AdmInChannels > 0:
			opt.Family = "SDXL"
		case c.UseLinear != nil && *c.UseLinear:
			opt.Family = "SD20"
		case c.UseLinear != nil:
			opt.Family = "SD15"
		}
	}
	if c.NumHeads != nil && *c.NumHeads > 0 {
		opt.NumHeads = *c.NumHeads
	}
	if c.NumHeadChannels != nil && *c.NumHeadChannels > 0 {
		opt.NumHeadChannels = *c.NumHeadChannels
	}
	if h := s.TextEncoder.Config.Heads; h > 0 {
		opt.Hints = map[string]string{"tiny.clip_l.heads": strconv.Itoa(h), "tiny.clip_h.heads": strconv.Itoa(h), "tiny.clip_g.heads": strconv.Itoa(h)}
	}
	return opt, true, nil
}
