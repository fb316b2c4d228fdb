package executor

import (
	"fmt"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/nodes"
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
	slab   []xnode // xnodes are allocated in chunks; the first is the Executor's, re-used
	xused  int     // xnodes taken from the re-used chunk

	walkBuf  []walkItem // addNode's buffers
	linkBuf  []walkLink
	addedBuf []*xnode

	pendingCount int

	externalBlocks int
}

// xnode is the scheduling state of one node id.
type xnode struct {
	id         string
	pending    bool
	seq        int
	blockCount int
	blocking   xlist // nodes this one blocks (strong links)
	output     bool
	async      bool
	adding     bool // added by an addNode still linking (it pushes the node when done)
	node       *graph.Node
	def        *nodes.Def
	orig       int32 // position of the submitted node (-1: ephemeral, or replaced by one)

	// the per-prompt value store: values of sources as seen by this node (ComfyUI's
	// execution_cache[to][from]) and the nodes listening for this node's value.
	srcs      idList
	srcVals   []*entry
	listeners idList
}

// idList is an insertion-ordered set of node ids; it indexes itself once it grows.
type idList struct {
	ids []string
	idx map[string]int
}

func (s *idList) index(id string) int {
	if s.idx != nil {
		if i, ok := s.idx[id]; ok {
			return i
		}
		return -1
	}
	for i := len(s.ids) - 1; i >= 0; i-- {
		if s.ids[i] == id {
			return i
		}
	}
	return -1
}

// add appends id if absent and returns its index and whether it was added.
func (s *idList) add(id string) (int, bool) {
	if i := s.index(id); i >= 0 {
		return i, false
	}
	s.ids = append(s.ids, id)
	if s.idx != nil {
		s.idx[id] = len(s.ids) - 1
	} else if len(s.ids) > 12 {
		s.idx = make(map[string]int, 2*len(s.ids))
		for i, x := range s.ids {
			s.idx[x] = i
		}
	}
	return len(s.ids) - 1, true
}

func (s *idList) reset() { s.ids, s.idx = nil, nil }

// xlist is an insertion-ordered set of scheduling nodes; it indexes itself once it grows.
type xlist struct {
	xs  []*xnode
	idx map[*xnode]struct{}
}

// add appends x if absent and reports whether it was added.
func (s *xlist) add(x *xnode) bool {
	if s.idx != nil {
		if _, ok := s.idx[x]; ok {
			return false
		}
		s.idx[x] = struct{}{}
	} else {
		for _, y := range s.xs {
			if y == x {
				return false
			}
		}
		if len(s.xs) >= 12 {
			s.idx = make(map[*xnode]struct{}, 2*len(s.xs)+2)
			for _, y := range s.xs {
				s.idx[y] = struct{}{}
			}
			s.idx[x] = struct{}{}
		}
	}
	s.xs = append(s.xs, x)
	return true
}

func (s *xlist) reset() { s.xs, s.idx = nil, nil }

func newExecList(r *run) *execList {
	l := &execList{r: r, nodes: make(map[string]*xnode, min(len(r.pn), 1024))}
	sc := &r.e.scratch
	if want := len(r.pn) + 64; cap(sc.xnodes) < want || cap(sc.xnodes) > 4*want+1024 {
		sc.xnodes = make([]xnode, want)
	}
	l.slab = sc.xnodes[:cap(sc.xnodes)]
	return l
}

// release clears the xnodes taken from the Executor's re-used chunk.
func (l *execList) release() {
	clear(l.r.e.scratch.xnodes[:l.xused])
	l.xused = 0
}

func (l *execList) isEmpty() bool { return l.pendingCount == 0 }

func (l *execList) xn(id string) *xnode {
	n := l.nodes[id]
	if n == nil {
		n = l.newX(id)
	}
	return n
}

func (l *execList) newX(id string) *xnode {
	if len(l.slab) == 0 {
		l.slab = make([]xnode, 256)
	} else if l.xused < len(l.r.e.scratch.xnodes) && &l.slab[0] == &l.r.e.scratch.xnodes[l.xused] {
		l.xused++
	}
	n := &l.slab[0]
	l.slab = l.slab[1:]
	*n = xnode{id: id, orig: -1}
	l.nodes[id] = n
	return n
}

// xnAt is xn for the submitted node at position j (not replaced by an ephemeral node).
func (l *execList) xnAt(j int32) *xnode {
	p := &l.r.pn[j]
	if p.x == nil {
		if n := l.nodes[p.id]; n != nil {
			p.x = n
		} else {
			p.x = l.newX(p.id)
		}
	}
	return p.x
}

