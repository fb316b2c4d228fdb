package executor

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/comfygo/comfygo/graph"
)

// fuzzClasses are cheap node types (no large allocations) the prompt fuzzer draws from.
var fuzzClasses = []string{"XCount", "XSink", "TestMakeListNode", "TestIntMathOperation", "TestToBoolNode",
	"TestExecutionBlocker", "TestIntConditions", "StubInt", "StubFloat", "TestAccumulateNode",
	"TestAccumulationHeadNode", "TestListToAccumulationNode", "TestAccumulationToListNode", "TestCustomValidation5",
	"TestWhileLoopOpen", "TestForLoopOpen", "TestForLoopClose", "TestBoolOperationNode", "XFail"}

var fuzzInputs = []string{"value", "a", "b", "in0", "in1", "value1", "value2", "operation", "to_add", "accumulation",
	"list", "input", "block", "input1", "input2", "remaining", "flow_control", "initial_value1", "condition", "op"}

// fuzzPrompt decodes bytes into a small prompt: per node a class byte and input bytes, each
// input a link to another node or a constant.
func fuzzPrompt(data []byte) *graph.Prompt {
	p := graph.NewPrompt()
	next := func() (byte, bool) {
		if len(data) == 0 {
			return 0, false
		}
		b := data[0]
		data = data[1:]
		return b, true
	}
	for i := 0; i < 12; i++ {
		c, ok := next()
		if !ok {
			break
		}
		n := &graph.Node{ClassType: fuzzClasses[int(c)%len(fuzzClasses)]}
		cnt, _ := next()
		for j := 0; j < int(cnt%5); j++ {
			k, _ := next()
			v, _ := next()
			name := fuzzInputs[int(k)%len(fuzzInputs)]
			switch v % 6 {
			case 0, 1:
				n.Inputs.Set(name, graph.Link{NodeID: strconv.Itoa(int(v/6) % 13), Slot: int(v % 3)})
			case 2:
				// small integers: loop counts stay small, so nested expansions stay cheap
				n.Inputs.Set(name, json.Number(strconv.Itoa(int(v%16)-4)))
			case 3:
				n.Inputs.Set(name, json.Number(strconv.FormatFloat(float64(v)/32, 'f', -1, 64)))
			case 4:
				n.Inputs.Set(name, []string{"add", "==", "a AND b", "x"}[v%4])
			case 5:
				n.Inputs.Set(name, v%2 == 0)
			}
		}
		p.Add(strconv.Itoa(i), n)
	}
	return p
}

func FuzzPrompt(f *testing.F) {
	f.Add([]byte{0, 1, 0, 2, 1, 2, 0, 0})
	f.Add([]byte{14, 2, 15, 2, 16, 6, 15, 1, 17, 3, 1, 0, 0, 1, 18, 6, 2})
	f.Add([]byte{5, 3, 12, 0, 13, 7, 11, 8, 6, 4, 10, 0, 9, 12, 1, 1, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range modes[:2] {
			ex := New(m.cfg)
			p := fuzzPrompt(data)
			outs, _, verr := ex.Validate(p, nil)
			if verr != nil {
				if _, err := json.Marshal(verr); err != nil {
					t.Fatal(err)
				}
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second) // bounded: nested loop expansions can be slow
			h := ex.Execute(ctx, Job{PromptID: "f", Prompt: p, Outputs: outs, ClientID: "c"}, &recSink{})
			cancel()
			if _, err := json.Marshal(h); err != nil {
				t.Fatal(err)
			}
			if len(h.Status.Messages) < 3 {
				t.Fatalf("history messages %v", h.Status.Messages)
			}
		}
	})
}
