package models

import (
	"os"
	"testing"
)

// netFLOPs returns the FLOPs (2 per multiply-add) the builder counted.
func netFLOPs(g *Net) (conv, matmul, attn float64) { return g.flops.conv, g.flops.matmul, g.flops.attn }

func TestUNetFLOPs(t *testing.T) {
	if os.Getenv("COMFYGO_FLOPS") == "" {
		t.Skip("set COMFYGO_FLOPS=1 to print UNet FLOPs")
	}
	ps := UNetParams(&FullUNetSD15)
	for _, s := range []int{32, 64} {
		g, err := BuildUNet(&FullUNetSD15, UNetShape{1, s, s, 77}, resolverFor(ps), true)
		if err != nil {
			t.Fatal(err)
		}
		c, m, a := netFLOPs(g)
		t.Logf("SD1.5 %d² latent: conv %.1f GFLOP, matmul %.1f, attention %.1f, total %.1f", s, c/1e9, m/1e9, a/1e9, (c+m+a)/1e9)
		d, err := BuildVAEDecoder(&FullVAE, 1, s, s, resolverFor(VAEParams(&FullVAE)), false)
		if err != nil {
			t.Fatal(err)
		}
		c, m, a = netFLOPs(d)
		t.Logf("VAE decode %d² latent: conv %.1f GFLOP, matmul %.1f, attention %.1f, total %.1f", s, c/1e9, m/1e9, a/1e9, (c+m+a)/1e9)
	}
}
