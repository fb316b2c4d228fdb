package testpack

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

const u64max = uint64(0xffffffffffffffff)

var negU64max = new(big.Int).Neg(new(big.Int).SetUint64(u64max))

// toBig returns an INT input as a big.Int.
func toBig(v any) *big.Int {
	switch x := v.(type) {
	case int64:
		return big.NewInt(x)
	case uint64:
		return new(big.Int).SetUint64(x)
	case *big.Int:
		return new(big.Int).Set(x)
	case int:
		return big.NewInt(int64(x))
	case float64:
		b, _ := big.NewFloat(x).Int(nil)
		return b
	case bool:
		if x {
			return big.NewInt(1)
		}
	}
	return big.NewInt(0)
}

func fromBig(b *big.Int) any {
	if b.IsInt64() {
		return b.Int64()
	}
	if b.IsUint64() {
		return b.Uint64()
	}
	return b
}

func cmpOp(op string, c int) (bool, error) {
	switch op {
	case "==":
		return c == 0, nil
	case "!=":
		return c != 0, nil
	case "<":
		return c < 0, nil
	case ">":
		return c > 0, nil
	case "<=":
		return c <= 0, nil
	case ">=":
		return c >= 0, nil
	}
	return false, fmt.Errorf("unknown operation %q", op)
}

var cmpOps = []string{"==", "!=", "<", ">", "<=", ">="}

// truthy is Python truthiness for the values flowing in the pack (tensors: not all zero).
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case uint64:
		return x != 0
	case int:
		return x != 0
	case *big.Int:
		return x.Sign() != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	case *tensor.Tensor:
		mx, mn := float32(0), float32(0)
		for i, e := range x.Data {
			if i == 0 || e > mx {
				mx = e
			}
			if i == 0 || e < mn {
				mn = e
			}
		}
		return !(mx == 0 && mn == 0)
	}
	return true
}

func conditionDefs() []*nodes.Def {
	const cat = "Testing/Logic"
	return []*nodes.Def{
		{
			Name: "TestIntConditions", DisplayName: "Int Condition", Category: cat,
			Required: []nodes.Input{intIn("a", 0, negU64max, u64max), intIn("b", 0, negU64max, u64max),
				{Name: "operation", Type: nodes.TypeCombo, Options: cmpOps}},
			Outputs: outs(nodes.TypeBoolean),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				r, err := cmpOp(in.String("operation"), toBig(in["a"]).Cmp(toBig(in["b"])))
				if err != nil {
					return nodes.Result{}, err
				}
				return nodes.Out(r)
			},
		},
		{
			Name: "TestFloatConditions", DisplayName: "Float Condition", Category: cat,
			Required: []nodes.Input{
				{Name: "a", Type: nodes.TypeFloat, Default: 0.0, Min: -999999999999.0, Max: 999999999999.0, Step: 1},
				{Name: "b", Type: nodes.TypeFloat, Default: 0.0, Min: -999999999999.0, Max: 999999999999.0, Step: 1},
				{Name: "operation", Type: nodes.TypeCombo, Options: cmpOps}},
			Outputs: outs(nodes.TypeBoolean),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				a, b := in.Float("a"), in.Float("b")
				c := 0
				if a < b {
					c = -1
				} else if a > b {
					c = 1
				}
				r, err := cmpOp(in.String("operation"), c)
				if a != a || b != b { // NaN: only != holds
					r = in.String("operation") == "!="
				}
				if err != nil {
					return nodes.Result{}, err
				}
				return nodes.Out(r)
			},
		},
		{
			Name: "TestStringConditions", DisplayName: "String Condition", Category: cat,
			Required: []nodes.Input{sock("a", nodes.TypeString), sock("b", nodes.TypeString),
				{Name: "operation", Type: nodes.TypeCombo, Options: []string{"a == b", "a != b", "a IN b", "a MATCH REGEX(b)", "a BEGINSWITH b", "a ENDSWITH b"}},
				{Name: "case_sensitive", Type: nodes.TypeBoolean, Default: true}},
			Outputs: outs(nodes.TypeBoolean),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				a, b := in.String("a"), in.String("b")
				if !in.Bool("case_sensitive") {
					a, b = strings.ToLower(a), strings.ToLower(b)
				}
				var r bool
				switch in.String("operation") {
				case "a == b":
					r = a == b
				case "a != b":
					r = a != b
				case "a IN b":
					r = strings.Contains(b, a)
				case "a MATCH REGEX(b)":
					if re, err := regexp.Compile(`^(?:` + b + `)`); err == nil {
						r = re.MatchString(a)
					}
				case "a BEGINSWITH b":
					r = strings.HasPrefix(a, b)
				case "a ENDSWITH b":
					r = strings.HasSuffix(a, b)
				}
				return nodes.Out(r)
			},
		},
		{
			Name: "TestToBoolNode", DisplayName: "To Bool", Category: cat,
			Required: []nodes.Input{sock("value", "*")},
			Optional: []nodes.Input{{Name: "invert", Type: nodes.TypeBoolean, Default: false}},
			Outputs:  outs(nodes.TypeBoolean),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				r := truthy(in["value"])
				if in.Bool("invert") {
					r = !r
				}
				return nodes.Out(r)
			},
		},
		{
			Name: "TestBoolOperationNode", DisplayName: "Bool Operation", Category: cat,
			Required: []nodes.Input{sock("a", nodes.TypeBoolean), sock("b", nodes.TypeBoolean),
				{Name: "op", Type: nodes.TypeCombo, Options: []string{"a AND b", "a OR b", "a XOR b", "NOT a"}}},
			Outputs: outs(nodes.TypeBoolean),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				a, b := truthy(in["a"]), truthy(in["b"])
				var r bool
				switch in.String("op") {
				case "a AND b":
					r = a && b
				case "a OR b":
					r = a || b
				case "a XOR b":
					r = a != b
				case "NOT a":
					r = !a
				}
				return nodes.Out(r)
			},
		},
	}
}

