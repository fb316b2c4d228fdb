package executor

import (
	"container/heap"
	"fmt"

	"github.com/comfygo/comfygo/graph"
)

// execList is ComfyUI's ExecutionList: a topological "dissolve" that can be re-staged (lazy
// inputs, expansions and async nodes add work while it runs). Every walk is iterative.
type execList struct {
	r      *run
	nodes  map[string]*xnode
	seq    int
	order  []string // pending insertion order (may hold stale ids; see pendingOrder)
	ready  [4]seqHeap
	staged string

	pendingCount int

	externalBlocks int

	execCache map[string]map[string]*entry // to -> from -> entry
	listeners map[string]map[string]struct{}
}

// xnode is the scheduling state of one node id.
type xnode struct {
	id         string
	pending    bool
	seq        int
	blockCount int
	blocking   map[string]struct{} // nodes this one blocks (strong links)
	output     bool
	async      bool
}

func newExecList(r *run) *execList {
	return &execList{r: r, nodes: map[string]*xnode{}, execCache: map[string]map[string]*entry{},
		listeners: map[string]map[string]struct{}{}}
}

func (l *execList) isEmpty() bool { return l.pendingCount == 0 }

func (l *execList) isCached(id string) bool { return l.r.e.cache.get(l.r, id) != nil }

func (l *execList) xn(id string) *xnode {
	n := l.nodes[id]
	if n == nil {
		n = &xnode{id: id}
		if node, ok := l.r.Node(id); ok {
			if d, ok := l.r.e.lookup(node.ClassType); ok {
				n.output = d.OutputNode
				n.async = d.Async
			}
		}
		l.nodes[id] = n
	}
	return n
}

// addNode adds root and its non-lazy, non-cached ancestors (ComfyUI's add_node). With
// includeLazy, lazy inputs count too; with subgraph, only links to nodes in it are followed.
func (l *execList) addNode(root string, includeLazy bool, subgraph map[string]bool) error {
	stack := []string{root}
	type lk struct {
		from string
		slot int
		to   string
	}
	var links []lk
	var added []*xnode
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := l.xn(id)
		if n.pending {
			continue
		}
		node, ok := l.r.Node(id)
		if !ok {
			return fmt.Errorf("node %s not found", id)
		}
		n.pending = true
		l.pendingCount++
		l.seq++
		n.seq = l.seq
		n.blockCount = 0
		n.blocking = map[string]struct{}{}
		l.order = append(l.order, id)
		added = append(added, n)
		d, _ := l.r.e.lookup(node.ClassType)
		for _, k := range node.Inputs.Keys {
			link, ok := asLink(node.Inputs.Values[k])
			if !ok {
				continue
			}
			if subgraph != nil && !subgraph[link.NodeID] {
				continue
			}
			lazy := false
			if d != nil {
				if in, _, ok := d.Input(k); ok {
					lazy = in.Lazy
				}
			}
			if includeLazy || !lazy {
				if !l.isCached(link.NodeID) {
					stack = append(stack, link.NodeID)
				}
				links = append(links, lk{link.NodeID, link.Slot, id})
			}
		}
	}
	for _, x := range links {
		if err := l.addStrongLink(x.from, x.slot, x.to); err != nil {
			return err
		}
	}
	for _, n := range added {
		if n.pending && n.blockCount == 0 {
			l.pushReady(n)
		}
	}
	return nil
}

// addStrongLink makes to wait for from (unless from is cached) and records the value route.
func (l *execList) addStrongLink(from string, slot int, to string) error {
	if !l.isCached(from) {
		if err := l.addNode(from, false, nil); err != nil {
			return err
		}
		f := l.nodes[from]
		if _, ok := f.blocking[to]; !ok {
			f.blocking[to] = struct{}{}
			t := l.xn(to)
			t.blockCount++
			if f.pending && f.blockCount == 0 {
				l.pushReady(f) // its staging category may have improved
			}
		}
	}
	l.cacheLink(from, to)
	return nil
}

func (l *execList) cacheLink(from, to string) {
	m := l.execCache[to]
	if m == nil {
		m = map[string]*entry{}
		l.execCache[to] = m
	}
	m[from] = l.r.e.cache.get(l.r, from)
	ls := l.listeners[from]
	if ls == nil {
		ls = map[string]struct{}{}
		l.listeners[from] = ls
	}
	ls[to] = struct{}{}
}