// info fills the node's prompt entry and type (needed once it is scheduled).
func (l *execList) info(n *xnode) {
	if n.node != nil {
		return
	}
	if j, ok := l.r.origIdx(n.id); ok {
		p := &l.r.pn[j]
		n.orig = j
		if p.node != nil {
			n.node, n.def = p.node, p.def
			if p.def != nil {
				n.output, n.async = p.def.OutputNode, p.def.Async
			}
		}
		return
	}
	if node, ok := l.r.node(n.id); ok {
		n.node = node
		if d, ok := l.r.lookup(node.ClassType); ok {
			n.def = d
			n.output = d.OutputNode
			n.async = d.Async
		}
	}
}

// addNode adds root and its non-lazy, non-cached ancestors (ComfyUI's add_node). With
// includeLazy, lazy inputs count too; with subgraph, only links to nodes in it are followed.
func (l *execList) addNode(root string, includeLazy bool, subgraph map[string]bool) error {
	r := l.r
	// The walk's stack, links and added nodes live in buffers shared by nested calls (an
	// addStrongLink below may add more): each call uses what lies above its bases.
	sb, lb, ab := len(l.walkBuf), len(l.linkBuf), len(l.addedBuf)
	defer func() { l.walkBuf, l.linkBuf, l.addedBuf = l.walkBuf[:sb], l.linkBuf[:lb], l.addedBuf[:ab] }()
	l.walkBuf = append(l.walkBuf, walkItem{root, nil})
	for len(l.walkBuf) > sb {
		it := l.walkBuf[len(l.walkBuf)-1]
		l.walkBuf = l.walkBuf[:len(l.walkBuf)-1]
		n := it.x
		if n == nil {
			n = l.xn(it.id)
		}
		if n.pending {
			continue
		}
		l.info(n)
		node := n.node
		if node == nil {
			return fmt.Errorf("node %s not found", it.id)
		}
		n.pending = true
		l.pendingCount++
		l.seq++
		n.seq = l.seq
		n.blockCount = 0
		n.blocking.reset()
		l.order = append(l.order, n.id)
		n.adding = true
		l.addedBuf = append(l.addedBuf, n)
		d := n.def
		var plinks []int32 // resolved link targets and values of a submitted node
		var pvals []any
		toHit := false
		if n.orig >= 0 && !r.pn[n.orig].shadowed {
			plinks, pvals = r.nodeLinks(n.orig), r.nodeVals(n.orig)
			toHit = r.pn[n.orig].hit != nil
		}
		for i, k := range node.Inputs.Keys {
			var v any
			if plinks != nil {
				if plinks[i] == notLink {
					continue
				}
				v = pvals[i]
			} else {
				v = node.Inputs.Values[k]
			}
			link, ok := asLink(v)
			if !ok {
				continue
			}
			if subgraph != nil && !subgraph[link.NodeID] {
				continue
			}
			if !includeLazy && d != nil && isLazy(d, k) {
				continue
			}
			var ent *entry
			var fx *xnode
			if j := int32(missingLink); plinks != nil {
				j = plinks[i]
				if j >= 0 && !r.pn[j].shadowed {
					ent = r.cacheAt(j)
					if ent == nil {
						fx = l.xnAt(j)
					}
				} else {
					ent = r.e.cache.get(r, link.NodeID)
				}
			} else {
				ent = r.e.cache.get(r, link.NodeID)
			}
			if ent == nil {
				l.walkBuf = append(l.walkBuf, walkItem{link.NodeID, fx})
			} else if toHit {
				continue // nothing to record (see below)
			}
			l.linkBuf = append(l.linkBuf, walkLink{link.NodeID, fx, link.Slot, n, ent})
		}
	}
	for i := lb; i < len(l.linkBuf); i++ {
		x := l.linkBuf[i]
		if x.ent != nil { // cached (nothing ran since the walk): no dependency
			// (not recorded for a to that is a cache hit itself: it never reads its inputs)
			l.cacheLinkEntry(x.from, x.to, x.ent)
			continue
		}
		if x.fx != nil && x.fx.pending { // walked above: link it directly
			l.strongLink(x.fx, x.to)
			l.cacheLinkX(x.from, x.fx, x.to, nil)
			continue
		}
		if err := l.addStrongLink(x.from, x.slot, x.to.id); err != nil {
			return err
		}
	}
	for _, n := range l.addedBuf[ab:] {
		n.adding = false
		if n.pending && n.blockCount == 0 {
			l.pushReady(n)
		}
	}
	return nil
}

// walkItem is a node addNode still has to visit.
type walkItem struct {
	id string
	x  *xnode // nil: look up by id
}

// walkLink is a link addNode found: to reads slot of from.
type walkLink struct {
	from string
	fx   *xnode // from's node when known
	slot int
	to   *xnode
	ent  *entry // from's cache entry when the link was recorded
}

