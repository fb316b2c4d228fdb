package executor

import (
	"encoding/binary"
	"encoding/json"
	"hash/maphash"
	"math"
	"math/big"
	"sort"
	"strconv"
	"sync/atomic"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/nodes"
)

// cacheKey is a node's input signature, hashed. Keys are Merkle hashes: a node's key is the
// hash of its immediate signature (class, fingerprint, id when the class needs it, sorted
// inputs) in which every link is replaced by the source's key and slot. This is linear in the
// prompt size and has ComfyUI's semantics: ids do not matter, identical sub-graphs share keys,
// any upstream change changes every downstream key. Values Python cannot hash equal across
// prompts (NaN, tensors and other objects, dependency cycles) are replaced by a nonce that is
// never reused, so such keys match only themselves. Inputs are hashed in name order, or, for
// nodes with more than bigNode inputs, as a set (sum of per-input hashes: no sort).
type cacheKey [16]byte

// nonceSource hands out never-repeating tokens.
type nonceSource struct{ n atomic.Uint64 }

func (s *nonceSource) next() uint64 { return s.n.Add(1) }

// entry is a cache entry: the node's UI record and its outputs (one list per slot).
type entry struct {
	ui      *uiRecord
	outputs [][]any
	gen     uint64 // hierarchical cache: last generation the entry was marked live
}

// uiRecord is ComfyUI's ui_outputs value {"meta": {...}, "output": {...}}.
type uiRecord struct {
	meta   *nodes.OrderedMap
	output map[string][]any
}

// encoder builds the canonical byte form of signature parts.
type encoder struct {
	buf   []byte
	nonce *nonceSource
}

func (e *encoder) tag(t byte)       { e.buf = append(e.buf, t) }
func (e *encoder) uvarint(n uint64) { e.buf = binary.AppendUvarint(e.buf, n) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.buf = append(e.buf, s...) }
func (e *encoder) unique()          { e.tag('U'); e.uvarint(e.nonce.next()) }
func (e *encoder) int64v(i int64)   { e.tag('I'); e.buf = strconv.AppendInt(e.buf, i, 10); e.tag(';') }

// value encodes a constant with Python hash-equality: 1 == 1.0 == True.
func (e *encoder) value(v any) {
	switch x := v.(type) {
	case nil:
		e.tag('N')
	case bool:
		if x {
			e.int64v(1)
		} else {
			e.int64v(0)
		}
	case int64:
		e.int64v(x)
	case int:
		e.int64v(int64(x))
	case uint64:
		e.tag('I')
		e.buf = strconv.AppendUint(e.buf, x, 10)
		e.tag(';')
	case *big.Int:
		e.tag('I')
		e.buf = x.Append(e.buf, 10)
		e.tag(';')
	case float32:
		e.value(float64(x))
	case float64:
		switch {
		case math.IsNaN(x):
			e.unique()
		case math.IsInf(x, 0) || x != math.Trunc(x):
			e.tag('F')
			e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(x))
		case math.Abs(x) < 9e18:
			e.int64v(int64(x))
		default:
			b, _ := new(big.Float).SetFloat64(x).Int(nil)
			e.value(b)
		}
	case json.Number:
		e.value(numberValue(x))
	case string:
		e.tag('S')
		e.str(x)
	case graph.Link:
		e.tag('L')
		e.uvarint(2)
		e.value(x.NodeID)
		e.int64v(int64(x.Slot))
	case []any:
		e.tag('L')
		e.uvarint(uint64(len(x)))
		for _, it := range x {
			e.value(it)
		}
	case []string:
		e.tag('L')
		e.uvarint(uint64(len(x)))
		for _, it := range x {
			e.value(it)
		}
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		e.tag('D')
		e.uvarint(uint64(len(keys)))
		for _, k := range keys {
			e.value(k)
			e.value(x[k])
		}
	default:
		e.unique() // unhashable object: equals only itself
	}
}

// keyView is what a cache needs of the running prompt.
type keyView interface {
	key(id string) (cacheKey, bool)
	parent(id string) string // "" for submitted nodes
	classType(id string) string
}

