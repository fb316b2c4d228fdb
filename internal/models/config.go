package models

import (
	"fmt"
	"strings"
)

// Checkpoint key prefixes (spec models.md §2.1).
const (
	UNetPrefix = "model.diffusion_model."
	VAEPrefix  = "first_stage_model."
)

// UNetConfig is the structural UNet configuration ComfyUI's detect_unet_config derives from the
// state dict, plus the head settings that come from the family (or from tiny-model metadata).
type UNetConfig struct {
	InChannels    int
	OutChannels   int
	ModelChannels int
	ChannelMult   []int
	NumResBlocks  []int
	// TransformerDepth has one entry per input ResBlock (levels × res blocks), in forward order.
	TransformerDepth []int
	// TransformerDepthOutput is in detection order (output block count-1 first), as upstream.
	TransformerDepthOutput []int
	// TransformerDepthMiddle: depth of the middle transformer; -1 = middle is a single ResBlock,
	// -2 = no middle block.
	TransformerDepthMiddle int
	ContextDim             int
	UseLinear              bool // linear proj_in/proj_out (SD2/SDXL) instead of 1×1 convs
	AdmInChannels          int  // 0 = no label embedding
	NumHeads               int  // fixed head count (SD1); -1 when NumHeadChannels is used
	NumHeadChannels        int  // fixed head width (SD2/SDXL); -1 when NumHeads is used
}

// TimeEmbedDim is the width of the time embedding (4·model_channels).
func (c *UNetConfig) TimeEmbedDim() int { return 4 * c.ModelChannels }

// Heads returns the head count and head width of a transformer of width ch.
func (c *UNetConfig) Heads(ch int) (heads, dimHead int) {
	if c.NumHeadChannels > 0 {
		return ch / c.NumHeadChannels, c.NumHeadChannels
	}
	return c.NumHeads, ch / c.NumHeads
}

// String summarises the config for error messages and logs.
func (c *UNetConfig) String() string {
	adm := "none"
	if c.AdmInChannels > 0 {
		adm = fmt.Sprint(c.AdmInChannels)
	}
	return fmt.Sprintf("model_channels=%d in=%d out=%d channel_mult=%v num_res_blocks=%v transformer_depth=%v middle=%d context_dim=%d linear=%v adm=%s",
		c.ModelChannels, c.InChannels, c.OutChannels, c.ChannelMult, c.NumResBlocks, c.TransformerDepth,
		c.TransformerDepthMiddle, c.ContextDim, c.UseLinear, adm)
}

// VAEConfig is an AutoencoderKL configuration, derived structurally from the keys (spec §5.1).
type VAEConfig struct {
	Ch           int
	ChMult       []int
	NumResBlocks int
	ZChannels    int
	EmbedDim     int
	InChannels   int // image channels (3)
	OutCh        int
	HasQuantConv bool
}

// Downscale is the image/latent size ratio, 2^(levels-1).
func (c *VAEConfig) Downscale() int { return 1 << (len(c.ChMult) - 1) }

// String summarises the config.
func (c *VAEConfig) String() string {
	return fmt.Sprintf("ch=%d ch_mult=%v num_res_blocks=%d z=%d embed=%d", c.Ch, c.ChMult, c.NumResBlocks, c.ZChannels, c.EmbedDim)
}

// TextEncoderSpec names one text encoder a family uses.
type TextEncoderSpec struct {
	Name   string // "clip_l", "clip_h", "clip_g"
	Prefix string // checkpoint key prefix, e.g. "cond_stage_model.transformer.text_model."
	Heads  int    // attention heads (from the family, or tiny-model metadata)
	Layout string // "hf" (CLIP-L naming) or "openclip"
}

