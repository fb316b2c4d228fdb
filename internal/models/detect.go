package models

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// TensorInfo is what detection needs of one tensor: its dtype ("F16", "F32", ...) and shape.
type TensorInfo struct {
	DType string
	Shape []int
}

// Header is a checkpoint's tensor table and __metadata__, as detection sees it (no data).
type Header struct {
	Tensors  map[string]TensorInfo
	Metadata map[string]string
	// Read, when set, returns a (small) tensor as float32; the SD2 v-prediction heuristic uses it.
	Read func(key string) ([]float32, error)
}

// DetectOptions override what the weights cannot tell.
type DetectOptions struct {
	// Family forces a family ("SD15", "SD20", "SDXL", "SDXLRefiner") for non-standard sizes.
	Family string
	// NumHeads / NumHeadChannels override the family's head settings (tiny test models).
	NumHeads, NumHeadChannels int
	// Hints are extra "tiny.*" hints (as if in __metadata__), e.g. "tiny.clip_l.heads".
	Hints map[string]string
}

// ErrNotCheckpoint is wrapped when a file holds no UNet under model.diffusion_model.
var ErrNotCheckpoint = errors.New("not a Stable Diffusion checkpoint")

// Detect recognises the model family of a checkpoint from its keys and shapes, as ComfyUI's
// model_detection does (spec models.md §2.3–2.6). Tiny models carry their family and head
// settings in __metadata__ ("tiny.family", "tiny.num_heads", "tiny.num_head_channels").
func Detect(h *Header, opt DetectOptions) (*Family, error) {
	n := 0
	for k := range h.Tensors {
		if strings.HasPrefix(k, UNetPrefix) {
			n++
		}
	}
	if n <= 5 {
		if _, ok := h.Tensors["input_blocks.0.0.weight"]; ok {
			return nil, fmt.Errorf("%w: the file is a bare diffusion model (UNet keys at the root, no VAE or text encoder); load it with UNETLoader", ErrNotCheckpoint)
		}
		return nil, fmt.Errorf("%w: no UNet weights under %q (found %d tensors, e.g. %s)", ErrNotCheckpoint, UNetPrefix, len(h.Tensors), sampleKeys(h.Tensors, 3))
	}
	u, err := DetectUNet(h.Tensors, UNetPrefix)
	if err != nil {
		return nil, err
	}
	if _, ok := h.Tensors[UNetPrefix+"scaled_fp8"]; ok {
		return nil, fmt.Errorf("scaled fp8 checkpoints are not supported yet (found %sscaled_fp8); use an fp16 or fp32 checkpoint", UNetPrefix)
	}

	if len(opt.Hints) > 0 {
		meta := map[string]string{}
		for k, v := range h.Metadata {
			meta[k] = v
		}
		for k, v := range opt.Hints {
			meta[k] = v
		}
		hh := *h
		hh.Metadata = meta
		h = &hh
	}
	famName := opt.Family
	if famName == "" {
		famName = h.Metadata["tiny.family"]
	}
	var rule *familyRule
	if famName != "" {
		if rule = ruleByName(famName); rule == nil {
			return nil, fmt.Errorf("unknown model family %q (known: SD15, SD20, SDXL, SDXLRefiner)", famName)
		}
	} else {
		for i := range familyRules {
			if familyRules[i].matches(u) {
				rule = &familyRules[i]
				break
			}
		}
	}
	if rule == nil {
		return nil, fmt.Errorf("unsupported UNet (not SD1.x, SD2.x, SDXL or SDXL refiner): %s", u)
	}
	u.NumHeads, u.NumHeadChannels = rule.heads, rule.headCh
	if v := atoi(h.Metadata["tiny.num_heads"]); v > 0 {
		u.NumHeads, u.NumHeadChannels = v, -1
	}
	if v := atoi(h.Metadata["tiny.num_head_channels"]); v > 0 {
		u.NumHeads, u.NumHeadChannels = -1, v
	}
	if opt.NumHeads > 0 {
		u.NumHeads, u.NumHeadChannels = opt.NumHeads, -1
	}
	if opt.NumHeadChannels > 0 {
		u.NumHeads, u.NumHeadChannels = -1, opt.NumHeadChannels
	}
	if err := checkHeads(u); err != nil {
		return nil, err
	}
	f := newFamily(rule, u)
	f.Hints = map[string]string{}
	for k, v := range h.Metadata {
		if strings.HasPrefix(k, "tiny.") {
			f.Hints[k] = v
		}
	}
	for i := range f.TextEncoders {
		if v := atoi(h.Metadata["tiny."+f.TextEncoders[i].Name+".heads"]); v > 0 {
			f.TextEncoders[i].Heads = v
		}
	}
	if err := detectPrediction(h, rule, f); err != nil {
		return nil, err
	}
	if hasPrefix(h.Tensors, VAEPrefix) {
		v, err := DetectVAE(h.Tensors, VAEPrefix)
		if err != nil {
			return nil, err
		}
		f.VAE = v
	}
	return f, nil
}