// outputCache is the cross-prompt output cache.
type outputCache interface {
	// setPrompt installs the new prompt's keys (ids = submitted nodes, keyOf(i) the key of
	// ids[i]) and drops what the mode drops (classic: every entry the new prompt does not use).
	// It calls hit(i, e) for each node whose entry e it holds (hits stay valid for the run).
	setPrompt(kv keyView, ids []string, keyOf func(i int) (cacheKey, bool), hit func(i int, e *entry))
	get(kv keyView, id string) *entry
	// getKey is get for a submitted node (top level) by its key.
	getKey(k cacheKey) *entry
	set(kv keyView, id string, e *entry)
	// ensureSubcache registers the ephemeral children of an expanded node.
	ensureSubcache(kv keyView, parent string, children []string)
	size() int
	// enabled is false for the none mode.
	enabled() bool
}

func newOutputCache(mode CacheMode, lruSize int) outputCache {
	switch {
	case mode == CacheLRU && lruSize > 0:
		return &lruCache{max: lruSize, entries: map[cacheKey]*lruEntry{}}
	case mode == CacheNone:
		return nullCache{}
	}
	return &hierCache{root: newHLevel()}
}

// nullCache is --cache-none.
type nullCache struct{}

func (nullCache) setPrompt(keyView, []string, func(int) (cacheKey, bool), func(int, *entry)) {}
func (nullCache) get(keyView, string) *entry                                                 { return nil }
func (nullCache) getKey(cacheKey) *entry                                                     { return nil }
func (nullCache) set(keyView, string, *entry)                                                {}
func (nullCache) ensureSubcache(keyView, string, []string)                                   {}
func (nullCache) size() int                                                                  { return 0 }
func (nullCache) enabled() bool                                                              { return false }

// subKey identifies a subcache: the expanded node's id and class.
type subKey struct{ id, class string }

type hLevel struct {
	entries map[cacheKey]*entry
	subs    map[subKey]*hLevel
	gen     uint64 // last generation this level was marked live (as a subcache)
}

func newHLevel() *hLevel {
	return &hLevel{entries: map[cacheKey]*entry{}, subs: map[subKey]*hLevel{}}
}

// clean keeps only the entries and subcaches of ids (the level's current nodes); it marks
// what is live with a fresh generation instead of building key sets.
func (l *hLevel) clean(kv keyView, ids []string, keyOf func(i int) (cacheKey, bool), hit func(int, *entry), gen uint64) {
	if len(l.entries) > 0 {
		live := 0
		for i := range ids {
			if k, ok := keyOf(i); ok {
				if e := l.entries[k]; e != nil {
					if e.gen != gen {
						e.gen = gen
						live++
					}
					if hit != nil {
						hit(i, e)
					}
				}
			}
		}
		if live < len(l.entries) { // (a fully re-used level needs no sweep)
			for k, e := range l.entries {
				if e.gen != gen {
					delete(l.entries, k)
				}
			}
		}
	}
	if len(l.subs) > 0 {
		for _, id := range ids {
			if s := l.subs[subKey{id, kv.classType(id)}]; s != nil {
				s.gen = gen
			}
		}
		for k, s := range l.subs {
			if s.gen != gen {
				delete(l.subs, k)
			}
		}
	}
}

func (l *hLevel) count() int {
	n := len(l.entries)
	for _, s := range l.subs {
		n += s.count()
	}
	return n
}

// hierCache is the classic hierarchical cache: entries of ephemeral nodes live in a subcache
// of their parent, keyed by the parent's (id, class).
type hierCache struct {
	root *hLevel
	gen  uint64
}

func (c *hierCache) enabled() bool { return true }
func (c *hierCache) size() int     { return c.root.count() }

func (c *hierCache) setPrompt(kv keyView, ids []string, keyOf func(i int) (cacheKey, bool), hit func(int, *entry)) {
	c.gen++
	c.root.clean(kv, ids, keyOf, hit, c.gen)
}

func (c *hierCache) getKey(k cacheKey) *entry { return c.root.entries[k] }

// level returns the level holding id's entry (nil if absent and !create).
func (c *hierCache) level(kv keyView, id string, create bool) *hLevel {
	if kv.parent(id) == "" {
		return c.root
	}
	var chain []string
	for p := kv.parent(id); p != ""; p = kv.parent(p) {
		chain = append(chain, p)
	}
	l := c.root
	for i := len(chain) - 1; i >= 0; i-- {
		sk := subKey{chain[i], kv.classType(chain[i])}
		s := l.subs[sk]
		if s == nil {
			if !create {
				return nil
			}
			s = newHLevel()
			l.subs[sk] = s
		}
		l = s
	}
	return l
}

