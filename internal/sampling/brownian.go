package sampling

import (
	"math"
	"strconv"

	"github.com/comfygo/comfygo/internal/tensor"
)

// seedSequence reproduces numpy.random.SeedSequence(entropy, spawn_key, pool_size=24)
// .generate_state(n) (uint32 words).
func seedSequence(entropy uint64, spawnKey []uint64, n int) []uint32 {
	const pool = 24
	words := func(v uint64) []uint32 {
		if v == 0 {
			return []uint32{0}
		}
		var w []uint32
		for v > 0 {
			w = append(w, uint32(v))
			v >>= 32
		}
		return w
	}
	ent := words(entropy)
	if len(spawnKey) > 0 {
		for len(ent) < pool {
			ent = append(ent, 0)
		}
		for _, k := range spawnKey {
			ent = append(ent, words(k)...)
		}
	}
	hashConst := uint32(0x43B0D7E5)
	hashmix := func(v uint32) uint32 {
		v ^= hashConst
		hashConst *= 0x931E8875
		v *= hashConst
		v ^= v >> 16
		return v
	}
	mix := func(x, y uint32) uint32 {
		r := 0xCA01F9DD*x - 0x4973F715*y
		r ^= r >> 16
		return r
	}
	var mixer [pool]uint32
	for i := range mixer {
		if i < len(ent) {
			mixer[i] = hashmix(ent[i])
		} else {
			mixer[i] = hashmix(0)
		}
	}
	for src := 0; src < pool; src++ {
		for dst := 0; dst < pool; dst++ {
			if src != dst {
				mixer[dst] = mix(mixer[dst], hashmix(mixer[src]))
			}
		}
	}
	for src := pool; src < len(ent); src++ {
		for dst := 0; dst < pool; dst++ {
			mixer[dst] = mix(mixer[dst], hashmix(ent[src]))
		}
	}
	out := make([]uint32, n)
	b := uint32(0x8B51F9DD)
	for i := range out {
		v := mixer[i%pool] ^ b
		b *= 0x58F38DED
		v *= b
		v ^= v >> 16
		out[i] = v
	}
	return out
}

// round6 is Python's round(v, 6) (correctly rounded, ties to even).
func round6(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 6, 64), 64)
	return r
}

// bnode is one interval of torchsde's BrownianInterval (halfway tree, tol 1e-6, no Levy area).
type bnode struct {
	start, end  float64
	parent      *bnode
	isLeft      bool
	split       bool
	mid         float64
	key         uint64
	depth       int
	wseed       uint32
	left, right *bnode
	w           []float32 // cached increment over [start, end]
}

// BrownianTree reproduces torchsde.BrownianTree(t0, zeros, t1, entropy=seed, tol=1e-6,
// pool_size=24) on the CPU in float32, as ComfyUI's BrownianTreeNoiseSampler builds it.
type BrownianTree struct {
	seed  uint64
	shape []int
	root  *bnode
}

// NewBrownianTree builds a tree over [t0, t1] for tensors of shape.
func NewBrownianTree(t0, t1 float64, shape []int, seed uint64) *BrownianTree {
	bt := &BrownianTree{seed: seed, shape: append([]int(nil), shape...)}
	root := &bnode{start: round6(t0), end: round6(t1)}
	seeds := seedSequence(seed, nil, 3)
	w := NewGenerator(uint64(seeds[0])).Randn(shape...)
	f := float32(math.Sqrt(t1 - t0))
	for i := range w.Data {
		w.Data[i] *= f
	}
	root.w = w.Data
	bt.root = root
	return bt
}

func (bt *BrownianTree) splitExact(n *bnode, m float64) {
	n.mid = round6(m)
	n.split = true
	if n.parent != nil {
		n.key = 2 * n.parent.key
		if !n.isLeft {
			n.key++
		}
		n.depth = n.parent.depth + 1
	}
	n.wseed = seedSequence(bt.seed, []uint64{n.key, uint64(n.depth)}, 4)[0]
	n.left = &bnode{start: n.start, end: n.mid, parent: n, isLeft: true}
	n.right = &bnode{start: n.mid, end: n.end, parent: n}
}

