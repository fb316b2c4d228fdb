package ort

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/tensor"
)

// BenchmarkAttention compares plain-op attention with com.microsoft MultiHeadAttention on the CPU
// at SD1.5's first-level self-attention size for a 256×256 image (32×32 latent: 1024 tokens,
// 320 channels, 8 heads), batch 2.
func BenchmarkAttention(b *testing.B) {
	rt := testRuntime(b)
	const bsz, s, hid, heads = 2, 1024, 320, 8
	r := rand.New(rand.NewPCG(7, 8))
	in := map[string]*tensor.Tensor{"q": randT(r, bsz, s, hid), "k": randT(r, bsz, s, hid), "v": randT(r, bsz, s, hid)}
	for _, fused := range []bool{false, true} {
		name := "plain"
		if fused {
			name = "MultiHeadAttention"
		}
		b.Run(name, func(b *testing.B) {
			g := onnx.NewGraph("attn")
			q := g.Input("q", onnx.Float, bsz, s, hid)
			k := g.Input("k", onnx.Float, bsz, s, hid)
			v := g.Input("v", onnx.Float, bsz, s, hid)
			var o onnx.Value
			if fused {
				o = g.MultiHeadAttention(q, k, v, heads)
			} else {
				o = g.AttentionPlain(q, k, v, heads, hid/heads)
			}
			g.Output(o, "o")
			m, err := g.Model()
			if err != nil {
				b.Fatal(err)
			}
			sess, err := rt.NewSession(m)
			if err != nil {
				b.Fatal(err)
			}
			defer sess.Close()
			for b.Loop() {
				if _, err := sess.Run(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
