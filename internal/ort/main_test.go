package ort

import (
	"testing"
)

// testRuntime opens the CPU runtime, skipping (with the reason) where no ONNX Runtime library
// is installed.
func testRuntime(t testing.TB) *Runtime {
	t.Helper()
	if _, err := LibraryPath(""); err != nil {
		t.Skipf("no ONNX Runtime library: %v", err)
	}
	rt, err := Open(Config{Provider: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}
