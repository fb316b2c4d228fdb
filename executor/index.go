package executor

import (
	"encoding/binary"
	"hash/maphash"
	"slices"
	"sort"
	"strings"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/nodes"
)

// The submitted prompt is indexed once per run: node id -> document position, with each
// node's links resolved to positions. Keys, cache hits and the scheduler's link walks then
// use positions instead of string-keyed map lookups.

// pnode is the per-run state of a submitted node, at its document position.
type pnode struct {
	id       string
	node     *graph.Node
	def      *nodes.Def // nil for an unknown class
	key      cacheKey
	keyed    bool
	shadowed bool   // an ephemeral node of the same id replaced it (expansion)
	hit      *entry // the cache entry found when the run started (hits stay valid)
	links    int32  // offset of the node's per-input link targets in run.plinks
	x        *xnode // scheduling state, once the node is in the execution list
}

// link targets in run.plinks, per input in the node's key order
const (
	notLink     = -1 // a constant
	missingLink = -2 // a link to no submitted node
)

// indexPrompt builds r.pos, r.pn and r.plinks for the submitted prompt. With keys, it also
// computes the key of every node whose sources come before it (the rest is computeOrigKeys').
func (r *run) indexPrompt(keys bool) {
	ids := r.orig.IDs
	sc := &r.e.scratch // re-used across runs (Execute calls are serialised)
	if sc.pos == nil || len(sc.pos) > 4*len(ids)+1024 {
		sc.pos = make(map[string]int32, len(ids))
	} else {
		clear(sc.pos)
	}
	if cap(sc.pn) < len(ids) || cap(sc.pn) > 4*len(ids)+1024 {
		sc.pn = make([]pnode, len(ids))
	}
	r.pos, r.pn = sc.pos, sc.pn[:len(ids)]
	clear(r.pn)
	total := 0
	for i, id := range ids {
		r.pos[id] = int32(i)
		n := r.orig.Nodes[id]
		r.pn[i].id, r.pn[i].node = id, n
		if n != nil {
			total += len(n.Inputs.Keys)
		}
	}
	if cap(sc.plinks) < total || cap(sc.plinks) > 4*total+4096 {
		sc.plinks, sc.pvals = make([]int32, 0, total), make([]any, 0, total)
	}
	r.plinks, r.pvals = sc.plinks[:0], sc.pvals[:0]
	for i := range r.pn {
		p := &r.pn[i]
		p.links = int32(len(r.plinks))
		if p.node == nil {
			continue
		}
		p.def, _ = r.lookup(p.node.ClassType)
		ready := keys
		for _, k := range p.node.Inputs.Keys {
			j := int32(notLink)
			v := p.node.Inputs.Values[k]
			r.pvals = append(r.pvals, v)
			if l, ok := asLink(v); ok {
				j = missingLink
				if q, ok := r.pos[l.NodeID]; ok {
					j = q
					ready = ready && r.pn[q].keyed
				}
			}
			r.plinks = append(r.plinks, j)
		}
		if ready {
			p.key, p.keyed = r.immediateKey(p.id, p.node, r.plinks[p.links:], r.pvals[p.links:]), true
		}
	}
}

// indexScratch is indexPrompt's storage, kept by the Executor between runs.
type indexScratch struct {
	pos    map[string]int32
	pn     []pnode
	plinks []int32
	pvals  []any
	xnodes []xnode // the execution list's first chunk
}

// release drops the run's references (nodes, values, cache entries) from the scratch.
func (r *run) releaseIndex() {
	if r.list != nil {
		r.list.release()
	}
	clear(r.pn)
	clear(r.pvals)
	r.pn, r.pvals, r.plinks, r.pos = nil, nil, nil, nil
}

// origIdx is the position of submitted node id when the run's view of id is still that node.
func (r *run) origIdx(id string) (int32, bool) {
	j, ok := r.pos[id]
	if !ok || r.pn[j].shadowed {
		return 0, false
	}
	return j, true
}

// nodeLinks is node j's per-input link targets (parallel to its Inputs.Keys).
func (r *run) nodeLinks(j int32) []int32 {
	p := &r.pn[j]
	return r.plinks[p.links : int(p.links)+len(p.node.Inputs.Keys)]
}

// nodeVals is node j's input values (parallel to its Inputs.Keys).
func (r *run) nodeVals(j int32) []any {
	p := &r.pn[j]
	return r.pvals[p.links : int(p.links)+len(p.node.Inputs.Keys)]
}