func (c *hierCache) get(kv keyView, id string) *entry {
	k, ok := kv.key(id)
	if !ok {
		return nil
	}
	l := c.level(kv, id, false)
	if l == nil {
		return nil
	}
	return l.entries[k]
}

func (c *hierCache) set(kv keyView, id string, e *entry) {
	k, ok := kv.key(id)
	if !ok {
		return
	}
	e.gen = c.gen
	c.level(kv, id, true).entries[k] = e
}

func (c *hierCache) ensureSubcache(kv keyView, parent string, children []string) {
	pl := c.level(kv, parent, true)
	sk := subKey{parent, kv.classType(parent)}
	s := pl.subs[sk]
	if s == nil {
		s = newHLevel()
		pl.subs[sk] = s
	}
	c.gen++
	s.clean(kv, children, func(i int) (cacheKey, bool) { return kv.key(children[i]) }, nil, c.gen)
}

// lruCache is --cache-lru N: a flat store evicting entries unused for the most generations
// while above N; entries used by the current prompt are never evicted.
type lruCache struct {
	max     int
	gen     int
	minGen  int
	entries map[cacheKey]*lruEntry
}

type lruEntry struct {
	e    *entry
	used int
}

func (c *lruCache) enabled() bool { return true }
func (c *lruCache) size() int     { return len(c.entries) }

func (c *lruCache) mark(kv keyView, id string) {
	if k, ok := kv.key(id); ok {
		if le := c.entries[k]; le != nil {
			le.used = c.gen
		}
	}
}

func (c *lruCache) clean() {
	for len(c.entries) > c.max && c.minGen < c.gen {
		c.minGen++
		for k, le := range c.entries {
			if le.used < c.minGen {
				delete(c.entries, k)
			}
		}
	}
}

func (c *lruCache) setPrompt(kv keyView, ids []string, keyOf func(i int) (cacheKey, bool), hit func(int, *entry)) {
	c.gen++
	for i := range ids {
		if k, ok := keyOf(i); ok {
			if le := c.entries[k]; le != nil {
				le.used = c.gen // never evicted while this prompt is current
				hit(i, le.e)
			}
		}
	}
	c.clean()
}

func (c *lruCache) getKey(k cacheKey) *entry {
	le := c.entries[k]
	if le == nil {
		return nil
	}
	le.used = c.gen
	return le.e
}

func (c *lruCache) get(kv keyView, id string) *entry {
	k, ok := kv.key(id)
	if !ok {
		return nil
	}
	le := c.entries[k]
	if le == nil {
		return nil
	}
	le.used = c.gen
	return le.e
}

func (c *lruCache) set(kv keyView, id string, e *entry) {
	k, ok := kv.key(id)
	if !ok {
		return
	}
	c.entries[k] = &lruEntry{e: e, used: c.gen}
}

func (c *lruCache) ensureSubcache(kv keyView, parent string, children []string) {
	c.mark(kv, parent)
	for _, id := range children {
		c.mark(kv, id)
	}
	c.clean()
}

// keyHasher computes keys: two independently seeded 64-bit hashes of the canonical signature
// bytes (128 bits). Seeds are per Executor, so keys are stable across its prompts.
type keyHasher struct {
	seeds *[2]maphash.Seed
	enc   encoder
	sub   []byte // one input's encoding (unordered inputs of big nodes)
}

func newKeyHasher(n *nonceSource, seeds *[2]maphash.Seed) *keyHasher {
	return &keyHasher{seeds: seeds, enc: encoder{nonce: n, buf: make([]byte, 0, 256)}}
}

func (kh *keyHasher) sum() cacheKey {
	var out cacheKey
	binary.LittleEndian.PutUint64(out[:8], maphash.Bytes(kh.seeds[0], kh.enc.buf))
	binary.LittleEndian.PutUint64(out[8:], maphash.Bytes(kh.seeds[1], kh.enc.buf))
	kh.enc.buf = kh.enc.buf[:0]
	return out
}
