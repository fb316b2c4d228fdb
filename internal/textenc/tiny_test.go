package textenc

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/tokenizer"
)

// TestGeneratedCheckpoints runs FromCheckpoint on the families models.Detect finds in the
// generated tiny checkpoints (the CheckpointLoaderSimple path), with their bundled embeddings.
func TestGeneratedCheckpoints(t *testing.T) {
	rt := runtime(t)
	bpe(t)
	dir := t.TempDir()
	only := []string{models.TinySD15File, models.TinySDXLFile, models.TinyEmbeddingFile, models.TinyEmbeddingXL}
	if _, err := models.GenerateTiny(dir, models.GenOptions{Only: only}); err != nil {
		t.Fatal(err)
	}
	emb := tokenizer.NewEmbeddings([]string{filepath.Join(dir, "embeddings")})
	for _, c := range []struct {
		file, kind, cond, pooled, prompt string
	}{
		{models.TinySD15File, KindSD1, "[1 77 48]", "[1 48]", "a photo of a cat, embedding:tiny-embedding"},
		{models.TinySDXLFile, KindSDXL, "[1 77 112]", "[1 64]", "a (photo:1.2) of a cat embedding:tiny-embedding-sdxl"},
	} {
		f := open(t, filepath.Join(dir, filepath.FromSlash(c.file)))
		fam, err := models.Detect(models.HeaderFromFile(f), models.DetectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		clip, err := FromCheckpoint(f, fam, Options{Runtime: rt, Embeddings: emb})
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if clip.Kind() != c.kind {
			t.Errorf("%s: kind %s, want %s", c.file, clip.Kind(), c.kind)
		}
		for _, e := range clip.Encoders() {
			if e.D%e.Heads != 0 || e.Heads != map[string]int{"clip_l": models.TinyCLIPL.Heads, "clip_g": models.TinyCLIPG.Heads}[e.Role.Name] {
				t.Errorf("%s %s: %d heads", c.file, e.Role.Name, e.Heads)
			}
		}
		enc, err := clip.WithLastLayer(-2).Encode(context.Background(), c.prompt, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if fmt.Sprint(enc.Cond.Shape) != c.cond || fmt.Sprint(enc.Pooled.Shape) != c.pooled {
			t.Errorf("%s: shapes %v %v, want %s %s", c.file, enc.Cond.Shape, enc.Pooled.Shape, c.cond, c.pooled)
		}
		if fam.ContextDim != enc.Cond.Shape[2] {
			t.Errorf("%s: cond width %d, UNet context %d", c.file, enc.Cond.Shape[2], fam.ContextDim)
		}
	}
}
