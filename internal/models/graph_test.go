package models

import (
	"fmt"
	"sort"
	"testing"
)

func resolverFor(ps []Param) func(string) (string, []int, error) {
	m := map[string][]int{}
	for _, p := range ps {
		m[p.Name] = p.Shape
	}
	return func(k string) (string, []int, error) {
		s, ok := m[k]
		if !ok {
			return "", nil, fmt.Errorf("missing %s", k)
		}
		return k, s, nil
	}
}

// Every enumerated parameter is used by the graph and nothing else is asked for.
func TestGraphsUseAllParams(t *testing.T) {
	for _, c := range []*UNetConfig{&TinyUNetSD15, &TinyUNetSDXL, &FullUNetSD15, &FullUNetSDXL} {
		ps := UNetParams(c)
		for _, sh := range []UNetShape{{2, 8, 8, 77}, {1, 5, 7, 154}} {
			g, err := BuildUNet(c, sh, resolverFor(ps), false)
			if err != nil {
				t.Fatal(err)
			}
			if len(g.UsedKeys()) != len(ps) {
				t.Errorf("%s: graph uses %d of %d params", c, len(g.UsedKeys()), len(ps))
			}
			if o := g.Outputs[0].Shape; fmt.Sprint(o) != fmt.Sprint([]int{sh.Batch, 4, sh.Height, sh.Width}) {
				t.Errorf("output shape %v", o)
			}
		}
	}
	for _, c := range []*VAEConfig{&TinyVAE, &FullVAE} {
		ps := VAEParams(c)
		d, err := BuildVAEDecoder(c, 1, 5, 7, resolverFor(ps), false)
		if err != nil {
			t.Fatal(err)
		}
		e, err := BuildVAEEncoder(c, 1, 40, 56, resolverFor(ps), false)
		if err != nil {
			t.Fatal(err)
		}
		used := map[string]bool{}
		for _, k := range append(d.UsedKeys(), e.UsedKeys()...) {
			used[k] = true
		}
		var missing []string
		for _, p := range ps {
			if !used[p.Name] {
				missing = append(missing, p.Name)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 || len(used) != len(ps) {
			t.Errorf("VAE graphs miss %v", missing)
		}
		if fmt.Sprint(d.Outputs[0].Shape) != "[1 3 40 56]" || fmt.Sprint(e.Outputs[0].Shape) != "[1 8 5 7]" {
			t.Errorf("VAE shapes %v %v", d.Outputs[0].Shape, e.Outputs[0].Shape)
		}
	}
}
