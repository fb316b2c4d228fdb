package lora

import (
	"fmt"

	"github.com/comfygo/comfygo/internal/models"
	"github.com/comfygo/comfygo/internal/tensor"
)

// LoRA is a low-rank patch (kohya/LyCORIS LoCon incl. the Tucker mid, diffusers, PEFT):
// Delta = Scale·reshape(Up·Down). It implements models.Patch and models.LowRank.
type LoRA struct {
	Up    *tensor.Tensor // [out, r] or [out, r, 1, 1]
	Down  *tensor.Tensor // [r, in] or [r, in, kh, kw] (Tucker mid already folded in)
	Scale float64        // alpha/r, or 1 without alpha
}

// Factors returns the low-rank factors (models.LowRank).
func (l *LoRA) Factors() (up, down *tensor.Tensor, scale float64) { return l.Up, l.Down, l.Scale }

// Delta returns Scale·reshape(Up·Down, shape).
func (l *LoRA) Delta(shape []int) (*tensor.Tensor, error) {
	r := l.Down.Shape[0]
	out := l.Up.Shape[0]
	if tensor.Numel(l.Up.Shape) != out*r {
		return nil, fmt.Errorf("lora: up %v does not match rank %d", l.Up.Shape, r)
	}
	in := tensor.Numel(l.Down.Shape) / r
	if out*in != tensor.Numel(shape) {
		return nil, fmt.Errorf("lora: delta [%d,%d] does not fit weight %v", out, in, shape)
	}
	if len(l.Up.Data) != out*r || len(l.Down.Data) != r*in {
		return nil, fmt.Errorf("lora: up %v / down %v hold %d / %d values", l.Up.Shape, l.Down.Shape, len(l.Up.Data), len(l.Down.Data))
	}
	d := make([]float32, out*in)
	models.AddLowRankF32(d, nil, l.Up.Data, l.Down.Data, out, r, in, float32(l.Scale))
	return tensor.FromData(d, shape...), nil
}

// foldTucker returns the down factor with a LoCon Tucker mid folded in:
// down'[a,i,y,x] = Σ_b mid[a,b,y,x]·down[b,i] (down [r,in,1,1], mid [r,r,kh,kw]).
func foldTucker(down, mid *tensor.Tensor) (*tensor.Tensor, error) {
	if len(mid.Shape) != 4 {
		return nil, fmt.Errorf("lora_mid must be 4-D, got %v", mid.Shape)
	}
	ra, rb, kh, kw := mid.Shape[0], mid.Shape[1], mid.Shape[2], mid.Shape[3]
	if down.Shape[0] != rb {
		return nil, fmt.Errorf("lora_mid %v does not match lora_down %v", mid.Shape, down.Shape)
	}
	in := tensor.Numel(down.Shape) / rb
	out := tensor.New(ra, in, kh, kw)
	k := kh * kw
	for a := 0; a < ra; a++ {
		for b := 0; b < rb; b++ {
			for i := 0; i < in; i++ {
				dv := down.Data[b*in+i]
				if dv == 0 {
					continue
				}
				dst := out.Data[(a*in+i)*k : (a*in+i+1)*k]
				src := mid.Data[(a*rb+b)*k : (a*rb+b+1)*k]
				for j := range dst {
					dst[j] += src[j] * dv
				}
			}
		}
	}
	return out, nil
}

// LoHa is a Hadamard-product patch: Delta = Scale·(W1a·W1b) ⊙ (W2a·W2b), or with the Tucker
// cores T1/T2: m[p,q,y,x] = Σ_i Σ_j T[i,j,y,x]·Wb[j,q]·Wa[i,p].
type LoHa struct {
	W1a, W1b, W2a, W2b *tensor.Tensor
	T1, T2             *tensor.Tensor // optional
	Scale              float64
}

// Delta implements models.Patch.
func (h *LoHa) Delta(shape []int) (*tensor.Tensor, error) {
	m1, err := hadaFactor(h.W1a, h.W1b, h.T1)
	if err != nil {
		return nil, fmt.Errorf("loha: %w", err)
	}
	m2, err := hadaFactor(h.W2a, h.W2b, h.T2)
	if err != nil {
		return nil, fmt.Errorf("loha: %w", err)
	}
	if len(m1) != len(m2) || len(m1) != tensor.Numel(shape) {
		return nil, fmt.Errorf("loha: products of %d and %d values for weight %v", len(m1), len(m2), shape)
	}
	s := float32(h.Scale)
	for i := range m1 {
		m1[i] = s * (m1[i] * m2[i])
	}
	return tensor.FromData(m1, shape...), nil
}

func hadaFactor(a, b, t *tensor.Tensor) ([]float32, error) {
	if t == nil {
		r := a.Shape[len(a.Shape)-1]
		if len(a.Shape) != 2 || b.Shape[0] != r {
			return nil, fmt.Errorf("factor shapes %v, %v", a.Shape, b.Shape)
		}
		out := a.Shape[0]
		in := tensor.Numel(b.Shape) / r
		return matmul(a.Data, b.Data, out, r, in), nil
	}
	return tucker(t, b, a)
}

