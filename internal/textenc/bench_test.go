package textenc

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/safetensors"
)

// BenchmarkFullCLIPL encodes one 77-token chunk with a full-size (random, F16) CLIP-L; with
// COMFYGO_BENCH_BIGG=1 also a full SDXL pair (writes ~1.6 GB to a temp folder).
func BenchmarkFullCLIPL(b *testing.B) {
	rt := runtime(b)
	bpe(b)
	dir := b.TempDir()
	encs := map[string]*models.CLIPConfig{xlLPrefix: &models.FullCLIPL}
	fam := &models.Family{Name: "SD15", TextEncoders: []models.TextEncoderSpec{{Name: "clip_l", Prefix: xlLPrefix, Heads: 12, Layout: "hf"}}}
	if os.Getenv("COMFYGO_BENCH_BIGG") == "1" {
		encs[xlGPrefix] = &models.FullCLIPG
		fam = &models.Family{Name: "SDXL", TextEncoders: []models.TextEncoderSpec{
			{Name: "clip_l", Prefix: xlLPrefix, Heads: 12, Layout: "hf"}, {Name: "clip_g", Prefix: xlGPrefix, Heads: 20, Layout: "openclip"}}}
	}
	p := filepath.Join(dir, "full.safetensors")
	writeTinyCLIPAs(b, p, encs, 1, safetensors.F16)
	f := open(b, p)
	clip, err := FromCheckpoint(f, fam, Options{Runtime: rt})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Now()
	if _, err := clip.Encode(ctx, "warm up", nil); err != nil {
		b.Fatal(err)
	}
	b.Logf("session creation + first encode: %v", time.Since(t0))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := clip.Encode(ctx, "a photo of an astronaut riding a horse", nil); err != nil {
			b.Fatal(err)
		}
	}
}
