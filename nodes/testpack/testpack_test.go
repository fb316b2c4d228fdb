package testpack

import "testing"

func TestDefs(t *testing.T) {
	seen := map[string]bool{}
	variants := 0
	for _, d := range Defs() {
		if seen[d.Name] {
			t.Fatalf("duplicate %s", d.Name)
		}
		seen[d.Name] = true
		if d.Execute == nil || d.Module != Module {
			t.Fatalf("%s: incomplete", d.Name)
		}
		if d.Validate != nil && d.Validate.InputTypes && len(d.Validate.Inputs) == 0 && !d.Validate.AllInputs {
			variants++
			if !variantNames[d.Name] {
				t.Errorf("%s is wrapped by variant() but not listed in variantNames", d.Name)
			}
		}
	}
	if variants != len(variantNames) {
		t.Errorf("%d variant nodes, %d listed", variants, len(variantNames))
	}
	for _, name := range []string{"StubImage", "StubConstantImage", "StubMask", "StubInt", "StubFloat", "TestLazyMixImages",
		"TestVariadicAverage", "TestCustomIsChanged", "TestIsChangedWithConstants", "TestCustomValidation1",
		"TestCustomValidation5", "TestDynamicDependencyCycle", "TestMixedExpansionReturns", "TestSamplingInExpansion",
		"TestForLoopOpen", "TestForLoopClose", "TestWhileLoopOpen", "TestWhileLoopClose", "TestExecutionBlocker",
		"TestIntConditions", "TestFloatConditions", "TestStringConditions", "TestToBoolNode", "TestBoolOperationNode",
		"TestIntMathOperation", "TestMakeListNode", "TestSleep", "TestParallelSleep", "TestOutputNodeWithSocketOutput",
		"TestAsyncProgressUpdate", "TestSyncProgressUpdate", "TestAsyncConcurrentLimit"} {
		if !seen[name] {
			t.Errorf("missing %s", name)
		}
	}
}