// isLazy reports whether input name of d is declared lazy.
func isLazy(d *nodes.Def, name string) bool {
	for i := range d.Required {
		if d.Required[i].Name == name {
			return d.Required[i].Lazy
		}
	}
	for i := range d.Optional {
		if d.Optional[i].Name == name {
			return d.Optional[i].Lazy
		}
	}
	return false
}

// strongLink makes t wait for the pending node f.
func (l *execList) strongLink(f, t *xnode) {
	if f.blocking.add(t) {
		t.blockCount++
		if f.pending && f.blockCount == 0 && !f.adding {
			l.pushReady(f) // its staging category may have improved (added nodes are pushed at the end)
		}
	}
}

// addStrongLink makes to wait for from (unless from is cached) and records the value route.
func (l *execList) addStrongLink(from string, slot int, to string) error {
	ent := l.r.e.cache.get(l.r, from)
	t := l.xn(to)
	if ent == nil {
		if err := l.addNode(from, false, nil); err != nil {
			return err
		}
		f := l.nodes[from]
		l.strongLink(f, t)
		l.cacheLinkX(from, f, t, nil)
		return nil
	}
	l.cacheLinkEntry(from, t, ent)
	return nil
}

func (l *execList) cacheLink(from, to string) {
	l.cacheLinkEntry(from, l.xn(to), l.r.e.cache.get(l.r, from))
}

// cacheLinkEntry records that t reads from's value, currently v (ComfyUI's cache_link).
func (l *execList) cacheLinkEntry(from string, t *xnode, v *entry) { l.cacheLinkX(from, nil, t, v) }

// cacheLinkX is cacheLinkEntry with from's node when the caller has it (fx may be nil).
func (l *execList) cacheLinkX(from string, fx *xnode, t *xnode, v *entry) {
	if i, added := t.srcs.add(from); added {
		t.srcVals = append(t.srcVals, v)
	} else {
		t.srcVals[i] = v
	}
	if v == nil {
		// only a value still to come needs forwarding (a cached value is already stored)
		if fx == nil {
			fx = l.xn(from)
		}
		fx.listeners.add(t.id)
	}
}

// getCache is the value of from as seen by to (nil if not available).
func (l *execList) getCache(from, to string) *entry {
	t := l.nodes[to]
	if t == nil {
		return nil
	}
	i := t.srcs.index(from)
	if i < 0 {
		return nil
	}
	e := t.srcVals[i]
	if e != nil && l.r.touch {
		l.r.e.cache.set(l.r, from, e) // touch (keeps LRU entries fresh)
	}
	return e
}

func (l *execList) cacheUpdate(id string, e *entry) {
	n := l.nodes[id]
	if n == nil {
		return
	}
	for _, to := range n.listeners.ids {
		if t := l.nodes[to]; t != nil {
			if i := t.srcs.index(id); i >= 0 {
				t.srcVals[i] = e
			}
		}
	}
}

// makeInputStrongLink turns lazy input name of to into a dependency.
func (l *execList) makeInputStrongLink(to, name string) error {
	node, _ := l.r.node(to)
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
	for _, t := range n.blocking.xs {
		if t.output {
			return 1
		}
		if best > 2 {
			for _, x := range t.blocking.xs {
				if x.output {
					best = 2
					break
				}
			}
		}
	}
	return best
}

func (l *execList) pushReady(n *xnode) {
	l.ready[l.category(n)].push(seqItem{n.seq, n})
}

// pickReady returns the ready node ComfyUI's UX heuristic stages ("" if none).
func (l *execList) pickReady() string {
	for c := range l.ready {
		h := &l.ready[c]
		for h.Len() > 0 {
			top := (*h)[0]
			n := top.x
			if n.pending && n.seq == top.seq && n.blockCount == 0 {
				return n.id
			}
			h.pop()
		}
	}
	return ""
}

// complete finishes the staged node.
func (l *execList) complete(id string) {
	n := l.nodes[id]
	n.pending = false
	l.pendingCount--
	for _, t := range n.blocking.xs {
		t.blockCount--
		if t.pending && t.blockCount == 0 {
			l.pushReady(t)
		}
	}
	n.blocking.reset()
	n.srcs.reset()
	n.srcVals = nil
	n.listeners.reset()
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
		for _, t := range l.nodes[from].blocking.xs {
			if m, ok := blockedBy[t.id]; ok {
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
	x   *xnode
}

type seqHeap []seqItem

func (h seqHeap) Len() int { return len(h) }

func (h *seqHeap) push(x seqItem) {
	*h = append(*h, x)
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if a[p].seq <= a[i].seq {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *seqHeap) pop() {
	a := *h
	n := len(a) - 1
	a[0] = a[n]
	a = a[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && a[l].seq < a[m].seq {
			m = l
		}
		if r < n && a[r].seq < a[m].seq {
			m = r
		}
		if m == i {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
}
