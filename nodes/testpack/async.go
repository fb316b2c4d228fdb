package testpack

import (
	"fmt"
	"sync"
	"time"

	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

func sleepCtx(ctx *nodes.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

var (
	busyMu sync.Mutex
	busy   = map[string]bool{}      // TestAsyncResourceUser's class-wide resource map
	limit  = make(chan struct{}, 2) // TestAsyncConcurrentLimit's class-wide semaphore
)

// progressLoop reports elapsed/sleep_seconds progress every 10 ms until the time is up.
func progressLoop(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
	total := in.Float("sleep_seconds")
	start := time.Now()
	for {
		el := time.Since(start).Seconds()
		if el >= total {
			break
		}
		if err := ctx.Progress(el/total, 1.0, nil); err != nil {
			return nodes.Result{}, err
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return nodes.Result{}, err
		}
	}
	return nodes.Out(in["value"])
}

// asyncDefs are async_test_nodes.py's and api_test_nodes.py's nodes.
func asyncDefs() []*nodes.Def {
	const cat = "_for_testing/async"
	return []*nodes.Def{
		{
			Name: "TestAsyncValidation", DisplayName: "Test Async Validation", Category: cat,
			Required: []nodes.Input{floatIn("value", 5.0, nil, nil), floatIn("threshold", 10.0, nil, nil)},
			Outputs:  outs(nodes.TypeImage),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Out(scale(full(1, 1, 512, 512, 3), in.Float("value")/10))
			},
			Validate: &nodes.Validator{Inputs: []string{"value", "threshold"}, Func: func(ctx *nodes.Context, in nodes.Inputs, _ map[string]string) error {
				time.Sleep(50 * time.Millisecond)
				v, t := in.Float("value"), in.Float("threshold")
				if v > t {
					return fmt.Errorf("Value %v exceeds threshold %v", v, t)
				}
				return nil
			}},
		},
		{
			Name: "TestAsyncError", DisplayName: "Test Async Error", Category: cat, Async: true,
			Required: []nodes.Input{sock("value", "*"), floatIn("error_after", 0.1, 0.0, 10.0)},
			Outputs:  outs("*"),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				if err := sleepCtx(ctx, secs(in.Float("error_after"))); err != nil {
					return nodes.Result{}, err
				}
				return nodes.Result{}, fmt.Errorf("Intentional async execution error for testing")
			},
		},
		{
			Name: "TestSyncError", DisplayName: "Test Sync Error", Category: cat,
			Required: []nodes.Input{sock("value", "*")},
			Outputs:  outs("*"),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Result{}, fmt.Errorf("Intentional sync execution error for testing")
			},
		},
		{
			Name: "TestAsyncValidationError", DisplayName: "Test Async Validation Error", Category: cat,
			Required: []nodes.Input{floatIn("value", 5.0, nil, nil), floatIn("max_value", 10.0, nil, nil)},
			Outputs:  outs(nodes.TypeImage),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Out(scale(full(1, 1, 512, 512, 3), in.Float("value")/in.Float("max_value")))
			},
			Validate: &nodes.Validator{Inputs: []string{"value", "max_value"}, Func: func(ctx *nodes.Context, in nodes.Inputs, _ map[string]string) error {
				time.Sleep(50 * time.Millisecond)
				v, m := in.Float("value"), in.Float("max_value")
				if v > m {
					return fmt.Errorf("Async validation failed: %v > %v", v, m)
				}
				return nil
			}},
		},
		{
			Name: "TestAsyncTimeout", DisplayName: "Test Async Timeout", Category: cat, Async: true,
			Required: []nodes.Input{sock("value", "*"), floatIn("timeout", 1.0, 0.1, 10.0), floatIn("operation_time", 2.0, 0.1, 10.0)},
			Outputs:  outs("*"),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				op, to := in.Float("operation_time"), in.Float("timeout")
				if op > to {
					if err := sleepCtx(ctx, secs(to)); err != nil {
						return nodes.Result{}, err
					}
					return nodes.Result{}, fmt.Errorf("Operation timed out after %v seconds", to)
				}
				if err := sleepCtx(ctx, secs(op)); err != nil {
					return nodes.Result{}, err
				}
				return nodes.Out(in["value"])
			},
		},
		{
			Name: "TestAsyncLazyCheck", DisplayName: "Test Async Lazy Check", Category: cat,
			Required: []nodes.Input{{Name: "input1", Type: "*", Lazy: true}, {Name: "input2", Type: "*", Lazy: true},
				{Name: "condition", Type: nodes.TypeBoolean, Default: true}},
			Outputs: outs(nodes.TypeImage),
			CheckLazy: func(ctx *nodes.Context, in nodes.Inputs) ([]string, error) {
				if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
					return nil, err
				}
				var need []string
				if truthy(in["condition"]) && in["input1"] == nil {
					need = append(need, "input1")
				}
				if !truthy(in["condition"]) && in["input2"] == nil {
					need = append(need, "input2")
				}
				return need, nil
			},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Out(full(1, 1, 512, 512, 3))
			},
		},
		{
			Name: "TestDynamicAsyncGeneration", DisplayName: "Test Dynamic Async Generation", Category: cat,
			Required: []nodes.Input{sock("image1", nodes.TypeImage), sock("image2", nodes.TypeImage),
				intIn("num_async_nodes", 3, 1, 10), floatIn("sleep_duration", 0.2, 0.1, 1.0)},
			Outputs: outs(nodes.TypeImage),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				b := ctx.NewGraphBuilder()
				n := int(in.Int("num_async_nodes"))
				var sleeps []*nodes.BuilderNode
				for i := 0; i < n; i++ {
					img := in["image1"]
					if i%2 == 1 {
						img = in["image2"]
					}
					sleeps = append(sleeps, b.Node("TestSleep", "", "value", img, "seconds", in["sleep_duration"]))
				}
				out := sleeps[0].Out(0)
				if n > 1 {
					var kv []any
					for i, s := range sleeps {
						kv = append(kv, fmt.Sprintf("input%d", i+1), s.Out(0))
					}
					out = b.Node("TestVariadicAverage", "", kv...).Out(0)
				}
				return nodes.Result{Outputs: []any{out}, Expand: b.Finalize()}, nil
			},
		},
		{
			Name: "TestAsyncResourceUser", DisplayName: "Test Async Resource User", Category: cat, Async: true,
			Required: []nodes.Input{sock("value", "*"), {Name: "resource_id", Type: nodes.TypeString, Default: "resource_0"},
				floatIn("duration", 0.1, 0.0, 1.0)},
			Outputs: outs("*"),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				id := in.String("resource_id")
				busyMu.Lock()
				if busy[id] {
					busyMu.Unlock()
					return nodes.Result{}, fmt.Errorf("Resource %s is already in use!", id)
				}
				busy[id] = true
				busyMu.Unlock()
				defer func() { busyMu.Lock(); delete(busy, id); busyMu.Unlock() }()
				if err := sleepCtx(ctx, secs(in.Float("duration"))); err != nil {
					return nodes.Result{}, err
				}
				return nodes.Out(in["value"])
			},
		},
		{
			Name: "TestAsyncConcurrentLimit", DisplayName: "Test Async Concurrent Limit", Category: cat, Async: true,
			Required: []nodes.Input{sock("value", "*"), floatIn("duration", 0.5, 0.1, 2.0), intIn("node_id", 0, nil, nil)},
			Outputs:  outs("*"),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				select {
				case limit <- struct{}{}:
				case <-ctx.Done():
					return nodes.Result{}, ctx.Err()
				}
				defer func() { <-limit }()
				if err := sleepCtx(ctx, secs(in.Float("duration"))); err != nil {
					return nodes.Result{}, err
				}
				return nodes.Out(in["value"])
			},
		},
		{
			Name: "TestAsyncProgressUpdate", DisplayName: "Async Progress Update Test Node", Category: cat, Async: true,
			Required: []nodes.Input{sock("value", "*"), floatIn("sleep_seconds", 1.0, nil, nil)},
			Outputs:  outs("*"),
			Execute:  progressLoop,
		},
		{
			Name: "TestSyncProgressUpdate", DisplayName: "Sync Progress Update Test Node", Category: cat,
			Required: []nodes.Input{sock("value", "*"), floatIn("sleep_seconds", 1.0, nil, nil)},
			Outputs:  outs("*"),
			Execute:  progressLoop,
		},
		{
			Name: "TestAsyncBatchProcessing", DisplayName: "Test Async Batch Processing", Category: cat, Async: true,
			Required: []nodes.Input{sock("images", nodes.TypeImage), floatIn("process_time_per_item", 0.1, 0.01, 1.0)},
			Hidden:   []nodes.Hidden{{Name: "unique_id", Marker: "UNIQUE_ID"}},
			Outputs:  outs(nodes.TypeImage),
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				img := in.Tensor("images")
				if img == nil {
					return nodes.Result{}, fmt.Errorf("images is not an image")
				}
				out := tensor.New(img.Shape...)
				b := img.Shape[0]
				per := len(img.Data) / max(b, 1)
				for i := 0; i < b; i++ {
					if err := sleepCtx(ctx, secs(in.Float("process_time_per_item"))); err != nil {
						return nodes.Result{}, err
					}
					for j := i * per; j < (i+1)*per; j++ {
						out.Data[j] = 1 - img.Data[j]
					}
					if err := ctx.Progress(float64(i+1), float64(b), nil); err != nil {
						return nodes.Result{}, err
					}
				}
				return nodes.Out(out)
			},
		},
	}
}
