package textenc

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/tokenizer"
)

const sd1Prefix = "cond_stage_model.transformer.text_model."

// TestGoldenCLIP checks the tiny SD1.5 text encoder against ComfyUI's outputs
// (golden clip_hidden.safetensors): last layer, clip skip -2 with and without the final
// LayerNorm, pooled, prompt weighting and a two-chunk prompt.
func TestGoldenCLIP(t *testing.T) {
	dir := goldenDir(t)
	rt := runtime(t)
	ckpt := open(t, filepath.Join(dir, "tiny_sd15.safetensors"))
	gold := open(t, filepath.Join(dir, "clip_hidden.safetensors"))
	get := func(k string) []float32 {
		x, err := gold.Float32(k)
		if err != nil {
			t.Fatal(err)
		}
		return x.Data
	}
	ids, err := gold.Int64("input_ids")
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEncoder(ckpt, sd1Prefix, LayoutHF, RoleSD1L, 2, rt)
	if err != nil {
		t.Fatal(err)
	}
	if e.D != 32 || e.Layers != 2 || e.Heads != 2 || e.MLP != 64 {
		t.Fatalf("config D=%d L=%d H=%d MLP=%d", e.D, e.Layers, e.Heads, e.MLP)
	}
	rawRole := RoleSD1L
	rawRole.LNHidden = false // penultimate_raw: the same layer without the final LayerNorm
	raw, err := NewEncoder(ckpt, sd1Prefix, LayoutHF, rawRole, 2, rt)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	last, pen, penRaw, pooled := get("last_hidden"), get("penultimate_ln"), get("penultimate_raw"), get("pooled")
	n, D := 77*32, 32
	for r := 0; r < 3; r++ {
		c := idsChunk(ids[r*77 : (r+1)*77])
		cond, pool, err := e.EncodeChunks(ctx, []tokenizer.Chunk{c}, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, fmt.Sprintf("last_hidden[%d]", r), cond.Data, last[r*n:(r+1)*n], 1e-4, 1e-4)
		closeTo(t, fmt.Sprintf("pooled[%d]", r), pool, pooled[r*D:(r+1)*D], 1e-4, 1e-4)
		cond, _, err = e.EncodeChunks(ctx, []tokenizer.Chunk{c}, -2, nil)
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, fmt.Sprintf("penultimate_ln[%d]", r), cond.Data, pen[r*n:(r+1)*n], 1e-4, 1e-4)
		cond, _, err = raw.EncodeChunks(ctx, []tokenizer.Chunk{c}, -2, nil)
		if err != nil {
			t.Fatal(err)
		}
		closeTo(t, fmt.Sprintf("penultimate_raw[%d]", r), cond.Data, penRaw[r*n:(r+1)*n], 1e-4, 1e-4)
		// CLIPSetLastLayer(-1) on SD1 equals the default; beyond the layer count is "last".
		for _, l := range []int{-1, -24} {
			cond, _, err = e.EncodeChunks(ctx, []tokenizer.Chunk{c}, l, nil)
			if err != nil {
				t.Fatal(err)
			}
			closeTo(t, fmt.Sprintf("layer %d [%d]", l, r), cond.Data, last[r*n:(r+1)*n], 1e-4, 1e-4)
		}
	}

	// Through the public CLIP value, with the golden's id "tokenizer".
	fam := &models.Family{Name: "SD15", TextEncoders: []models.TextEncoderSpec{{Name: "clip_l", Prefix: sd1Prefix, Heads: 2, Layout: "hf"}}}
	clip, err := FromCheckpoint(ckpt, fam, Options{Runtime: rt, Vocab: idWords{}})
	if err != nil {
		t.Fatal(err)
	}
	if clip.Kind() != KindSD1 {
		t.Fatalf("kind %s", clip.Kind())
	}

	// Weighted: (320 1125:1.2) 539 (320 2368:0.8).
	tk := &tokenizer.Tokenizer{Words: idWords{}, Pad: tokenizer.EOS}
	wc := tk.Tokenize("(320 1125:1.2) 539 (320 2368:0.8)").Chunks
	wids, _ := gold.Int64("weighted.input_ids")
	ww := get("weighted.weights")
	for j, tok := range wc[0] {
		if int64(tok.ID) != wids[j] || float32(tok.Weight) != ww[j] {
			t.Fatalf("weighted tokens differ at %d: %+v, want id %d w %v", j, tok, wids[j], ww[j])
		}
	}
	enc, err := clip.Encode(ctx, "(320 1125:1.2) 539 (320 2368:0.8)", nil)
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "weighted.cond", enc.Cond.Data, get("weighted.cond"), 1e-4, 1e-4)
	closeTo(t, "weighted.pooled", enc.Pooled.Data, get("weighted.pooled"), 1e-4, 1e-4)

	// Long: 100 ids -> two chunks.
	var sb strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&sb, "%d ", (i*104729+7)%49406)
	}
	lc := tk.Tokenize(sb.String()).Chunks
	lids, _ := gold.Int64("long.input_ids")
	if len(lc) != 2 {
		t.Fatalf("long: %d chunks", len(lc))
	}
	for k := range lc {
		for j, tok := range lc[k] {
			if int64(tok.ID) != lids[k*77+j] {
				t.Fatalf("long chunk %d pos %d: %d, want %d", k, j, tok.ID, lids[k*77+j])
			}
		}
	}
	enc, err = clip.Encode(ctx, sb.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(enc.Cond.Shape) != "[1 154 32]" || fmt.Sprint(enc.Pooled.Shape) != "[1 32]" {
		t.Fatalf("long shapes %v %v", enc.Cond.Shape, enc.Pooled.Shape)
	}
	closeTo(t, "long.cond", enc.Cond.Data, get("long.cond"), 1e-4, 1e-4)
	closeTo(t, "long.pooled", enc.Pooled.Data, get("long.pooled"), 1e-4, 1e-4)

	// Clip skip through the value: -2 gives penultimate_ln for the "cat" prompt.
	enc, err = clip.WithLastLayer(-2).Encode(ctx, "320 1125 539 320 2368", nil)
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "CLIPSetLastLayer(-2)", enc.Cond.Data, pen[:n], 1e-4, 1e-4)

	// End-to-end graph: CLIPTextEncode(positive ids) and CLIPTextEncode("").
	e2e := open(t, filepath.Join(dir, "end_to_end.safetensors"))
	for _, c := range []struct{ name, text string }{{"positive", "320 1125 539 320 2368"}, {"negative", ""}} {
		enc, err := clip.Encode(ctx, c.text, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"cond", "pooled"} {
			want, err := e2e.Float32(c.name + "." + k)
			if err != nil {
				t.Fatal(err)
			}
			got := enc.Cond
			if k == "pooled" {
				got = enc.Pooled
			}
			if fmt.Sprint(got.Shape) != fmt.Sprint(want.Shape) {
				t.Fatalf("%s.%s shape %v, want %v", c.name, k, got.Shape, want.Shape)
			}
			closeTo(t, "end_to_end "+c.name+"."+k, got.Data, want.Data, 1e-4, 1e-4)
		}
	}
}
