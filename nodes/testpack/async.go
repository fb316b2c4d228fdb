package testpack

import (
	"fmt"
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

// asyncDefs are async_test_nodes.py's nodes that test_execution-style tests use.
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
