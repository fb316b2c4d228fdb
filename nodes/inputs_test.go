package nodes

import (
	"math/big"
	"testing"
)

func TestInputsAccessors(t *testing.T) {
	huge, _ := new(big.Int).SetString("36893488147419103231", 10) // 2^65-1
	in := Inputs{"i": int64(-3), "u": uint64(18446744073709551615), "b": huge, "f": 2.5, "t": true, "s": "x", "n": nil}
	if in.Int("i") != -3 || in.Uint64("u") != 18446744073709551615 || in.Uint64("b") != 18446744073709551615 {
		t.Fatal("ints")
	}
	if in.Float("f") != 2.5 || in.Float("i") != -3 || in.Float("t") != 1 || in.Float("b") < 3.6e19 {
		t.Fatal("floats")
	}
	if !in.Bool("t") || in.String("s") != "x" || in.String("n") != "" || in.Has("n") || !in.Has("s") {
		t.Fatal("others")
	}
}
