package graph

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	dgraph "github.com/dominikbraun/graph"
)

func mustPrompt(t testing.TB, s string) *Prompt {
	t.Helper()
	p, err := ParsePrompt([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDeps(t *testing.T) {
	tests := []struct {
		name      string
		prompt    string
		order     string // "" when cyclic
		cycles    [][]string
		ancestors map[string]string
		dangling  int
	}{
		{
			name: "chain_fan",
			prompt: `{"save": {"class_type": "S", "inputs": {"images": ["dec", 0]}},
			 "dec": {"class_type": "D", "inputs": {"samples": ["ks", 0], "vae": ["ck", 2]}},
			 "ks": {"class_type": "K", "inputs": {"model": ["ck", 0], "pos": ["te", 0], "neg": ["te", 0], "seed": 5}},
			 "te": {"class_type": "T", "inputs": {"clip": ["ck", 1]}},
			 "ck": {"class_type": "C", "inputs": {}},
			 "lonely": {"class_type": "L", "inputs": {"x": ["gone", 0]}}}`,
			order:     "ck,lonely,te,ks,dec,save",
			ancestors: map[string]string{"save": "dec,ks,te,ck", "te": "ck", "ck": "", "dec,te": "ks,te,ck"},
			dangling:  1,
		},
		{
			name: "cycles",
			prompt: `{"a": {"class_type": "X", "inputs": {"i": ["c", 0]}},
			 "b": {"class_type": "X", "inputs": {"i": ["a", 0]}},
			 "c": {"class_type": "X", "inputs": {"i": ["b", 0]}},
			 "d": {"class_type": "X", "inputs": {"i": ["d", 0]}},
			 "e": {"class_type": "X", "inputs": {"i": ["a", 0]}},
			 "f": {"class_type": "X", "inputs": {}}}`,
			cycles:    [][]string{{"a", "b", "c"}, {"d"}},
			ancestors: map[string]string{"e": "a,b,c", "a": "a,b,c", "f": ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustPrompt(t, tc.prompt)
			d := p.Deps()
			if len(d.Dangling) != tc.dangling {
				t.Errorf("dangling = %v", d.Dangling)
			}
			order, err := d.TopologicalOrder()
			if tc.order != "" {
				if err != nil || strings.Join(order, ",") != tc.order {
					t.Errorf("order = %v, %v; want %s", order, err, tc.order)
				}
				if c := d.Cycles(); c != nil {
					t.Errorf("cycles in acyclic prompt: %v", c)
				}
			} else {
				var ce *CycleError
				if !errors.As(err, &ce) || !reflect.DeepEqual(sortedCycles(ce.Cycles), tc.cycles) {
					t.Errorf("err = %v, want cycles %v", err, tc.cycles)
				}
			}
			for in, want := range tc.ancestors {
				got := d.Ancestors(strings.Split(in, ",")...)
				if strings.Join(got, ",") != want {
					t.Errorf("Ancestors(%s) = %v, want %s", in, got, want)
				}
			}
			g, err := p.DAG()
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := g.Order(); n != len(p.IDs) {
				t.Errorf("DAG order = %d", n)
			}
		})
	}
}

func sortedCycles(c [][]string) [][]string {
	out := append([][]string(nil), c...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j][0] < out[j-1][0]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// randomDAG builds an n-node prompt where each node links to up to 3 earlier nodes, listed
// in shuffled order.
func randomDAG(n int, seed int64) *Prompt {
	r := rand.New(rand.NewSource(seed))
	p := NewPrompt()
	perm := r.Perm(n)
	nodes := make([]*Node, n)
	for i := 0; i < n; i++ {
		nodes[i] = &Node{ClassType: "X"}
		for k := 0; k < 3 && i > 0; k++ {
			nodes[i].Inputs.Set(fmt.Sprintf("in%d", k), Link{NodeID: fmt.Sprint(r.Intn(i)), Slot: 0})
		}
	}
	for _, i := range perm {
		p.Add(fmt.Sprint(i), nodes[i])
	}
	return p
}

func TestTopologicalOrderValid(t *testing.T) {
	p := randomDAG(3000, 1)
	order, err := p.TopologicalOrder()
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, id := range order {
		pos[id] = i
	}
	for _, id := range p.IDs {
		for _, v := range p.Nodes[id].Inputs.Values {
			if l, ok := v.(Link); ok && pos[l.NodeID] >= pos[id] {
				t.Fatalf("%s before its source %s", id, l.NodeID)
			}
		}
	}
	// Close the loop: the last node feeds node 0's consumers' ancestor chain.
	p.Nodes["0"].Inputs.Set("back", Link{NodeID: order[len(order)-1], Slot: 0})
	if _, err := p.TopologicalOrder(); err == nil {
		t.Fatal("cycle not detected")
	}
}

func BenchmarkTopologicalOrder10k(b *testing.B) {
	p := randomDAG(10000, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.TopologicalOrder(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAncestors10k(b *testing.B) {
	p := randomDAG(10000, 1)
	d := p.Deps()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Ancestors("9999")
	}
}

func BenchmarkCycles10k(b *testing.B) {
	p := randomDAG(10000, 1)
	d := p.Deps()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.Cycles()
	}
}

// BenchmarkTopoDominikbraun measures dominikbraun/graph's TopologicalSort on the same graph
// (quadratic: it rescans the predecessor map for every vertex).
func BenchmarkTopoDominikbraun10k(b *testing.B) {
	p := randomDAG(10000, 1)
	g, err := p.DAG()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := dgraph.TopologicalSort(g); err != nil {
			b.Fatal(err)
		}
	}
}