func checkHeads(u *UNetConfig) error {
	for _, m := range u.ChannelMult {
		ch := m * u.ModelChannels
		if u.NumHeadChannels > 0 && ch%u.NumHeadChannels != 0 || u.NumHeadChannels <= 0 && (u.NumHeads <= 0 || ch%u.NumHeads != 0) {
			return fmt.Errorf("transformer width %d does not split into heads (num_heads=%d num_head_channels=%d)", ch, u.NumHeads, u.NumHeadChannels)
		}
	}
	return nil
}

func detectPrediction(h *Header, r *familyRule, f *Family) error {
	pred := "eps"
	switch r.name {
	case "SD20":
		if f.UNet.InChannels == 4 && h.Read != nil {
			key := UNetPrefix + "output_blocks.11.1.transformer_blocks.0.norm1.bias"
			if _, ok := h.Tensors[key]; ok {
				v, err := h.Read(key)
				if err != nil {
					return fmt.Errorf("v-prediction check: %w", err)
				}
				if popStd(v) > 0.09 {
					pred = "v_prediction"
				}
			}
		}
	case "SDXL":
		if _, ok := h.Tensors["edm_mean"]; ok {
			return errors.New("EDM (Playground 2.5 style) SDXL checkpoints are not supported (found edm_mean)")
		}
		if _, ok := h.Tensors["edm_vpred.sigma_max"]; ok {
			return errors.New("EDM v-prediction SDXL checkpoints are not supported (found edm_vpred.sigma_max)")
		}
		if _, ok := h.Tensors["v_pred"]; ok {
			pred = "v_prediction"
		}
	}
	if v := h.Metadata["tiny.prediction"]; v != "" {
		pred = v
	}
	f.Prediction = pred
	f.Sampling.Type = pred
	if _, ok := h.Tensors["ztsnr"]; ok {
		f.Sampling.ZSNR = true
	}
	return nil
}

func popStd(v []float32) float64 {
	if len(v) == 0 {
		return 0
	}
	var m float64
	for _, x := range v {
		m += float64(x)
	}
	m /= float64(len(v))
	var s float64
	for _, x := range v {
		d := float64(x) - m
		s += d * d
	}
	return math.Sqrt(s / float64(len(v)))
}

// DetectUNet derives the structural UNet config from the keys under prefix (upstream
// detect_unet_config; head settings are left for the family to fill).
func DetectUNet(t map[string]TensorInfo, prefix string) (*UNetConfig, error) {
	shape := func(k string) []int {
		if ti, ok := t[prefix+k]; ok {
			return ti.Shape
		}
		return nil
	}
	in := shape("input_blocks.0.0.weight")
	if len(in) != 4 {
		return nil, fmt.Errorf("%w: missing or malformed %sinput_blocks.0.0.weight", ErrNotCheckpoint, prefix)
	}
	c := &UNetConfig{ModelChannels: in[0], InChannels: in[1], OutChannels: 4, TransformerDepthMiddle: -2}
	if s := shape("out.2.weight"); len(s) == 4 {
		c.OutChannels = s[0]
	}
	if s := shape("label_emb.0.0.weight"); len(s) == 2 {
		c.AdmInChannels = s[1]
	}
	if c.ModelChannels <= 0 || c.ModelChannels%2 != 0 {
		return nil, fmt.Errorf("bad model_channels %d", c.ModelChannels)
	}
	blockHas := func(b string) bool {
		p := prefix + b + "."
		for k := range t {
			if strings.HasPrefix(k, p) {
				return true
			}
		}
		return false
	}
	ctxSeen := false
	depth := func(b string) (int, error) {
		d := 0
		for {
			if _, ok := t[prefix+fmt.Sprintf("%s1.transformer_blocks.%d.norm1.weight", b, d)]; !ok {
				if _, ok := t[prefix+fmt.Sprintf("%s1.transformer_blocks.%d.attn2.to_k.weight", b, d)]; !ok {
					break
				}
			}
			d++
		}
		if d > 0 && !ctxSeen {
			k := shape(b + "1.transformer_blocks.0.attn2.to_k.weight")
			p := shape(b + "1.proj_in.weight")
			if len(k) != 2 || p == nil {
				return 0, fmt.Errorf("malformed transformer at %s%s1", prefix, b)
			}
			c.ContextDim = k[1]
			c.UseLinear = len(p) == 2
			ctxSeen = true
		}
		return d, nil
	}
	count := 0
	for blockHas(fmt.Sprintf("input_blocks.%d", count)) {
		count++
	}
	lastRes, lastMult := 0, 0
	for n := 0; n < count; n++ {
		m := count - 1 - n
		ib := fmt.Sprintf("input_blocks.%d.", n)
		ob := fmt.Sprintf("output_blocks.%d.", m)
		if shape(ib+"0.op.weight") != nil {
			c.NumResBlocks = append(c.NumResBlocks, lastRes)
			c.ChannelMult = append(c.ChannelMult, lastMult)
			lastRes, lastMult = 0, 0
			d, err := depth(ob)
			if err != nil {
				return nil, err
			}
			c.TransformerDepthOutput = append(c.TransformerDepthOutput, d)
			continue
		}
		if shape(ib+"0.in_layers.0.weight") != nil {
			lastRes++
			o := shape(ib + "0.out_layers.3.weight")
			if len(o) != 4 || o[0]%c.ModelChannels != 0 {
				return nil, fmt.Errorf("malformed ResBlock %s%s", prefix, ib)
			}
			lastMult = o[0] / c.ModelChannels
			d, err := depth(ib)
			if err != nil {
				return nil, err
			}
			c.TransformerDepth = append(c.TransformerDepth, d)
		}
		if shape(ob+"0.in_layers.0.weight") != nil {
			d, err := depth(ob)
			if err != nil {
				return nil, err
			}
			c.TransformerDepthOutput = append(c.TransformerDepthOutput, d)
		}
	}
	c.NumResBlocks = append(c.NumResBlocks, lastRes)
	c.ChannelMult = append(c.ChannelMult, lastMult)
	if shape("middle_block.1.proj_in.weight") != nil {
		d, err := depth("middle_block.")
		if err != nil {
			return nil, err
		}
		c.TransformerDepthMiddle = d
	} else if shape("middle_block.0.in_layers.0.weight") != nil {
		c.TransformerDepthMiddle = -1
	}
	if len(c.ChannelMult) < 1 || lastRes == 0 {
		return nil, fmt.Errorf("malformed UNet: no ResBlocks found under %sinput_blocks", prefix)
	}
	nres := 0
	for i, r := range c.NumResBlocks {
		if r <= 0 || c.ChannelMult[i] <= 0 {
			return nil, fmt.Errorf("malformed UNet: level %d has %d res blocks", i, r)
		}
		nres += r
	}
	if len(c.TransformerDepthOutput) != nres+len(c.NumResBlocks) {
		return nil, fmt.Errorf("malformed UNet: %d output blocks for %d levels × res blocks", len(c.TransformerDepthOutput), nres)
	}
	if !ctxSeen {
		return nil, fmt.Errorf("malformed UNet: no transformer blocks (cross-attention) found")
	}
	return c, nil
}

