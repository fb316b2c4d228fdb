package web

import (
	"context"
	"image"

	"github.com/comfygo/comfygo/executor"
	"github.com/comfygo/comfygo/graph"
)

// executorEngine adapts *executor.Executor to Engine.
type executorEngine struct{ ex *executor.Executor }

// ExecutorEngine returns the Engine that runs prompts on ex.
func ExecutorEngine(ex *executor.Executor) Engine { return executorEngine{ex} }

func (e executorEngine) Validate(p *graph.Prompt, targets []string) Validation {
	outputs, nodeErrors, verr := e.ex.Validate(p, targets)
	if verr != nil {
		ne := any(verr.NodeErrors)
		if verr.NodeErrors == nil {
			ne = map[string]any{}
		}
		return Validation{Error: verr.Info, NodeErrors: ne}
	}
	var ne any = map[string]any{}
	if len(nodeErrors) > 0 {
		ne = nodeErrors
	}
	return Validation{Outputs: outputs, NodeErrors: ne}
}

func (e executorEngine) Execute(ctx context.Context, job Job, sink Sink) RunResult {
	h := e.ex.Execute(ctx, executor.Job{PromptID: job.PromptID, Number: int(job.Number), Prompt: job.Prompt,
		ExtraData: job.ExtraData, Outputs: job.Outputs, ClientID: job.ClientID}, execSink{sink})
	if h == nil {
		return failedResult(job.PromptID, "the executor returned no result")
	}
	res := RunResult{Outputs: h.Outputs, Meta: h.Meta, Status: h.Status}
	if h.Outputs == nil {
		res.Outputs = map[string]any{}
	}
	if h.Meta == nil {
		res.Meta = map[string]any{}
	}
	for _, m := range h.Status.Messages {
		if m.Event == "execution_interrupted" {
			res.Interrupted = true
		}
	}
	return res
}

func (e executorEngine) Interrupt(promptID string)          { e.ex.Interrupt(promptID) }
func (e executorEngine) Free(unloadModels, freeMemory bool) { e.ex.Free(unloadModels, freeMemory) }

// execSink adapts a Sink to executor.Sink.
type execSink struct{ s Sink }

func (s execSink) Event(name string, data any, clientID string) { s.s.Event(name, data, clientID) }
func (s execSink) Preview(clientID string, meta executor.PreviewMeta, img image.Image) {
	s.s.Preview(img, false, metaMap(meta), clientID)
}

// Image implements executor.ImageSink (SaveImageWebsocket's full-size PNGs).
func (s execSink) Image(clientID string, meta executor.PreviewMeta, img image.Image) {
	s.s.Image(img, metaMap(meta), clientID)
}

// ProgressText implements executor.TextSink.
func (s execSink) ProgressText(clientID, nodeID, text string) { s.s.Text(nodeID, text, clientID) }

func metaMap(meta executor.PreviewMeta) map[string]any {
	return map[string]any{"node_id": meta.NodeID, "prompt_id": meta.PromptID,
		"display_node_id": meta.DisplayNodeID, "parent_node_id": meta.ParentNodeID, "real_node_id": meta.RealNodeID}
}
