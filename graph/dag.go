package graph

import (
	"fmt"
	"sort"
	"strings"

	dgraph "github.com/dominikbraun/graph"
)

// Deps is the link structure of a prompt: which nodes feed which. Edges come from the
// Link-valued inputs (ComfyUI's runtime link rule); links to ids that are not in the prompt
// are listed in Dangling, not as edges. All queries run in time linear in nodes + links.
//
// github.com/dominikbraun/graph is available through DAG() for general graph algorithms,
// but its TopologicalSort is quadratic (it rescans the whole predecessor map per vertex,
// ~100x slower at 10,000 nodes, see BenchmarkTopoDominikbraun) and its order is random,
// so ordering, cycles and ancestors are computed here.
type Deps struct {
	IDs      []string       // node ids in prompt order
	Index    map[string]int // id -> position in IDs
	In       [][]int        // In[i]: distinct source nodes of i's links, in input order
	Out      [][]int        // Out[i]: distinct consumers of i, in prompt order
	Dangling []DanglingLink // links whose source node is not in the prompt
}

// DanglingLink is an input linked to a node id that does not exist.
type DanglingLink struct {
	NodeID, Input string
	Link          Link
}

// Deps builds the dependency structure of the prompt.
func (p *Prompt) Deps() *Deps {
	d := &Deps{IDs: append([]string(nil), p.IDs...), Index: make(map[string]int, len(p.IDs))}
	for i, id := range d.IDs {
		d.Index[id] = i
	}
	d.In = make([][]int, len(d.IDs))
	d.Out = make([][]int, len(d.IDs))
	seen := make(map[int]struct{})
	for i, id := range d.IDs {
		n := p.Nodes[id]
		if n == nil {
			continue
		}
		clear(seen)
		for _, k := range n.Inputs.Keys {
			l, ok := n.Inputs.Values[k].(Link)
			if !ok {
				continue
			}
			j, ok := d.Index[l.NodeID]
			if !ok {
				d.Dangling = append(d.Dangling, DanglingLink{NodeID: id, Input: k, Link: l})
				continue
			}
			if _, dup := seen[j]; dup {
				continue
			}
			seen[j] = struct{}{}
			d.In[i] = append(d.In[i], j)
			d.Out[j] = append(d.Out[j], i)
		}
	}
	return d
}

// CycleError reports the cycles of a prompt: each entry lists the members of one strongly
// connected component (a node linked to itself is a one-member cycle).
type CycleError struct {
	Cycles [][]string
}

func (e *CycleError) Error() string {
	parts := make([]string, len(e.Cycles))
	for i, c := range e.Cycles {
		parts[i] = strings.Join(c, " -> ")
	}
	return fmt.Sprintf("prompt has %d cycle(s): %s", len(e.Cycles), strings.Join(parts, "; "))
}

// TopologicalOrder returns the node ids so that every node follows the nodes it links from
// (Kahn's algorithm; ready nodes are taken in prompt order, so the result is
// deterministic). On a cycle it returns a *CycleError naming the cycles' members.
func (d *Deps) TopologicalOrder() ([]string, error) {
	n := len(d.IDs)
	indeg := make([]int, n)
	for i := range d.In {
		indeg[i] = len(d.In[i])
	}
	queue := make([]int, 0, n)
	for i := 0; i < n; i++ {
		if indeg[i] == 0 {
			queue = append(queue, i)
		}
	}
	for head := 0; head < len(queue); head++ {
		for _, j := range d.Out[queue[head]] {
			indeg[j]--
			if indeg[j] == 0 {
				queue = append(queue, j)
			}
		}
	}
	if len(queue) != n {
		return nil, &CycleError{Cycles: d.Cycles()}
	}
	out := make([]string, n)
	for k, i := range queue {
		out[k] = d.IDs[i]
	}
	return out, nil
}

// Cycles returns every cycle as the members of its strongly connected component (Tarjan's
// algorithm, iterative), members in prompt order; nil when the prompt is acyclic.
func (d *Deps) Cycles() [][]string {
	n := len(d.IDs)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var out [][]string
	counter := 0
	type frame struct{ v, next int }
	for root := 0; root < n; root++ {
		if index[root] >= 0 {
			continue
		}
		call := []frame{{root, 0}}
		index[root], low[root] = counter, counter
		counter++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			v := f.v
			if f.next < len(d.Out[v]) {
				w := d.Out[v][f.next]
				f.next++
				if index[w] < 0 {
					index[w], low[w] = counter, counter
					counter++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{w, 0})
				} else if onStack[w] && index[w] < low[v] {
					low[v] = index[w]
				}
				continue
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				u := call[len(call)-1].v
				if low[v] < low[u] {
					low[u] = low[v]
				}
			}
			if low[v] == index[v] {
				var comp []int
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp = append(comp, w)
					if w == v {
						break
					}
				}
				if len(comp) > 1 || d.selfLoop(v) {
					sort.Ints(comp)
					ids := make([]string, len(comp))
					for k, c := range comp {
						ids[k] = d.IDs[c]
					}
					out = append(out, ids)
				}
			}
		}
	}
	return out
}

func (d *Deps) selfLoop(v int) bool {
	for _, w := range d.In[v] {
		if w == v {
			return true
		}
	}
	return false
}

// Ancestors returns every node the given nodes (transitively) take links from, in prompt
// order. The given nodes themselves are included only when one is an ancestor of another
// (or of itself, through a cycle). Unknown ids are ignored.
func (d *Deps) Ancestors(ids ...string) []string {
	mark := make([]bool, len(d.IDs))
	var todo []int
	for _, id := range ids {
		if i, ok := d.Index[id]; ok {
			todo = append(todo, i)
		}
	}
	for len(todo) > 0 {
		v := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, w := range d.In[v] {
			if !mark[w] {
				mark[w] = true
				todo = append(todo, w)
			}
		}
	}
	var out []string
	for i, m := range mark {
		if m {
			out = append(out, d.IDs[i])
		}
	}
	return out
}

// Ancestors is Deps().Ancestors(ids...).
func (p *Prompt) Ancestors(ids ...string) []string { return p.Deps().Ancestors(ids...) }

// TopologicalOrder is Deps().TopologicalOrder().
func (p *Prompt) TopologicalOrder() ([]string, error) { return p.Deps().TopologicalOrder() }

// Cycles is Deps().Cycles().
func (p *Prompt) Cycles() [][]string { return p.Deps().Cycles() }

// DAG returns the prompt as a github.com/dominikbraun/graph directed graph: one vertex per
// node id, an edge source -> consumer per distinct link (dangling links are left out). It
// is for general graph algorithms (paths, reachability, drawing); it does not reject cycles.
func (p *Prompt) DAG() (dgraph.Graph[string, string], error) {
	d := p.Deps()
	g := dgraph.New(dgraph.StringHash, dgraph.Directed())
	for _, id := range d.IDs {
		if err := g.AddVertex(id); err != nil {
			return nil, fmt.Errorf("dag: vertex %q: %w", id, err)
		}
	}
	for i, srcs := range d.In {
		for _, j := range srcs {
			if err := g.AddEdge(d.IDs[j], d.IDs[i]); err != nil {
				return nil, fmt.Errorf("dag: edge %q -> %q: %w", d.IDs[j], d.IDs[i], err)
			}
		}
	}
	return g, nil
}
