// Package executor validates and runs API prompts with ComfyUI's semantics (see
// /work/shared/spec/execution.md): validation errors with ComfyUI's exact shapes, execution of
// only what the outputs need, lazy inputs, list mapping, execution blockers, node expansion,
// async nodes, interrupts, content-addressed output caching (classic, LRU, none) and ComfyUI's
// websocket events.
//
// API:
//
//	ex := executor.New(executor.Config{Cache: executor.CacheClassic, Env: env})
//	outputs, nodeErrors, verr := ex.Validate(prompt, partialTargets)
//	    // verr != nil → HTTP 400 with json.Marshal(verr) ({"error", "node_errors"});
//	    // else 200 with nodeErrors (outputs that failed and were dropped).
//	    // partialTargets: nil when the request has none; an empty non-nil slice fails.
//	hist := ex.Execute(ctx, executor.Job{PromptID, Number, Prompt, ExtraData, Outputs, ClientID}, sink)
//	    // hist.Outputs / hist.Meta / hist.Status are the history entry's parts.
//	ex.Interrupt(promptID) // "" = whatever runs; cancelling ctx interrupts too
//	ex.Free(unloadModels, freeMemory)
//	executor.NoPromptError() // the 400 body for a POST /prompt without "prompt"
//
// Validate mutates the prompt (coerced constants, unwrapped {"__value__": ...}); run that
// mutated prompt. Validate may run concurrently with Execute; Execute calls are serialised
// (the server's single worker calls it).
//
// Events go through Sink with ComfyUI's routing already applied: Event's clientID is the
// prompt's client id, or "" meaning broadcast to every socket. Events ComfyUI sends only to a
// client (execution_start, execution_cached, executing, executed, execution_success,
// execution_error) are not emitted at all when the job has no client id; progress,
// progress_state, previews, execution_interrupted and the non-fatal "Execution Blocked"
// execution_error are broadcast then. Payloads are the exported event types of events.go
// (ExecutionStart, ExecutionCached, Executing, Executed, Progress, ProgressState,
// ExecutionSuccess, ExecutionError, ExecutionInterrupted). Full-size images of
// nodes.Context.SendImage (SaveImageWebsocket) go to ImageSink.Image and progress text
// (nodes.Context.ProgressText, always broadcast) to TextSink.ProgressText when the Sink
// implements those optional interfaces. The end-of-prompt
// `executing {"node": null, "prompt_id"}` is NOT emitted here: the server sends it after
// storing the History (ComfyUI's order).
//
// progress_state: ComfyUI resends every started node's state on each update (quadratic in the
// node count). The frontend replaces its per-prompt map with each message's nodes and only
// uses running states for display, so comfygo sends the running nodes plus the node whose
// state just changed (linear). Each message therefore carries the transition (running or
// finished) of the node it is about.
//
// Hidden inputs receive: UNIQUE_ID the node id (string), PROMPT the submitted *graph.Prompt
// (an empty one during validation), DYNPROMPT a nodes.DynPrompt (nil during validation and
// IS_CHANGED), EXTRA_PNGINFO extra_data["extra_pnginfo"], AUTH_TOKEN_COMFY_ORG /
// API_KEY_COMFY_ORG the same-named extra_data values.
//
// Deliberate differences from ComfyUI: cache keys are Merkle hashes (a node's key hashes its
// immediate signature with its sources' keys), so two distinct but identical source nodes feeding
// one node count as the same input (ComfyUI's ancestor-indexed signature tells them apart;
// their outputs are identical anyway); IS_CHANGED values are not written back into the prompt;
// a dependency cycle found while staging is recorded as an error in history (ComfyUI records
// "success"); static cycles fail validation with "Dependency cycle detected" instead of a
// recursion error; cached output UI is recorded in history even without a client id; node
// instances are not cached (Go nodes are stateless Defs).
package executor

import (
	"context"
	"encoding/json"
	"hash/maphash"
	"image"
	"sync"
	"time"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/nodes"
)

// CacheMode selects the output cache (ComfyUI's --cache-classic, --cache-lru N, --cache-none).
type CacheMode int

const (
	// CacheClassic keeps only the results the newest prompt re-uses (content-addressed).
	CacheClassic CacheMode = iota
	// CacheLRU keeps up to Config.LRUSize results across prompts (--cache-lru N; N=0 is classic).
	CacheLRU
	// CacheNone caches nothing: every prompt runs every needed node.
	CacheNone
)

// Config configures an Executor.
type Config struct {
	Cache   CacheMode
	LRUSize int
	Env     *nodes.Env
	// Lookup resolves class_type to a node type; nil uses the global registry (nodes.Lookup).
	Lookup func(classType string) (*nodes.Def, bool)
	// Now returns the current time (timestamps); nil uses time.Now.
	Now func() time.Time
}