// variantNames are the classes wrapped by VariantSupport (their types are "SmartTypes").
var variantNames = map[string]bool{
	"TestWhileLoopOpen": true, "TestWhileLoopClose": true, "TestExecutionBlocker": true,
	"TestAccumulateNode": true, "TestAccumulationHeadNode": true, "TestAccumulationToListNode": true,
	"TestListToAccumulationNode": true, "TestAccumulationGetLengthNode": true,
	"TestAccumulationGetItemNode": true, "TestAccumulationSetItemNode": true,
	"TestForLoopOpen": true, "TestForLoopClose": true, "TestMakeListNode": true,
	"TestCustomValidation3": true,
}

// fromVariant reports whether input name of the validated node is linked to a variant node
// (whose SmartType output passes any check, as upstream).
func fromVariant(ctx *nodes.Context, name string) bool {
	if ctx.Prompt == nil {
		return false
	}
	n, ok := ctx.Prompt.Node(ctx.NodeID)
	if !ok {
		return false
	}
	l, ok := n.Inputs.Values[name].(graph.Link)
	if !ok {
		return false
	}
	src, ok := ctx.Prompt.Node(l.NodeID)
	return ok && variantNames[src.ClassType]
}

// variant applies ComfyUI's VariantSupport to d: the engine's link type check is replaced by
// a check that each linked input's received type is a subset of the declared one ("*" matches
// anything); links from other variant nodes always pass.
func variant(d *nodes.Def) *nodes.Def {
	d.Validate = &nodes.Validator{InputTypes: true, Func: func(ctx *nodes.Context, in nodes.Inputs, types map[string]string) error {
		for _, name := range sortedKeys(types) {
			got := types[name]
			inp, sec, ok := d.Input(name)
			if !ok || sec == "hidden" || fromVariant(ctx, name) {
				continue
			}
			if !subsetType(got, inp.Type) {
				return fmt.Errorf("Invalid type of %s: %s (expected %s)", name, got, inp.Type)
			}
		}
		return nil
	}}
	return d
}

