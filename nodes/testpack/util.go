package testpack

import (
	"fmt"
	"math/big"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/nodes"
)

func accum(v any) []any {
	m, _ := v.(map[string]any)
	l, _ := m["accum"].([]any)
	return l
}

func newAccum(l []any) map[string]any { return map[string]any{"accum": l} }

func utilDefs() []*nodes.Def {
	const cat = "Testing/Lists"
	acc := "ACCUMULATION"
	accIn := sock("accumulation", acc)
	var loopOpt []nodes.Input
	var loopClose []nodes.Input
	for i := 1; i < numFlowSockets; i++ {
		loopOpt = append(loopOpt, sock(fmt.Sprintf("initial_value%d", i), "*"))
		loopClose = append(loopClose, nodes.Input{Name: fmt.Sprintf("initial_value%d", i), Type: "*", RawLink: true})
	}
	var makeListOpt []nodes.Input
	for i := 1; i < 10; i++ {
		makeListOpt = append(makeListOpt, sock(fmt.Sprintf("value%d", i), "*"))
	}
	return []*nodes.Def{
		variant(&nodes.Def{
			Name: "TestAccumulateNode", DisplayName: "Accumulate", Category: cat,
			Required: []nodes.Input{sock("to_add", "*")},
			Optional: []nodes.Input{accIn},
			Outputs:  outs(acc),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				if in["accumulation"] == nil {
					return nodes.Out(newAccum([]any{in["to_add"]}))
				}
				old := accum(in["accumulation"])
				l := append(append([]any{}, old...), in["to_add"])
				return nodes.Out(newAccum(l))
			},
		}),
		variant(&nodes.Def{
			Name: "TestAccumulationHeadNode", DisplayName: "Accumulation Head", Category: cat,
			Required: []nodes.Input{accIn},
			Outputs:  outs(acc, "*"),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				l := accum(in["accumulation"])
				if len(l) == 0 {
					return nodes.Out(in["accumulation"], nil)
				}
				return nodes.Out(newAccum(append([]any{}, l[1:]...)), l[0])
			},
		}),
		{
			Name: "TestAccumulationTailNode", DisplayName: "Accumulation Tail", Category: cat,
			Required: []nodes.Input{accIn},
			Outputs:  outs(acc, "*"),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				l := accum(in["accumulation"])
				if len(l) == 0 {
					return nodes.Out(nil, in["accumulation"])
				}
				return nodes.Out(newAccum(append([]any{}, l[:len(l)-1]...)), l[len(l)-1])
			},
		},
		variant(&nodes.Def{
			Name: "TestAccumulationToListNode", DisplayName: "Accumulation to List", Category: cat,
			Required: []nodes.Input{accIn},
			Outputs:  []nodes.Output{{Type: "*", IsList: true}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Out(append([]any{}, accum(in["accumulation"])...))
			},
		}),
		variant(&nodes.Def{
			Name: "TestListToAccumulationNode", DisplayName: "List to Accumulation", Category: cat,
			Required:    []nodes.Input{sock("list", "*")},
			InputIsList: true,
			Outputs:     outs(acc),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				l, _ := in["list"].([]any)
				return nodes.Out(newAccum(append([]any{}, l...)))
			},
		}),
		variant(&nodes.Def{
			Name: "TestAccumulationGetLengthNode", DisplayName: "Accumulation Get Length", Category: cat,
			Required: []nodes.Input{accIn},
			Outputs:  outs(nodes.TypeInt),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Out(int64(len(accum(in["accumulation"]))))
			},
		}),
		variant(&nodes.Def{
			Name: "TestAccumulationGetItemNode", DisplayName: "Accumulation Get Item", Category: cat,
			Required: []nodes.Input{accIn, {Name: "index", Type: nodes.TypeInt, Default: 0, Step: 1}},
			Outputs:  outs("*"),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				l := accum(in["accumulation"])
				i, err := pyIndex(in.Int("index"), len(l))
				if err != nil {
					return nodes.Result{}, err
				}
				return nodes.Out(l[i])
			},
		}),
		variant(&nodes.Def{
			Name: "TestAccumulationSetItemNode", DisplayName: "Accumulation Set Item", Category: cat,
			Required: []nodes.Input{accIn, {Name: "index", Type: nodes.TypeInt, Default: 0, Step: 1}, sock("value", "*")},
			Outputs:  outs(acc),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				l := append([]any{}, accum(in["accumulation"])...)
				i, err := pyIndex(in.Int("index"), len(l))
				if err != nil {
					return nodes.Result{}, err
				}
				l[i] = in["value"]
				return nodes.Out(newAccum(l))
			},
		}),
		{
			Name: "TestIntMathOperation", DisplayName: "Int Math Operation", Category: "Testing/Logic",
			Required: []nodes.Input{intIn("a", 0, negU64max, u64max), intIn("b", 0, negU64max, u64max),
				{Name: "operation", Type: nodes.TypeCombo, Options: []string{"add", "subtract", "multiply", "divide", "modulo", "power"}}},
			Outputs: outs(nodes.TypeInt),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				a, b := toBig(in["a"]), toBig(in["b"])
				r := new(big.Int)
				switch in.String("operation") {
				case "add":
					r.Add(a, b)
				case "subtract":
					r.Sub(a, b)
				case "multiply":
					r.Mul(a, b)
				case "divide", "modulo":
					if b.Sign() == 0 {
						return nodes.Result{}, nodes.Errorf("ZeroDivisionError", "integer division or modulo by zero")
					}
					q, m := new(big.Int), new(big.Int)
					q.DivMod(a, b, m) // Euclidean: 0 <= m < |b|
					if m.Sign() != 0 && b.Sign() < 0 {
						// Python floor semantics: remainder has the divisor's sign
						m.Add(m, b)
						q.Add(q, big.NewInt(1))
					}
					if in.String("operation") == "divide" {
						r = q
					} else {
						r = m
					}
				case "power":
					if b.Sign() < 0 {
						return nodes.Result{}, fmt.Errorf("negative exponent")
					}
					r.Exp(a, b, nil)
				}
				return nodes.Out(fromBig(r))
			},
		},
		variant(&nodes.Def{
			Name: "TestForLoopOpen", DisplayName: "For Loop Open", Category: "Testing/Flow",
			Required: []nodes.Input{{Name: "remaining", Type: nodes.TypeInt, Default: 1, Min: 0, Max: 100000, Step: 1}},
			Optional: loopOpt,
			Hidden:   []nodes.Hidden{{Name: "initial_value0", Marker: "*"}},
			Outputs: named(outs("FLOW_CONTROL", nodes.TypeInt, "*", "*", "*", "*"),
				"flow_control", "remaining", "value1", "value2", "value3", "value4"),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				var remaining any = in["remaining"]
				if v, ok := in["initial_value0"]; ok && v != nil {
					remaining = v
				}
				b := ctx.NewGraphBuilder()
				kv := []any{"condition", remaining, "initial_value0", remaining}
				vals := []any{"stub", remaining}
				for i := 1; i < numFlowSockets; i++ {
					v := in[fmt.Sprintf("initial_value%d", i)]
					kv = append(kv, fmt.Sprintf("initial_value%d", i), v)
					vals = append(vals, v)
				}
				b.Node("TestWhileLoopOpen", "", kv...)
				return nodes.Result{Outputs: vals, Expand: b.Finalize()}, nil
			},
		}),
		variant(&nodes.Def{
			Name: "TestForLoopClose", DisplayName: "For Loop Close", Category: "Testing/Flow",
			Required: []nodes.Input{{Name: "flow_control", Type: "FLOW_CONTROL", RawLink: true}},
			Optional: loopClose,
			Outputs:  named(outs("*", "*", "*", "*"), "value1", "value2", "value3", "value4"),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				flow, _ := in["flow_control"].(graph.Link)
				b := ctx.NewGraphBuilder()
				sub := b.Node("TestIntMathOperation", "", "operation", "subtract", "a", graph.Link{NodeID: flow.NodeID, Slot: 1}, "b", int64(1))
				cond := b.Node("TestToBoolNode", "", "value", sub.Out(0))
				kv := []any{"flow_control", flow, "condition", cond.Out(0), "initial_value0", sub.Out(0)}
				for i := 1; i < numFlowSockets; i++ {
					kv = append(kv, fmt.Sprintf("initial_value%d", i), in[fmt.Sprintf("initial_value%d", i)])
				}
				cl := b.Node("TestWhileLoopClose", "", kv...)
				res := make([]any, numFlowSockets-1)
				for i := range res {
					res[i] = cl.Out(i + 1)
				}
				return nodes.Result{Outputs: res, Expand: b.Finalize()}, nil
			},
		}),
		variant(&nodes.Def{
			Name: "TestMakeListNode", DisplayName: "Make List", Category: cat,
			Required: []nodes.Input{sock("value1", "*")},
			Optional: makeListOpt,
			Outputs:  []nodes.Output{{Type: "*", IsList: true}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				var l []any
				for i := 0; i < 10; i++ {
					if v, ok := in[fmt.Sprintf("value%d", i)]; ok {
						l = append(l, v)
					}
				}
				return nodes.Out(l)
			},
		}),
	}
}

func pyIndex(i int64, n int) (int, error) {
	if i < 0 {
		i += int64(n)
	}
	if i < 0 || i >= int64(n) {
		return 0, nodes.Errorf("IndexError", "list index out of range")
	}
	return int(i), nil
}
