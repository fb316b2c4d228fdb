package web

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"strings"
	"time"

	"github.com/comfygo/comfygo/graph"
)

// Engine is what the server needs from the executor. ExecutorEngine adapts *executor.Executor.
type Engine interface {
	// Validate checks a prompt at POST time.
	Validate(p *graph.Prompt, partialTargets []string) Validation
	// Execute runs one queued prompt, reporting events to sink, and returns its history parts.
	Execute(ctx context.Context, job Job, sink Sink) RunResult
	// Interrupt stops the running prompt promptID ("" = whatever runs).
	Interrupt(promptID string)
	// Free unloads models and/or drops the execution cache (between prompts).
	Free(unloadModels, freeMemory bool)
}

// Validation is the outcome of Validate. Error nil means the prompt is queued with Outputs;
// NodeErrors may be non-empty either way (ComfyUI's node_errors object).
type Validation struct {
	Outputs    []string
	Error      any // {"type","message","details","extra_info"}
	NodeErrors any
}

// Job is one prompt to execute.
type Job struct {
	PromptID  string
	Number    float64
	Prompt    *graph.Prompt
	ExtraData map[string]any // client keys, client_id, create_time and the sensitive keys
	Outputs   []string
	ClientID  string
}

// RunResult is what a run adds to history: the UI outputs, meta and status objects.
type RunResult struct {
	Outputs any // {node_id: ui}
	Meta    any // {node_id: meta}
	Status  any // {"status_str","completed","messages"}
	// Interrupted tells the run ended by an interrupt (so a shutdown can requeue it).
	Interrupted bool
}

// Sink receives a run's events. clientID "" means every websocket client.
type Sink interface {
	Event(name string, data any, clientID string)
	// Preview sends a preview image (JPEG, or PNG when png is set) with its type-4 metadata.
	Preview(img image.Image, png bool, meta map[string]any, clientID string)
	// Image sends a full-size PNG image (SaveImageWebsocket) framed like a preview.
	Image(img image.Image, meta map[string]any, clientID string)
	// Text sends a progress-text frame (binary type 3) for node nodeID.
	Text(nodeID, text, clientID string)
}

type hubSink struct{ h *Hub }

func (s hubSink) Event(name string, data any, clientID string) { s.h.Send(name, data, clientID) }
func (s hubSink) Preview(img image.Image, png bool, meta map[string]any, clientID string) {
	s.h.Preview(img, png, meta, clientID)
}
func (s hubSink) Image(img image.Image, meta map[string]any, clientID string) {
	s.h.Image(img, meta, clientID)
}
func (s hubSink) Text(nodeID, text, clientID string) { s.h.TextTo(nodeID, text, clientID) }

// worker runs queued prompts one at a time until ctx ends.
func (s *Server) worker(ctx context.Context) {
	defer s.workerWG.Done()
	for ctx.Err() == nil {
		s.applyFree()
		it, sens := s.q.pop(ctx)
		if it == nil {
			continue
		}
		s.broadcastStatus()
		s.hub.SetBusy(true)
		s.run(ctx, it, sens)
		s.hub.SetBusy(false)
	}
}

func (s *Server) applyFree() {
	s.freeMu.Lock()
	unload, free := s.freeUnload, s.freeMemory
	s.freeUnload, s.freeMemory = false, false
	s.freeMu.Unlock()
	if unload || free {
		s.engine.Free(unload, free)
	}
}

func (s *Server) run(ctx context.Context, it *storedItem, sens map[string]any) {
	var res RunResult
	extra := map[string]any{}
	dec := json.NewDecoder(strings.NewReader(string(it.Extra)))
	dec.UseNumber()
	_ = dec.Decode(&extra)
	clientID, _ := extra["client_id"].(string)
	prompt, err := it.parsed, error(nil)
	it.parsed = nil
	if prompt == nil { // restored from the database: parse and validate again
		prompt, err = graph.ParsePrompt(it.Prompt)
		if err == nil {
			if v := s.engine.Validate(prompt, nil); v.Error != nil {
				b, _ := json.Marshal(v.Error)
				err = fmt.Errorf("prompt no longer valid: %s", b)
			}
		}
	}
	if err != nil {
		res = failedResult(it.PromptID, "invalid stored prompt: "+err.Error())
	} else {
		for k, v := range sens {
			extra[k] = v
		}
		res = s.runSafely(ctx, Job{PromptID: it.PromptID, Number: it.Number, Prompt: prompt,
			ExtraData: extra, Outputs: it.Outputs, ClientID: clientID})
	}
	if ctx.Err() != nil && res.Interrupted {
		s.q.requeue(it) // stopped by shutdown: run again at the next start
		return
	}
	s.hub.SetBusy(false) // no keepalive may repeat the running prompt's status after this
	entry := historyEntryJSON(it, orEmpty(res.Outputs), res.Status, orEmpty(res.Meta))
	if err := s.q.finish(it, entry); err != nil {
		s.log.Error("store history", "prompt_id", it.PromptID, "err", err)
	}
	s.broadcastStatus()
	if clientID != "" {
		s.hub.Send("executing", map[string]any{"node": nil, "prompt_id": it.PromptID}, clientID)
	}
}

// runSafely runs the engine, turning a panic into an error result.
func (s *Server) runSafely(ctx context.Context, job Job) (res RunResult) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("executor panic", "prompt_id", job.PromptID, "panic", v)
			res = failedResult(job.PromptID, fmt.Sprint("executor panic: ", v))
		}
	}()
	return s.engine.Execute(ctx, job, hubSink{s.hub})
}

func failedResult(promptID, msg string) RunResult {
	data := map[string]any{"prompt_id": promptID, "node_id": nil, "node_type": nil, "executed": []string{},
		"exception_message": msg + "\n", "exception_type": "comfygo.ServerError", "traceback": []string{},
		"current_inputs": map[string]any{}, "current_outputs": []string{}, "timestamp": time.Now().UnixMilli()}
	return RunResult{Outputs: map[string]any{}, Meta: map[string]any{}, Status: map[string]any{
		"status_str": "error", "completed": false,
		"messages": []any{[]any{"execution_error", json.RawMessage(orderedData("execution_error", data))}}}}
}