func subsetType(got, want string) bool {
	if got == "*" || want == "*" {
		return true
	}
	ws := map[string]bool{}
	for _, w := range strings.Split(want, ",") {
		ws[w] = true
	}
	for _, g := range strings.Split(got, ",") {
		if !ws[g] {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// ---- flow_control.py ----

const numFlowSockets = 5

func flowDefs() []*nodes.Def {
	const cat = "Testing/Flow"
	var openOpt, closeOpt []nodes.Input
	for i := 0; i < numFlowSockets; i++ {
		openOpt = append(openOpt, sock(fmt.Sprintf("initial_value%d", i), "*"))
		closeOpt = append(closeOpt, sock(fmt.Sprintf("initial_value%d", i), "*"))
	}
	openOuts := []nodes.Output{{Type: "FLOW_CONTROL", Name: "FLOW_CONTROL"}}
	var closeOuts []nodes.Output
	for i := 0; i < numFlowSockets; i++ {
		openOuts = append(openOuts, nodes.Output{Type: "*", Name: fmt.Sprintf("value%d", i)})
		closeOuts = append(closeOuts, nodes.Output{Type: "*", Name: fmt.Sprintf("value%d", i)})
	}
	return []*nodes.Def{
		variant(&nodes.Def{
			Name: "TestWhileLoopOpen", DisplayName: "While Loop Open", Category: cat,
			Required: []nodes.Input{{Name: "condition", Type: nodes.TypeBoolean, Default: true}},
			Optional: openOpt,
			Outputs:  openOuts,
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				vals := []any{"stub"}
				for i := 0; i < numFlowSockets; i++ {
					vals = append(vals, in[fmt.Sprintf("initial_value%d", i)])
				}
				return nodes.Out(vals...)
			},
		}),
		variant(&nodes.Def{
			Name: "TestWhileLoopClose", DisplayName: "While Loop Close", Category: cat,
			Required: []nodes.Input{{Name: "flow_control", Type: "FLOW_CONTROL", RawLink: true},
				{Name: "condition", Type: nodes.TypeBoolean, ForceInput: true}},
			Optional: closeOpt,
			Hidden:   []nodes.Hidden{{Name: "dynprompt", Marker: "DYNPROMPT"}, {Name: "unique_id", Marker: "UNIQUE_ID"}},
			Outputs:  closeOuts,
			Execute:  whileLoopClose,
		}),
		variant(&nodes.Def{
			Name: "TestExecutionBlocker", DisplayName: "Execution Blocker", Category: cat,
			Required: []nodes.Input{sock("input", "*"), sock("block", nodes.TypeBoolean),
				{Name: "verbose", Type: nodes.TypeBoolean, Default: false}},
			Outputs: named(outs("*"), "output"),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				if truthy(in["block"]) {
					if truthy(in["verbose"]) {
						return nodes.Out(&nodes.Blocker{Message: "Blocked Execution", HasMsg: true})
					}
					return nodes.Out(&nodes.Blocker{})
				}
				return nodes.Out(in["input"])
			},
		}),
	}
}

func whileLoopClose(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	dyn, _ := in["dynprompt"].(nodes.DynPrompt)
	if dyn == nil {
		return nodes.Result{}, fmt.Errorf("TestWhileLoopClose needs the dynamic prompt")
	}
	if !truthy(in["condition"]) {
		vals := make([]any, numFlowSockets)
		for i := range vals {
			vals[i] = in[fmt.Sprintf("initial_value%d", i)]
		}
		return nodes.Out(vals...)
	}
	self, _ := in["unique_id"].(string)
	// upstream: every ancestor of this node -> the nodes consuming it (explore_dependencies).
	upstream := map[string][]string{}
	type fr struct {
		id   string
		keys []string
		i    int
	}
	start, _ := dyn.Node(self)
	stack := []*fr{{id: self, keys: start.Inputs.Keys}}
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		if f.i >= len(f.keys) {
			stack = stack[:len(stack)-1]
			continue
		}
		n, _ := dyn.Node(f.id)
		v := n.Inputs.Values[f.keys[f.i]]
		f.i++
		l, ok := v.(graph.Link)
		if !ok {
			continue
		}
		if _, seen := upstream[l.NodeID]; !seen {
			upstream[l.NodeID] = []string{}
			// Python appends after recursing; emulate by deferring the append.
			pn, ok := dyn.Node(l.NodeID)
			if ok {
				stack = append(stack, &fr{id: l.NodeID, keys: pn.Inputs.Keys})
			}
			upstream[l.NodeID] = append(upstream[l.NodeID], f.id)
			continue
		}
		upstream[l.NodeID] = append(upstream[l.NodeID], f.id)
	}
	flow, _ := in["flow_control"].(graph.Link)
	open := flow.NodeID
	contained := map[string]bool{}
	var order []string
	add := func(id string) {
		if !contained[id] {
			contained[id] = true
			order = append(order, id)
		}
	}
	cstack := []string{open}
	for len(cstack) > 0 {
		id := cstack[len(cstack)-1]
		cstack = cstack[:len(cstack)-1]
		kids := upstream[id]
		for i := len(kids) - 1; i >= 0; i-- {
			if !contained[kids[i]] {
				add(kids[i])
				cstack = append(cstack, kids[i])
			}
		}
	}
	add(self)
	add(open)
	local := func(id string) string {
		if id == self {
			return "Recurse"
		}
		return id
	}
	b := ctx.NewGraphBuilder()
	for _, id := range order {
		orig, _ := dyn.Node(id)
		b.Node(orig.ClassType, local(id)).SetOverrideDisplayID(id)
	}
	for _, id := range order {
		orig, _ := dyn.Node(id)
		n := b.Lookup(b.Prefix + local(id))
		for _, k := range orig.Inputs.Keys {
			v := orig.Inputs.Values[k]
			if l, ok := v.(graph.Link); ok && contained[l.NodeID] {
				n.SetInput(k, b.Lookup(b.Prefix+local(l.NodeID)).Out(l.Slot))
			} else {
				n.SetInput(k, v)
			}
		}
	}
	newOpen := b.Lookup(b.Prefix + open)
	for i := 0; i < numFlowSockets; i++ {
		k := fmt.Sprintf("initial_value%d", i)
		newOpen.SetInput(k, in[k])
	}
	clone := b.Lookup(b.Prefix + "Recurse")
	res := make([]any, numFlowSockets)
	for i := range res {
		res[i] = clone.Out(i)
	}
	return nodes.Result{Outputs: res, Expand: b.Finalize()}, nil
}