func (bt *BrownianTree) splitToward(n *bnode, m float64) {
	for {
		bt.splitExact(n, 0.5*(n.end+n.start))
		switch {
		case m > n.mid:
			n = n.right
		case m < n.mid:
			n = n.left
		default:
			return
		}
	}
}

func (bt *BrownianTree) loc(n *bnode, ta, tb float64, out []*bnode) []*bnode {
	for {
		if ta == n.start && tb == n.end {
			return append(out, n)
		}
		if !n.split {
			// Split at halfway points toward the query end point; then dispatch again from
			// this node (torchsde goes to a child, which hands queries outside it back up).
			if ta == n.start {
				bt.splitToward(n, tb)
			} else {
				bt.splitToward(n, ta)
			}
			continue
		}
		switch {
		case tb <= n.mid:
			n = n.left
		case ta >= n.mid:
			n = n.right
		default:
			out = bt.loc(n.left, ta, n.mid, out)
			ta, n = n.mid, n.right
		}
	}
}

// increment returns the Brownian increment over node n (computed from its parent by the
// Brownian bridge, float32 as torchsde).
func (bt *BrownianTree) increment(n *bnode) []float32 {
	if n.w != nil {
		return n.w
	}
	p := n.parent
	wp := bt.increment(p)
	hr := 1 / (p.end - p.start)
	ld := p.mid - p.start
	rd := p.end - p.mid
	noise := NewGenerator(uint64(p.wseed)).Randn(bt.shape...).Data
	l32, hr32 := float32(ld), float32(hr)
	sd := float32(math.Sqrt(ld * rd * hr))
	left := make([]float32, len(wp))
	right := make([]float32, len(wp))
	for i, w := range wp {
		mean := (l32 * w) * hr32
		left[i] = mean + sd*noise[i]
		right[i] = w - left[i]
	}
	p.left.w, p.right.w = left, right
	return n.w
}

// Increment returns W(tb) - W(ta) for ta <= tb (clamped to the tree's range, then rounded).
func (bt *BrownianTree) Increment(ta, tb float64) []float32 {
	r := bt.root
	ta = math.Min(math.Max(ta, r.start), r.end)
	tb = math.Min(math.Max(tb, r.start), r.end)
	if ta == tb {
		return make([]float32, tensor.Numel(bt.shape))
	}
	nodes := bt.loc(r, round6(ta), round6(tb), nil)
	sum := append([]float32(nil), bt.increment(nodes[0])...)
	for _, n := range nodes[1:] {
		w := bt.increment(n)
		for i := range sum {
			sum[i] += w[i]
		}
	}
	return sum
}

// BrownianNoise is ComfyUI's BrownianTreeNoiseSampler (cpu tree): noise(sigma, sigmaNext) =
// (W(sigmaNext) - W(sigma)) / sqrt(|sigma - sigmaNext|).
type BrownianNoise struct {
	tree *BrownianTree
}

// NewBrownianNoise builds the noise sampler over [sigmaMin, sigmaMax] for x's shape.
func NewBrownianNoise(shape []int, sigmaMin, sigmaMax float64, seed uint64) *BrownianNoise {
	return &BrownianNoise{tree: NewBrownianTree(sigmaMin, sigmaMax, shape, seed)}
}

// Noise returns the normalized increment between sigma and sigmaNext.
func (b *BrownianNoise) Noise(sigma, sigmaNext float64) *tensor.Tensor {
	lo, hi, sign := sigmaNext, sigma, float32(-1)
	if sigma < sigmaNext {
		lo, hi, sign = sigma, sigmaNext, 1
	}
	w := b.tree.Increment(float64(float32(lo)), float64(float32(hi)))
	d := float32(math.Sqrt(float64(float32(float32(hi) - float32(lo)))))
	out := tensor.New(b.tree.shape...)
	for i, v := range w {
		out.Data[i] = (v * sign) / d
	}
	return out
}