// DetectVAE derives the AutoencoderKL config structurally (spec §5.1).
func DetectVAE(t map[string]TensorInfo, prefix string) (*VAEConfig, error) {
	levels := 0
	if isDiffusersVAE(t, prefix) {
		for {
			if _, ok := t[fmt.Sprintf("%sencoder.down_blocks.%d.resnets.0.conv1.weight", prefix, levels)]; !ok {
				break
			}
			levels++
		}
	} else {
		for {
			if _, ok := t[fmt.Sprintf("%sencoder.down.%d.block.0.conv1.weight", prefix, levels)]; !ok {
				break
			}
			levels++
		}
	}
	shape := func(k string) []int { return vaeShape(t, prefix, k, levels) }
	ci := shape("encoder.conv_in.weight")
	di := shape("decoder.conv_in.weight")
	if len(ci) != 4 || len(di) != 4 {
		return nil, fmt.Errorf("malformed VAE under %q: missing encoder/decoder conv_in", prefix)
	}
	c := &VAEConfig{Ch: ci[0], InChannels: ci[1], ZChannels: di[1], EmbedDim: di[1]}
	for i := 0; i < levels; i++ {
		s := shape(fmt.Sprintf("encoder.down.%d.block.0.conv2.weight", i))
		if len(s) != 4 || c.Ch == 0 || s[0]%c.Ch != 0 {
			return nil, fmt.Errorf("malformed VAE encoder level %d", i)
		}
		c.ChMult = append(c.ChMult, s[0]/c.Ch)
	}
	for shape(fmt.Sprintf("encoder.down.0.block.%d.conv1.weight", c.NumResBlocks)) != nil {
		c.NumResBlocks++
	}
	if len(c.ChMult) == 0 || c.NumResBlocks == 0 {
		return nil, fmt.Errorf("malformed VAE under %q: no encoder levels", prefix)
	}
	if s := shape("post_quant_conv.weight"); len(s) == 4 {
		c.EmbedDim = s[1]
		c.HasQuantConv = true
	}
	if s := shape("decoder.conv_out.weight"); len(s) == 4 {
		c.OutCh = s[0]
	} else {
		return nil, fmt.Errorf("malformed VAE under %q: missing decoder.conv_out", prefix)
	}
	return c, nil
}

func hasPrefix(t map[string]TensorInfo, p string) bool {
	for k := range t {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func sampleKeys(t map[string]TensorInfo, n int) string {
	ks := make([]string, 0, len(t))
	for k := range t {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	if len(ks) > n {
		ks = ks[:n]
	}
	if len(ks) == 0 {
		return "none"
	}
	return strings.Join(ks, ", ")
}

func atoi(s string) int {
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0
	}
	return v
}