// getCache is the value of from as seen by to (nil if not available).
func (l *execList) getCache(from, to string) *entry {
	e := l.execCache[to][from]
	if e != nil {
		l.r.e.cache.set(l.r, from, e) // touch
	}
	return e
}

func (l *execList) cacheUpdate(id string, e *entry) {
	for to := range l.listeners[id] {
		if m := l.execCache[to]; m != nil {
			m[id] = e
		}
	}
}

// makeInputStrongLink turns lazy input name of to into a dependency.
func (l *execList) makeInputStrongLink(to, name string) error {
	node, _ := l.r.Node(to)
	v, ok := node.Inputs.Get(name)
	if !ok {
		return fmt.Errorf("Node %s says it needs input %s, but there is no input to that node at all", to, name)
	}
	link, ok := asLink(v)
	if !ok {
		return fmt.Errorf("Node %s says it needs input %s, but that value is a constant", to, name)
	}
	return l.addStrongLink(link.NodeID, link.Slot, to)
}

// addExternalBlock blocks id until unblock(id) (async work in flight).
func (l *execList) addExternalBlock(id string) {
	l.xn(id).blockCount++
	l.externalBlocks++
}

func (l *execList) unblock(id string) {
	n := l.xn(id)
	n.blockCount--
	l.externalBlocks--
	if n.pending && n.blockCount == 0 {
		l.pushReady(n)
	}
}

// category is the staging preference of a ready node: 0 output or async node, 1 blocks an
// output node, 2 blocks a node that blocks an output node, 3 anything else.
func (l *execList) category(n *xnode) int {
	if n.output || n.async {
		return 0
	}
	best := 3
	for to := range n.blocking {
		t := l.nodes[to]
		if t == nil {
			continue
		}
		if t.output {
			return 1
		}
		if best > 2 {
			for t2 := range t.blocking {
				if x := l.nodes[t2]; x != nil && x.output {
					best = 2
					break
				}
			}
		}
	}
	return best
}

func (l *execList) pushReady(n *xnode) {
	heap.Push(&l.ready[l.category(n)], seqItem{n.seq, n.id})
}

// pickReady returns the ready node ComfyUI's UX heuristic stages ("" if none).
func (l *execList) pickReady() string {
	for c := range l.ready {
		h := &l.ready[c]
		for h.Len() > 0 {
			top := (*h)[0]
			n := l.nodes[top.id]
			if n != nil && n.pending && n.seq == top.seq && n.blockCount == 0 {
				return n.id
			}
			heap.Pop(h)
		}
	}
	return ""
}

// complete finishes the staged node.
func (l *execList) complete(id string) {
	n := l.nodes[id]
	n.pending = false
	l.pendingCount--
	for to := range n.blocking {
		t := l.nodes[to]
		t.blockCount--
		if t.pending && t.blockCount == 0 {
			l.pushReady(t)
		}
	}
	n.blocking = nil
	delete(l.execCache, id)
	delete(l.listeners, id)
	l.staged = ""
}

// cycleNodes lists the pending nodes in or behind a dependency cycle, in pending order.
func (l *execList) cycleNodes() []string {
	var pend []string
	blockedBy := map[string]map[string]bool{}
	for _, id := range l.order {
		if n := l.nodes[id]; n != nil && n.pending && n.seq > 0 {
			if _, dup := blockedBy[id]; dup {
				continue
			}
			blockedBy[id] = map[string]bool{}
			pend = append(pend, id)
		}
	}
	for _, from := range pend {
		for to := range l.nodes[from].blocking {
			if m, ok := blockedBy[to]; ok {
				m[from] = true
			}
		}
	}
	for {
		var rm []string
		for _, id := range pend {
			if m, ok := blockedBy[id]; ok && len(m) == 0 {
				rm = append(rm, id)
			}
		}
		if len(rm) == 0 {
			break
		}
		for _, id := range rm {
			delete(blockedBy, id)
			for _, m := range blockedBy {
				delete(m, id)
			}
		}
	}
	var out []string
	for _, id := range pend {
		if _, ok := blockedBy[id]; ok {
			out = append(out, id)
		}
	}
	return out
}

// seqHeap is a min-heap of ready nodes by pending order.
type seqItem struct {
	seq int
	id  string
}

type seqHeap []seqItem

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i].seq < h[j].seq }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)        { *h = append(*h, x.(seqItem)) }
func (h *seqHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

var _ = graph.Link{}