// computeOrigKeys is computeKeys for the submitted prompt (before any expansion), over
// positions and iteratively.
func (r *run) computeOrigKeys() {
	depsDone := func(j int32) bool {
		for _, s := range r.nodeLinks(j) {
			if s >= 0 && !r.pn[s].keyed {
				return false
			}
		}
		return true
	}
	type frame struct {
		j        int32
		expanded bool
	}
	var stack []frame
	var visiting []bool
	for root := range r.pn {
		rj := int32(root)
		p := &r.pn[rj]
		if p.keyed || p.node == nil {
			continue
		}
		if depsDone(rj) { // the common case: sources come first
			p.key, p.keyed = r.immediateKey(p.id, p.node, r.nodeLinks(rj), r.nodeVals(rj)), true
			continue
		}
		if visiting == nil {
			visiting = make([]bool, len(r.pn))
		}
		stack = append(stack[:0], frame{rj, false})
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			j := f.j
			if !f.expanded {
				if r.pn[j].keyed {
					stack = stack[:len(stack)-1]
					continue
				}
				f.expanded = true
				visiting[j] = true
				for _, s := range r.nodeLinks(j) {
					if s >= 0 && !r.pn[s].keyed && !visiting[s] {
						stack = append(stack, frame{s, false})
					}
				}
				continue
			}
			stack = stack[:len(stack)-1]
			q := &r.pn[j]
			q.key, q.keyed = r.immediateKey(q.id, q.node, r.nodeLinks(j), r.nodeVals(j)), true
			visiting[j] = false
		}
	}
}

// bigNode is the input count above which a node's inputs are hashed as an unordered set
// (sum of per-input hashes) instead of being sorted by name. Either way the key does not
// depend on input order; the choice depends only on the count.
const bigNode = 32

// immediateKey hashes node id's signature with its sources' keys in place of links. A source
// without a key (missing node, or one on a cycle) contributes a nonce. links and vals, when
// not nil, are the node's resolved link targets and input values (submitted prompt).
func (r *run) immediateKey(id string, node *graph.Node, links []int32, vals []any) cacheKey {
	val := func(i int, k string) any {
		if vals != nil {
			return vals[i]
		}
		return node.Inputs.Values[k]
	}
	enc := &r.kh.enc
	enc.tag('C')
	enc.str(node.ClassType)
	d, ok := r.lookup(node.ClassType)
	enc.tag('P')
	enc.value(r.fingerprint(id, node, d))
	if ok && needsID(d) {
		enc.tag('#')
		enc.str(id)
	}
	keys := node.Inputs.Keys
	if len(keys) > bigNode {
		var sum [2]uint64
		main := enc.buf
		for i, k := range keys {
			enc.buf = r.kh.sub[:0]
			r.encodeInput(enc, k, val(i, k), links, i)
			sum[0] += maphash.Bytes(r.kh.seeds[0], enc.buf)
			sum[1] += maphash.Bytes(r.kh.seeds[1], enc.buf)
			r.kh.sub = enc.buf
		}
		enc.buf = main
		enc.tag('M')
		enc.uvarint(uint64(len(keys)))
		enc.buf = binary.LittleEndian.AppendUint64(enc.buf, sum[0])
		enc.buf = binary.LittleEndian.AppendUint64(enc.buf, sum[1])
		return r.kh.sum()
	}
	if sort.StringsAreSorted(keys) {
		for i, k := range keys {
			r.encodeInput(enc, k, val(i, k), links, i)
		}
		return r.kh.sum()
	}
	ord := r.ordBuf[:0]
	for i := range keys {
		ord = append(ord, int32(i))
	}
	if len(ord) <= 8 { // insertion sort: no closure for the common small node
		for i := 1; i < len(ord); i++ {
			for j := i; j > 0 && keys[ord[j]] < keys[ord[j-1]]; j-- {
				ord[j], ord[j-1] = ord[j-1], ord[j]
			}
		}
	} else {
		slices.SortFunc(ord, func(a, b int32) int { return strings.Compare(keys[a], keys[b]) })
	}
	r.ordBuf = ord
	for _, i := range ord {
		k := keys[i]
		r.encodeInput(enc, k, val(int(i), k), links, int(i))
	}
	return r.kh.sum()
}

// encodeInput writes input k = v of a signature; a link is its source's key and slot.
func (r *run) encodeInput(enc *encoder, k string, v any, links []int32, i int) {
	enc.tag('K')
	enc.str(k)
	if links != nil && links[i] == notLink {
		enc.value(v)
		return
	}
	l, isLink := asLink(v)
	if !isLink {
		enc.value(v)
		return
	}
	var sk cacheKey
	var keyed bool
	if links != nil {
		if j := links[i]; j >= 0 && r.pn[j].keyed {
			sk, keyed = r.pn[j].key, true
		}
	} else {
		sk, keyed = r.key(l.NodeID)
	}
	if !keyed {
		enc.unique()
		return
	}
	enc.tag('A')
	enc.buf = append(enc.buf, sk[:]...)
	enc.int64v(int64(l.Slot))
}

// cacheAt is the cache entry of the submitted node at position j (not replaced by an
// ephemeral node): cache.get without looking the id up.
func (r *run) cacheAt(j int32) *entry {
	p := &r.pn[j]
	if p.hit != nil {
		return p.hit
	}
	if !p.keyed {
		return nil
	}
	return r.e.cache.getKey(p.key)
}