// Sink receives every event of a prompt run. clientID "" means broadcast.
type Sink interface {
	// Event is one websocket JSON message {"type": name, "data": data}.
	Event(name string, data any, clientID string)
	// Preview is a latent preview image of a running node (binary frame type 1 or 4).
	Preview(clientID string, meta PreviewMeta, img image.Image)
}

// ImageSink is an optional Sink extension for full-size images (nodes.Context.SendImage, i.e.
// SaveImageWebsocket): PNG, not downscaled, routed like previews. A Sink without it receives
// them through Preview.
type ImageSink interface {
	Image(clientID string, meta PreviewMeta, img image.Image)
}

// TextSink is an optional Sink extension for progress text (nodes.Context.ProgressText; binary
// frame type 3). ComfyUI broadcasts it, so clientID is always "". A Sink without it drops text.
type TextSink interface {
	ProgressText(clientID, nodeID, text string)
}

// PreviewMeta is the metadata of a preview frame (binary event 4).
type PreviewMeta struct {
	NodeID        string `json:"node_id"`
	PromptID      string `json:"prompt_id"`
	DisplayNodeID string `json:"display_node_id"`
	ParentNodeID  any    `json:"parent_node_id"` // string or nil
	RealNodeID    string `json:"real_node_id"`
}

// Job is one queued prompt to run.
type Job struct {
	PromptID  string
	Number    int
	Prompt    *graph.Prompt // validated (and so mutated) prompt
	ExtraData map[string]any
	Outputs   []string // good outputs returned by Validate
	ClientID  string
}

// History is the result of a run: the parts of ComfyUI's history entry the executor produces.
type History struct {
	Outputs *nodes.OrderedMap `json:"outputs"` // node id -> UI dict
	Meta    *nodes.OrderedMap `json:"meta"`    // node id -> {node_id, display_node, parent_node, real_node_id}
	Status  Status            `json:"status"`
}

// Status is a history entry's status.
type Status struct {
	StatusStr string    `json:"status_str"` // "success" or "error"
	Completed bool      `json:"completed"`
	Messages  []Message `json:"messages"`
}

// Message is one status message; it marshals as [event, data].
type Message struct {
	Event string
	Data  any
}

// MarshalJSON writes [event, data].
func (m Message) MarshalJSON() ([]byte, error) { return json.Marshal([]any{m.Event, m.Data}) }

// Executor runs prompts and owns the cross-prompt output cache.
type Executor struct {
	cfg    Config
	lookup func(string) (*nodes.Def, bool)
	now    func() time.Time

	runMu sync.Mutex // one Execute at a time

	mu      sync.Mutex // guards the fields below
	running string     // prompt id being executed
	cancel  context.CancelCauseFunc

	cache outputCache
	nonce nonceSource
	seeds [2]maphash.Seed

	freePending bool // a free_memory request arrived while a prompt ran

	scratch indexScratch // per-run index storage, re-used (guarded by runMu)
}

// New returns an Executor.
func New(cfg Config) *Executor {
	e := &Executor{cfg: cfg, lookup: cfg.Lookup, now: cfg.Now}
	if e.lookup == nil {
		e.lookup = nodes.Lookup
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.cfg.Env == nil {
		e.cfg.Env = &nodes.Env{}
	}
	e.cache = newOutputCache(cfg.Cache, cfg.LRUSize)
	e.seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}
	return e
}

// Interrupt stops the running prompt if its id is promptID ("" = whatever runs). It reports
// whether a prompt was interrupted. Like ComfyUI, an interrupt sent while idle is dropped.
func (e *Executor) Interrupt(promptID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cancel == nil || (promptID != "" && promptID != e.running) {
		return false
	}
	e.cancel(errInterrupted)
	return true
}

// Running returns the id of the prompt being executed ("" when idle).
func (e *Executor) Running() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.running
}

// Free is POST /free: freeMemory drops every cached result (after the running prompt, if
// any); unloadModels calls UnloadAll on every Env service that has one (nodes.Env.UnloadAll).
func (e *Executor) Free(unloadModels, freeMemory bool) {
	if freeMemory {
		if e.runMu.TryLock() {
			e.cache = newOutputCache(e.cfg.Cache, e.cfg.LRUSize)
			e.runMu.Unlock()
		} else {
			e.mu.Lock()
			e.freePending = true // applied when the running prompt ends
			e.mu.Unlock()
		}
	}
	if unloadModels && e.cfg.Env != nil {
		e.cfg.Env.UnloadAll()
	}
}

// CacheSize is the number of results held by the output cache (for tests and /free checks).
func (e *Executor) CacheSize() int {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	return e.cache.size()
}
