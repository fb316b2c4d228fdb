package nodes

import (
	"fmt"
	"math"
	"math/big"

	"github.com/comfygo/comfygo/internal/tensor"
)

// Inputs are the assembled arguments of one call, by input name. Widget values arrive coerced:
// INT as int64 (a value above MaxInt64, such as a seed up to 2^64-1, as uint64; beyond that a
// *big.Int, since Python ints are unbounded), FLOAT as float64,
// STRING and COMBO as string, BOOLEAN as bool. Socket values are whatever the upstream node
// produced (*tensor.Tensor for IMAGE and MASK, *Latent for LATENT, ...). Absent optional inputs
// are missing from the map; for InputIsList nodes every value is a []any. Hidden inputs are
// present under their declared name.
type Inputs map[string]any

// Has reports whether name is present and not nil.
func (in Inputs) Has(name string) bool { return in[name] != nil }

// Int returns an INT input (a uint64 seed is returned with its bits unchanged).
func (in Inputs) Int(name string) int64 {
	switch v := in[name].(type) {
	case int64:
		return v
	case uint64:
		return int64(v)
	case int:
		return int64(v)
	case float64:
		return int64(v)
	case *big.Int:
		return v.Int64() // low 64 bits, like a uint64 seed's bits
	case bool:
		if v {
			return 1
		}
	}
	return 0
}

// Uint64 returns an INT input as uint64 (how seeds are consumed).
func (in Inputs) Uint64(name string) uint64 {
	switch v := in[name].(type) {
	case uint64:
		return v
	case *big.Int:
		return v.Uint64()
	default:
		return uint64(in.Int(name))
	}
}

// Float returns a FLOAT (or INT) input.
func (in Inputs) Float(name string) float64 {
	switch v := in[name].(type) {
	case float64:
		return v
	case float32:
		return float64(v)
	case int64:
		return float64(v)
	case uint64:
		return float64(v)
	case int:
		return float64(v)
	case *big.Int:
		f, _ := new(big.Float).SetInt(v).Float64()
		return f
	case bool:
		if v {
			return 1
		}
		return 0
	}
	return math.NaN()
}

// String returns a STRING or COMBO input.
func (in Inputs) String(name string) string {
	switch v := in[name].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// Bool returns a BOOLEAN input.
func (in Inputs) Bool(name string) bool {
	v, _ := in[name].(bool)
	return v
}

// Tensor returns an IMAGE or MASK input (nil if absent or of another type).
func (in Inputs) Tensor(name string) *tensor.Tensor {
	v, _ := in[name].(*tensor.Tensor)
	return v
}

// Latent returns a LATENT input (nil if absent or of another type).
func (in Inputs) Latent(name string) *Latent {
	v, _ := in[name].(*Latent)
	return v
}

// Out is shorthand for a Result with the given outputs.
func Out(values ...any) (Result, error) { return Result{Outputs: values}, nil }
