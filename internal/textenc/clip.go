package textenc

import (
	"context"
	"fmt"
	"log/slog"
	"sort"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/ort"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/internal/tokenizer"
)

// Kinds of CLIP values.
const (
	KindSD1     = "sd1"     // CLIP-L
	KindSD2     = "sd2"     // OpenCLIP ViT-H
	KindSDXL    = "sdxl"    // CLIP-L + OpenCLIP bigG
	KindRefiner = "refiner" // OpenCLIP bigG only
)

// Options configure a CLIP value.
type Options struct {
	Runtime *ort.Runtime
	// Vocab is the BPE tokenizer; nil loads tokenizer.Default().
	Vocab tokenizer.WordEncoder
	// Embeddings resolves "embedding:NAME"; nil disables textual inversion (the text is then
	// tokenized literally, as upstream without an embeddings directory).
	Embeddings *tokenizer.Embeddings
	Logger     *slog.Logger
}

// CLIP is comfygo's CLIP value: a family's tokenizer(s) and text encoder(s) with a hidden-layer
// choice and text-encoder patches. Values are immutable; the With* methods return copies that
// share the loaded encoders and their session caches.
type CLIP struct {
	family  *models.Family
	kind    string
	encs    []*Encoder // SDXL: [l, g]
	words   tokenizer.WordEncoder
	embeds  *tokenizer.Embeddings
	log     *slog.Logger
	layer   int // CLIPSetLastLayer; 0 = encoder defaults
	patches models.Patches
}

var _ models.CLIP = (*CLIP)(nil)

func newCLIP(fam *models.Family, kind string, encs []*Encoder, opts Options) (*CLIP, error) {
	c := &CLIP{family: fam, kind: kind, encs: encs, words: opts.Vocab, embeds: opts.Embeddings, log: opts.Logger}
	if c.words == nil {
		b, err := tokenizer.Default()
		if err != nil {
			return nil, err
		}
		c.words = b
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c, nil
}

// Family is the model family the CLIP belongs to.
func (c *CLIP) Family() *models.Family { return c.family }

// Kind is "sd1", "sd2", "sdxl" or "refiner".
func (c *CLIP) Kind() string { return c.kind }

// Encoders returns the text encoders (SDXL: l then g).
func (c *CLIP) Encoders() []*Encoder { return append([]*Encoder(nil), c.encs...) }

// Keys lists ComfyUI's internal text-encoder weight names ("clip_l.transformer.text_model.…",
// "clip_g.transformer.text_projection.weight"), the names upstream's LoRA key map is built from.
func (c *CLIP) Keys() []string {
	var out []string
	for _, e := range c.encs {
		out = append(out, e.Keys()...)
	}
	sort.Strings(out)
	return out
}

// WithPatches returns a copy with p added to the existing patches. Keys are internal names (as
// Keys lists them; the delta has the internal weight's shape, e.g. [D,D] for an OpenCLIP q_proj
// that lives in rows of in_proj_weight, [P,D] for a projection stored as x·P) or checkpoint keys
// (delta shaped like the stored tensor). Keys of no encoder are ignored.
func (c *CLIP) WithPatches(p models.Patches) models.CLIP {
	n := *c
	n.patches = models.Patches{}
	for k, v := range c.patches {
		n.patches[k] = append([]models.WeightPatch(nil), v...)
	}
	for k, v := range p {
		n.patches[k] = append(n.patches[k], v...)
	}
	return &n
}

// WithLastLayer returns a copy with CLIPSetLastLayer's stop_at_clip_layer: -1 = last layer,
// -2 = penultimate, ... (each encoder keeps its own final-LayerNorm rule); 0 restores defaults.
func (c *CLIP) WithLastLayer(layer int) models.CLIP {
	n := *c
	n.layer = layer
	return &n
}

// tokenize runs one encoder's tokenizer on text.
func (c *CLIP) tokenize(e *Encoder, text string) []tokenizer.Chunk {
	tk := &tokenizer.Tokenizer{Words: c.words, Pad: e.Role.Pad}
	if c.embeds != nil {
		tk.Embeddings = c.embeds.Lookup(e.Role.Name)
	}
	r := tk.Tokenize(text)
	for _, w := range r.Warnings {
		c.log.Warn(w)
	}
	return r.Chunks
}

// Encode tokenizes and encodes text. For SDXL, opts may hold per-encoder texts "clip_l" and
// "clip_g" (CLIPTextEncodeSDXL): the shorter token list is then padded with empty chunks, as
// upstream. The result's Cond is [1,77k,D] (SDXL: l and g concatenated on features, cut to the
// shorter) and Pooled [1,P] (the bigG projection for SDXL and the refiner).
func (c *CLIP) Encode(ctx context.Context, text string, opts map[string]string) (models.Encoded, error) {
	if len(c.encs) == 0 {
		return models.Encoded{}, fmt.Errorf("clip: no text encoder")
	}
	if c.kind != KindSDXL {
		e := c.encs[0]
		chunks := c.tokenize(e, text)
		cond, pooled, err := e.EncodeChunks(ctx, chunks, c.layer, c.patches)
		if err != nil {
			return models.Encoded{}, err
		}
		return models.Encoded{Cond: cond, Pooled: tensor.FromData(pooled, 1, len(pooled))}, nil
	}
	el, eg := c.encs[0], c.encs[1]
	tl, tg := text, text
	split := false
	if v, ok := opts["clip_l"]; ok {
		tl, split = v, true
	}
	if v, ok := opts["clip_g"]; ok {
		tg, split = v, true
	}
	cl, cg := c.tokenize(el, tl), c.tokenize(eg, tg)
	if split {
		for len(cl) < len(cg) {
			cl = append(cl, tokenizer.Empty(el.Role.Pad))
		}
		for len(cg) < len(cl) {
			cg = append(cg, tokenizer.Empty(eg.Role.Pad))
		}
	}
	gcond, gpooled, err := eg.EncodeChunks(ctx, cg, c.layer, c.patches)
	if err != nil {
		return models.Encoded{}, err
	}
	lcond, _, err := el.EncodeChunks(ctx, cl, c.layer, c.patches)
	if err != nil {
		return models.Encoded{}, err
	}
	return models.Encoded{Cond: concatFeatures(lcond, gcond), Pooled: tensor.FromData(gpooled, 1, len(gpooled))}, nil
}

// concatFeatures joins [1,T1,Da] and [1,T2,Db] into [1,min(T1,T2),Da+Db].
func concatFeatures(a, b *tensor.Tensor) *tensor.Tensor {
	T := min(a.Shape[1], b.Shape[1])
	da, db := a.Shape[2], b.Shape[2]
	out := tensor.New(1, T, da+db)
	for t := 0; t < T; t++ {
		copy(out.Data[t*(da+db):], a.Data[t*da:(t+1)*da])
		copy(out.Data[t*(da+db)+da:], b.Data[t*db:(t+1)*db])
	}
	return out
}