// Latent-preview factors (ComfyUI latent_formats.py).
var (
	sd15LatentRGB = [][3]float32{
		{0.3512, 0.2297, 0.3227},
		{0.3250, 0.4974, 0.2350},
		{-0.2829, 0.1762, 0.2721},
		{-0.2120, -0.2616, -0.7177},
	}
	sdxlLatentRGB = [][3]float32{
		{0.3651, 0.4232, 0.4341},
		{-0.2533, -0.0042, 0.1068},
		{0.1076, 0.1111, -0.0362},
		{-0.3165, -0.2492, -0.2188},
	}
	sdxlLatentRGBBias = [3]float32{0.1084, -0.0175, -0.0011}
)

// familyRule is one row of upstream supported_models: the family matches when every required
// value equals the detected one (first match in list order wins).
type familyRule struct {
	name       string
	mc, ctx    int
	linear     bool
	adm        int
	depth      []int // nil = not required
	heads      int   // num_heads (SD1) or -1
	headCh     int   // num_head_channels or -1
	scale      float64
	xl         bool
	textEncs   []TextEncoderSpec
	prediction string
}

var familyRules = []familyRule{
	{name: "SD15", mc: 320, ctx: 768, linear: false, adm: 0, heads: 8, headCh: -1, scale: 0.18215,
		textEncs: []TextEncoderSpec{{Name: "clip_l", Prefix: "cond_stage_model.transformer.text_model.", Heads: 12, Layout: "hf"}}},
	{name: "SD20", mc: 320, ctx: 1024, linear: true, adm: 0, heads: -1, headCh: 64, scale: 0.18215,
		textEncs: []TextEncoderSpec{{Name: "clip_h", Prefix: "cond_stage_model.model.", Heads: 16, Layout: "openclip"}}},
	{name: "SDXLRefiner", mc: 384, ctx: 1280, linear: true, adm: 2560, depth: []int{0, 0, 4, 4, 4, 4, 0, 0}, heads: -1, headCh: 64, scale: 0.13025, xl: true,
		textEncs: []TextEncoderSpec{{Name: "clip_g", Prefix: "conditioner.embedders.0.model.", Heads: 20, Layout: "openclip"}}},
	{name: "SDXL", mc: 320, ctx: 2048, linear: true, adm: 2816, depth: []int{0, 0, 2, 2, 10, 10}, heads: -1, headCh: 64, scale: 0.13025, xl: true,
		textEncs: []TextEncoderSpec{
			{Name: "clip_l", Prefix: "conditioner.embedders.0.transformer.text_model.", Heads: 12, Layout: "hf"},
			{Name: "clip_g", Prefix: "conditioner.embedders.1.model.", Heads: 20, Layout: "openclip"}}},
}

func ruleByName(name string) *familyRule {
	for i := range familyRules {
		if strings.EqualFold(familyRules[i].name, name) {
			return &familyRules[i]
		}
	}
	return nil
}

func (r *familyRule) matches(c *UNetConfig) bool {
	if c.ModelChannels != r.mc || c.ContextDim != r.ctx || c.UseLinear != r.linear || c.AdmInChannels != r.adm {
		return false
	}
	if r.depth != nil && !equalInts(r.depth, c.TransformerDepth) {
		return false
	}
	return true
}

func equalInts(a, b []int) bool {
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

// newFamily fills a Family from a rule and the detected config.
func newFamily(r *familyRule, u *UNetConfig) *Family {
	f := &Family{
		Name:           r.name,
		LatentChannels: 4,
		LatentScale:    r.scale,
		Prediction:     "eps",
		ContextDim:     u.ContextDim,
		AdmChannels:    u.AdmInChannels,
		UNet:           u,
		TextEncoders:   append([]TextEncoderSpec(nil), r.textEncs...),
		Sampling:       SamplingConfig{Type: "eps", LinearStart: 0.00085, LinearEnd: 0.012, Timesteps: 1000},
	}
	if u.InChannels > 0 {
		f.LatentChannels = u.OutChannels
	}
	if r.xl {
		f.LatentRGB = sdxlLatentRGB
		f.LatentRGBBias = sdxlLatentRGBBias
	} else {
		f.LatentRGB = sd15LatentRGB
	}
	f.Inpaint = u.InChannels == 9
	return f
}