// tucker is einsum('i j k l, j r, i p -> p r k l', t, wb, wa).
func tucker(t, wb, wa *tensor.Tensor) ([]float32, error) {
	if len(t.Shape) != 4 || len(wb.Shape) != 2 || len(wa.Shape) != 2 {
		return nil, fmt.Errorf("tucker shapes %v, %v, %v", t.Shape, wb.Shape, wa.Shape)
	}
	I, J, K, L := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	R := wb.Shape[1]
	P := wa.Shape[1]
	if wb.Shape[0] != J || wa.Shape[0] != I {
		return nil, fmt.Errorf("tucker shapes %v, %v, %v", t.Shape, wb.Shape, wa.Shape)
	}
	kl := K * L
	// tmp[i, r, kl] = Σ_j t[i,j,kl]·wb[j,r]
	tmp := make([]float32, I*R*kl)
	for i := 0; i < I; i++ {
		for j := 0; j < J; j++ {
			for r := 0; r < R; r++ {
				w := wb.Data[j*R+r]
				dst := tmp[(i*R+r)*kl : (i*R+r+1)*kl]
				src := t.Data[(i*J+j)*kl : (i*J+j+1)*kl]
				for x := range dst {
					dst[x] += src[x] * w
				}
			}
		}
	}
	out := make([]float32, P*R*kl)
	for i := 0; i < I; i++ {
		for p := 0; p < P; p++ {
			w := wa.Data[i*P+p]
			dst := out[p*R*kl : (p+1)*R*kl]
			src := tmp[i*R*kl : (i+1)*R*kl]
			for x := range dst {
				dst[x] += src[x] * w
			}
		}
	}
	return out, nil
}

// LoKr is a Kronecker-product patch: Delta = Scale·kron(W1, W2) with each factor given whole
// or as a product (W2 optionally in Tucker form).
type LoKr struct {
	W1, W1a, W1b     *tensor.Tensor
	W2, W2a, W2b, T2 *tensor.Tensor
	Scale            float64
}

// Delta implements models.Patch.
func (k *LoKr) Delta(shape []int) (*tensor.Tensor, error) {
	w1 := k.W1
	if w1 == nil {
		if k.W1a == nil || k.W1b == nil {
			return nil, fmt.Errorf("lokr: missing w1")
		}
		r := k.W1b.Shape[0]
		w1 = tensor.FromData(matmul(k.W1a.Data, k.W1b.Data, k.W1a.Shape[0], r, tensor.Numel(k.W1b.Shape)/r), k.W1a.Shape[0], tensor.Numel(k.W1b.Shape)/r)
	}
	w2 := k.W2
	if w2 == nil {
		if k.W2a == nil || k.W2b == nil {
			return nil, fmt.Errorf("lokr: missing w2")
		}
		if k.T2 == nil {
			r := k.W2b.Shape[0]
			w2 = tensor.FromData(matmul(k.W2a.Data, k.W2b.Data, k.W2a.Shape[0], r, tensor.Numel(k.W2b.Shape)/r), k.W2a.Shape[0], tensor.Numel(k.W2b.Shape)/r)
		} else {
			d, err := tucker(k.T2, k.W2b, k.W2a)
			if err != nil {
				return nil, fmt.Errorf("lokr: %w", err)
			}
			w2 = tensor.FromData(d, k.W2a.Shape[1], k.W2b.Shape[1], k.T2.Shape[2], k.T2.Shape[3])
		}
	}
	a := w1
	if len(w2.Shape) == 4 && len(w1.Shape) == 2 {
		a = tensor.FromData(w1.Data, w1.Shape[0], w1.Shape[1], 1, 1)
	}
	if len(a.Shape) != len(w2.Shape) {
		return nil, fmt.Errorf("lokr: factor ranks %v and %v differ", a.Shape, w2.Shape)
	}
	d := kron(a, w2)
	if len(d.Data) != tensor.Numel(shape) {
		return nil, fmt.Errorf("lokr: kron %v does not fit weight %v", d.Shape, shape)
	}
	scaleInPlace(d.Data, float32(k.Scale))
	return tensor.FromData(d.Data, shape...), nil
}

// kron is torch.kron for tensors of equal rank.
func kron(a, b *tensor.Tensor) *tensor.Tensor {
	n := len(a.Shape)
	shape := make([]int, n)
	for i := range shape {
		shape[i] = a.Shape[i] * b.Shape[i]
	}
	out := tensor.New(shape...)
	idxA := make([]int, n)
	for ia := 0; ia < len(a.Data); ia++ {
		// unravel ia
		r := ia
		for d := n - 1; d >= 0; d-- {
			idxA[d] = r % a.Shape[d]
			r /= a.Shape[d]
		}
		av := a.Data[ia]
		for ib := 0; ib < len(b.Data); ib++ {
			r := ib
			off := 0
			mul := 1
			for d := n - 1; d >= 0; d-- {
				bi := r % b.Shape[d]
				r /= b.Shape[d]
				off += (idxA[d]*b.Shape[d] + bi) * mul
				mul *= shape[d]
			}
			out.Data[off] = av * b.Data[ib]
		}
	}
	return out
}

// Diff is a full-weight delta (".diff", ".diff_b", ".w_norm", ".b_norm").
type Diff struct{ D *tensor.Tensor }

// Delta implements models.Patch.
func (d *Diff) Delta(shape []int) (*tensor.Tensor, error) {
	if tensor.Numel(shape) != len(d.D.Data) {
		return nil, fmt.Errorf("diff %v does not fit weight %v", d.D.Shape, shape)
	}
	return tensor.FromData(append([]float32(nil), d.D.Data...), shape...), nil
}

func scaleInPlace(d []float32, s float32) {
	if s == 1 {
		return
	}
	for i := range d {
		d[i] *= s
	}
}

// matmul returns A[m,k]·B[k,n] (row-major) on the models package's tiled merge kernel.
func matmul(a, b []float32, m, k, n int) []float32 { return models.MatMulF32(a, b, m, k, n) }
