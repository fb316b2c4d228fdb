package executor

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"reflect"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/nodes"
)

var (
	errInterrupted = errors.New("interrupted")
	errNoService   = errors.New("no such service")
)

// run is the state of one Execute call: ComfyUI's PromptExecutor.execute locals, the
// DynamicPrompt and the progress registry.
type run struct {
	e        *Executor
	lookup   func(string) (*nodes.Def, bool) // memoised registry lookups
	ctx      context.Context
	job      Job
	sink     Sink
	clientID string
	orig     *graph.Prompt

	eph      map[string]*graph.Node
	ephOrder []string
	parents  map[string]string
	display  map[string]string

	pos    map[string]int32 // submitted node id -> position (index.go)
	pn     []pnode
	plinks []int32
	pvals  []any               // input values of submitted nodes, parallel to plinks
	keys   map[string]cacheKey // keys of ephemeral nodes (submitted ones are in pn)
	kh     *keyHasher
	touch  bool // write values back into the cache when read (LRU freshness)
	ordBuf []int32

	list            *execList
	executed        []string
	uiOrder         []string
	ui              map[string]*uiRecord
	pendingSubgraph map[string][]subResult
	pendingAsync    map[string]*asyncState
	asyncDone       chan string
	asyncInFlight   int
	expandGraphs    []*graph.Prompt
	currentOutputs  []string
	messages        []Message

	emitMu   sync.Mutex   // sink, progress registry (async nodes report from goroutines)
	dynMu    sync.RWMutex // eph/parents/display: written by the loop, read by async nodes
	progress map[string]*NodeState
	running  []string // ids whose progress state is "running", in start order
}

// subResult is one call's outcome kept across an expansion: its result tuple, which holds
// links into the expanded graph when isSub.
type subResult struct {
	isSub  bool
	result []any
}

// asyncState holds the calls of an Async node in flight.
type asyncState struct {
	results []any // per call: nodes.Result or *nodes.Blocker
	errs    []error
	inputs  *argMap
}

// ---- DynPrompt ----

// Node implements nodes.DynPrompt (safe from async nodes' goroutines).
func (r *run) Node(id string) (*graph.Node, bool) {
	r.dynMu.RLock()
	defer r.dynMu.RUnlock()
	return r.node(id)
}

// node is Node for the executor's own goroutine.
func (r *run) node(id string) (*graph.Node, bool) {
	if len(r.eph) > 0 {
		if n, ok := r.eph[id]; ok {
			return n, true
		}
	}
	n, ok := r.orig.Nodes[id]
	return n, ok
}

// RealID implements nodes.DynPrompt.
func (r *run) RealID(id string) string {
	r.dynMu.RLock()
	defer r.dynMu.RUnlock()
	return r.realID(id)
}

func (r *run) realID(id string) string {
	for {
		p, ok := r.parents[id]
		if !ok {
			return id
		}
		id = p
	}
}

// ParentID implements nodes.DynPrompt.
func (r *run) ParentID(id string) string {
	r.dynMu.RLock()
	defer r.dynMu.RUnlock()
	return r.parents[id]
}

// DisplayID implements nodes.DynPrompt.
func (r *run) DisplayID(id string) string {
	r.dynMu.RLock()
	defer r.dynMu.RUnlock()
	return r.displayID(id)
}

func (r *run) displayID(id string) string {
	for i := 0; i < 1<<20; i++ {
		d, ok := r.display[id]
		if !ok || d == id {
			return id
		}
		id = d
	}
	return id
}

// Original implements nodes.DynPrompt.
func (r *run) Original() *graph.Prompt { return r.orig }

// NodeIDs implements nodes.DynPrompt.
func (r *run) NodeIDs() []string {
	r.dynMu.RLock()
	defer r.dynMu.RUnlock()
	out := append([]string(nil), r.orig.IDs...)
	return append(out, r.ephOrder...)
}

func (r *run) addEphemeral(id string, n *graph.Node, parent, display string) {
	r.dynMu.Lock()
	defer r.dynMu.Unlock()
	if _, ok := r.eph[id]; !ok {
		r.ephOrder = append(r.ephOrder, id)
	}
	if j, ok := r.pos[id]; ok {
		r.pn[j].shadowed = true
	}
	r.eph[id] = n
	r.parents[id] = parent
	r.display[id] = display
}

// ---- keyView ----

func (r *run) key(id string) (cacheKey, bool) {
	if len(r.keys) > 0 {
		if k, ok := r.keys[id]; ok {
			return k, true
		}
	}
	if j, ok := r.origIdx(id); ok && r.pn[j].keyed {
		return r.pn[j].key, true
	}
	return cacheKey{}, false
}

func (r *run) parent(id string) string { return r.parents[id] }

func (r *run) classType(id string) string {
	if n, ok := r.node(id); ok {
		return n.ClassType
	}
	return ""
}

// ---- emitting ----

func (r *run) nowMS() int64 { return r.e.now().UnixMilli() }

// emitClient sends an event ComfyUI sends only to the prompt's client.
func (r *run) emitClient(name string, data any) {
	if r.clientID == "" {
		return
	}
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	r.sink.Event(name, data, r.clientID)
}

// emitAny sends an event to the client, or to everyone without one.
func (r *run) emitAny(name string, data any) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	r.sink.Event(name, data, r.clientID)
}

// addMessage records a status message and emits it (broadcast: also without a client).
func (r *run) addMessage(name string, data any, broadcast bool) {
	r.messages = append(r.messages, Message{Event: name, Data: data})
	if broadcast {
		r.emitAny(name, data)
	} else {
		r.emitClient(name, data)
	}
}

// ---- progress registry ----

func (r *run) nodeState(id string) *NodeState {
	s := r.progress[id]
	if s == nil {
		var parent *string
		if p := r.parents[id]; p != "" {
			parent = &p
		}
		s = &NodeState{Max: 1, State: "pending", NodeID: id, PromptID: r.job.PromptID,
			DisplayNodeID: r.DisplayID(id), ParentNodeID: parent, RealNodeID: r.RealID(id)}
		r.progress[id] = s
	}
	return s
}

func (r *run) setRunning(id string, on bool) {
	for i, x := range r.running {
		if x == id {
			if !on {
				r.running = append(r.running[:i:i], r.running[i+1:]...)
			}
			return
		}
	}
	if on {
		r.running = append(r.running, id)
	}
}

// sendProgressState sends the running nodes plus changed (see the package doc). Caller holds
// emitMu.
func (r *run) sendProgressState(changed string) {
	m := make(NodeStates, 0, len(r.running)+1)
	found := false
	for _, id := range r.running {
		m = append(m, *r.progress[id])
		found = found || id == changed
	}
	if !found {
		m = append(m, *r.progress[changed])
	}
	r.sink.Event("progress_state", ProgressState{PromptID: r.job.PromptID, Nodes: m}, r.clientID)
}

func (r *run) startProgress(id string) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	s := r.nodeState(id)
	s.State, s.Value, s.Max = "running", 0, 1
	r.setRunning(id, true)
	r.sendProgressState(id)
}

func (r *run) finishProgress(id string) {
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	s := r.nodeState(id)
	s.State = "finished"
	s.Value = s.Max
	r.setRunning(id, false)
	r.sendProgressState(id)
}

// Progress implements nodes.Reporter.
func (r *run) Progress(nodeID string, value, max float64, preview image.Image) {
	r.report(nodeID, value, max, preview, false)
}

// ProgressImage implements nodes.ImageReporter: progress with a full-size PNG image.
func (r *run) ProgressImage(nodeID string, value, max float64, img image.Image) {
	r.report(nodeID, value, max, img, true)
}

// ProgressText implements nodes.TextReporter (always broadcast, as ComfyUI does).
func (r *run) ProgressText(nodeID, text string) {
	if ts, ok := r.sink.(TextSink); ok {
		r.emitMu.Lock()
		ts.ProgressText("", nodeID, text)
		r.emitMu.Unlock()
	}
}

func (r *run) report(nodeID string, value, max float64, preview image.Image, full bool) {
	if value > max {
		value = max
	}
	r.emitMu.Lock()
	s := r.nodeState(nodeID)
	s.State, s.Value, s.Max = "running", value, max
	r.setRunning(nodeID, true)
	r.sendProgressState(nodeID)
	display := r.DisplayID(nodeID)
	if preview != nil {
		var parent any
		if p := r.parents[nodeID]; p != "" {
			parent = p
		}
		meta := PreviewMeta{NodeID: nodeID, PromptID: r.job.PromptID, DisplayNodeID: display,
			ParentNodeID: parent, RealNodeID: r.RealID(nodeID)}
		if is, ok := r.sink.(ImageSink); ok && full {
			is.Image(r.clientID, meta, preview)
		} else {
			r.sink.Preview(r.clientID, meta, preview)
		}
	}
	r.sink.Event("progress", Progress{Value: value, Max: max, PromptID: r.job.PromptID, Node: display}, r.clientID)
	r.emitMu.Unlock()
}

// ---- Execute ----

// Execute runs job (whose prompt Validate accepted) and returns its history entry parts.
// Cancelling ctx interrupts it like Interrupt.
func (e *Executor) Execute(ctx context.Context, job Job, sink Sink) *History {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	e.mu.Lock()
	e.running, e.cancel = job.PromptID, cancel
	if e.freePending { // a free_memory that raced with the end of the previous prompt
		e.freePending = false
		e.cache = newOutputCache(e.cfg.Cache, e.cfg.LRUSize)
	}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.running, e.cancel = "", nil
		if e.freePending {
			e.freePending = false
			e.cache = newOutputCache(e.cfg.Cache, e.cfg.LRUSize)
		}
		e.mu.Unlock()
	}()

	r := &run{e: e, lookup: newDefCache(e.lookup), ctx: pctx, job: job, sink: sink, clientID: job.ClientID, orig: job.Prompt,
		eph: map[string]*graph.Node{}, parents: map[string]string{}, display: map[string]string{},
		keys: map[string]cacheKey{}, kh: newKeyHasher(&e.nonce, &e.seeds), ui: map[string]*uiRecord{},
		pendingSubgraph: map[string][]subResult{}, pendingAsync: map[string]*asyncState{},
		asyncDone: make(chan string, 16), progress: map[string]*NodeState{}}
	if r.orig == nil {
		r.orig = graph.NewPrompt()
	}
	_, r.touch = e.cache.(*lruCache)
	if r.clientID == "" && job.ExtraData != nil {
		if c, ok := job.ExtraData["client_id"].(string); ok {
			r.clientID = c
		}
	}
	ok := r.execute()
	r.waitAsync(cancel)
	defer r.releaseIndex()
	h := &History{Outputs: nodes.NewOrderedMap(), Meta: nodes.NewOrderedMap()}
	for _, id := range r.uiOrder {
		rec := r.ui[id]
		h.Outputs.Set(id, rec.output)
		h.Meta.Set(id, rec.meta)
	}
	h.Status = Status{StatusStr: "success", Completed: ok, Messages: r.messages}
	if !ok {
		h.Status.StatusStr = "error"
	}
	if h.Status.Messages == nil {
		h.Status.Messages = []Message{}
	}
	return h
}

// waitAsync lets async calls still running after a failure finish (they see the cancelled
// context) so nothing outlives Execute.
func (r *run) waitAsync(cancel context.CancelCauseFunc) {
	if r.asyncInFlight == 0 {
		return
	}
	cancel(errInterrupted)
	for r.asyncInFlight > 0 {
		<-r.asyncDone
		r.asyncInFlight--
	}
}

// execute is ComfyUI's execute_async body; it reports whether the prompt succeeded.
func (r *run) execute() bool {
	r.addMessage("execution_start", ExecutionStart{PromptID: r.job.PromptID, Timestamp: r.nowMS()}, false)

	r.indexPrompt(true)
	r.computeOrigKeys()
	nhits := 0
	r.e.cache.setPrompt(r, r.orig.IDs, func(i int) (cacheKey, bool) { return r.pn[i].key, r.pn[i].keyed },
		func(i int, e *entry) { r.pn[i].hit = e; nhits++ })
	cached := make([]string, 0, nhits)
	for i := range r.pn {
		if r.pn[i].hit != nil {
			cached = append(cached, r.pn[i].id)
		}
	}
	r.addMessage("execution_cached", ExecutionCached{Nodes: cached, PromptID: r.job.PromptID, Timestamp: r.nowMS()}, false)

	r.list = newExecList(r)
	if r.e.cache.enabled() {
		r.currentOutputs = r.orig.IDs // read-only; copied into an error report
	} else {
		r.currentOutputs = []string{}
	}
	for _, o := range r.job.Outputs {
		if err := r.list.addNode(o, false, nil); err != nil {
			r.reportFailure(&nodeFailure{nodeID: o, msg: err.Error(), typ: "NodeNotFoundError", inputs: map[string]any{}})
			return false
		}
	}
	for !r.list.isEmpty() {
		id, cycle := r.stage()
		if id == "" {
			blamed := cycle[0]
			for _, c := range cycle {
				if d := r.displayID(c); d != c {
					blamed = d
					break
				}
			}
			r.reportFailure(&nodeFailure{nodeID: blamed, msg: "Dependency cycle detected",
				typ: "graph.DependencyCycleError", inputs: []any{}})
			return false
		}
		st, fail := r.executeNode(id)
		switch st {
		case stFailure:
			r.reportFailure(fail)
			return false
		case stPending:
			r.list.staged = ""
		case stSuccess:
			r.list.complete(id)
		}
	}
	r.addMessage("execution_success", ExecutionSuccess{PromptID: r.job.PromptID, Timestamp: r.nowMS()}, false)
	return true
}

// stage picks the next node, waiting for async work when nothing else is ready. An empty id
// means a dependency cycle (the nodes in or behind it are returned).
func (r *run) stage() (string, []string) {
	for {
		select {
		case id := <-r.asyncDone:
			r.asyncInFlight--
			r.list.unblock(id)
			continue
		default:
		}
		if id := r.list.pickReady(); id != "" {
			r.list.staged = id
			return id, nil
		}
		if r.list.externalBlocks > 0 {
			id := <-r.asyncDone
			r.asyncInFlight--
			r.list.unblock(id)
			continue
		}
		return "", r.list.cycleNodes()
	}
}

type status int

const (
	stSuccess status = iota
	stPending
	stFailure
)

// nodeFailure is ComfyUI's error_details plus whether it was an interrupt.
type nodeFailure struct {
	nodeID      string // real id (or the blamed id of a cycle)
	msg         string
	typ         string
	traceback   []string
	inputs      any
	interrupted bool
}

func (r *run) reportFailure(f *nodeFailure) {
	nodeType := ""
	if n, ok := r.orig.Nodes[f.nodeID]; ok {
		nodeType = n.ClassType
	} else if n, ok := r.node(f.nodeID); ok {
		nodeType = n.ClassType
	}
	executed := append([]string{}, r.executed...)
	if f.interrupted {
		r.addMessage("execution_interrupted", ExecutionInterrupted{PromptID: r.job.PromptID, NodeID: f.nodeID,
			NodeType: nodeType, Executed: executed, Timestamp: r.nowMS()}, true)
		return
	}
	tb := f.traceback
	if tb == nil {
		tb = []string{}
	}
	r.addMessage("execution_error", ExecutionError{PromptID: r.job.PromptID, NodeID: f.nodeID, NodeType: nodeType,
		Executed: executed, ExceptionMessage: f.msg, ExceptionType: f.typ, Traceback: tb,
		CurrentInputs: f.inputs, CurrentOutputs: append([]string{}, r.currentOutputs...), Timestamp: r.nowMS()}, false)
}

// ---- keys ----

// computeKeys computes the cache keys of a batch of ephemeral nodes (an expansion; they
// replace old keys of the same ids) and their fingerprints, i.e. IsChanged, iteratively. The
// submitted prompt's keys are computeOrigKeys'.
func (r *run) computeKeys(ids []string) {
	inSet := make(map[string]bool, len(ids))
	for _, id := range ids {
		inSet[id] = true
		delete(r.keys, id)
	}
	member := func(id string) bool { return inSet[id] }
	keyed := func(id string) bool {
		if inSet[id] { // only this batch's new keys count (not a replaced node's)
			_, ok := r.keys[id]
			return ok
		}
		_, ok := r.key(id)
		return ok
	}
	// depsDone: every link source is keyed, or is not part of this batch (missing → nonce).
	depsDone := func(node *graph.Node) bool {
		for _, k := range node.Inputs.Keys {
			if l, ok := asLink(node.Inputs.Values[k]); ok {
				if !keyed(l.NodeID) && member(l.NodeID) {
					return false
				}
			}
		}
		return true
	}
	type frame struct {
		id       string
		expanded bool
	}
	var stack []frame
	var visiting map[string]bool
	for _, root := range ids {
		if _, ok := r.keys[root]; ok {
			continue
		}
		node, _ := r.node(root)
		if depsDone(node) { // the common case: sources come first
			r.keys[root] = r.immediateKey(root, node, nil, nil)
			continue
		}
		if visiting == nil {
			visiting = map[string]bool{}
		}
		stack = append(stack[:0], frame{root, false})
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			id := f.id
			if !f.expanded {
				if _, ok := r.keys[id]; ok {
					stack = stack[:len(stack)-1]
					continue
				}
				f.expanded = true
				visiting[id] = true
				node, _ := r.node(id)
				for _, k := range node.Inputs.Keys {
					if l, ok := asLink(node.Inputs.Values[k]); ok {
						if !keyed(l.NodeID) && !visiting[l.NodeID] && member(l.NodeID) {
							stack = append(stack, frame{l.NodeID, false})
						}
					}
				}
				continue
			}
			stack = stack[:len(stack)-1]
			node, _ := r.node(id)
			r.keys[id] = r.immediateKey(id, node, nil, nil)
			delete(visiting, id)
		}
	}
}

func needsID(d *nodes.Def) bool {
	if d.NotIdempotent {
		return true
	}
	for _, h := range d.Hidden {
		if h.Marker == "UNIQUE_ID" {
			return true
		}
	}
	return false
}

// fingerprint is IS_CHANGED's value for the node (false without IsChanged; NaN on error).
func (r *run) fingerprint(id string, node *graph.Node, d *nodes.Def) any {
	if node.HasIsChanged {
		return node.IsChanged
	}
	if d == nil || d.IsChanged == nil {
		return false
	}
	args, _ := r.inputData(id, node, d, false)
	results, err := r.mapNode(id, d, args, false, nil, func(ctx *nodes.Context, in nodes.Inputs) (any, error) {
		return d.IsChanged(ctx, in)
	})
	if err != nil {
		r.e.cfg.Env.Logger().Warn("IS_CHANGED failed", "node", id, "class_type", node.ClassType, "err", err)
		return math.NaN()
	}
	out := make([]any, len(results))
	for i, x := range results {
		if _, blocked := x.(*nodes.Blocker); blocked {
			out[i] = nil
		} else {
			out[i] = x
		}
	}
	return out
}

// ---- inputs ----

// argMap is the per-input lists of one node's call arguments, in input order.
type argMap struct {
	keys []string
	vals [][]any
}

// add appends input k (the caller knows it is new).
func (a *argMap) add(k string, v []any) {
	a.keys = append(a.keys, k)
	a.vals = append(a.vals, v)
}

func (a *argMap) set(k string, v []any) {
	for i, x := range a.keys {
		if x == k {
			a.vals[i] = v
			return
		}
	}
	a.keys = append(a.keys, k)
	a.vals = append(a.vals, v)
}

func (a *argMap) get(k string) ([]any, bool) {
	for i, x := range a.keys {
		if x == k {
			return a.vals[i], true
		}
	}
	return nil, false
}

// hiddenValue is what a hidden input with marker receives.
func hiddenValue(marker, id string, orig *graph.Prompt, dyn nodes.DynPrompt, extra map[string]any) (any, bool) {
	switch marker {
	case "UNIQUE_ID":
		return id, true
	case "PROMPT":
		if orig == nil {
			return graph.NewPrompt(), true
		}
		return orig, true
	case "DYNPROMPT":
		if dyn == nil {
			return nil, true
		}
		return dyn, true
	case "EXTRA_PNGINFO":
		return extra["extra_pnginfo"], true
	case "AUTH_TOKEN_COMFY_ORG", "API_KEY_COMFY_ORG":
		return extra[strings.ToLower(marker)], true
	}
	return nil, false
}

// inputData assembles a node's arguments (ComfyUI's get_input_data). Without exec (IS_CHANGED)
// every link is [nil].
func (r *run) inputData(id string, node *graph.Node, d *nodes.Def, exec bool) (*argMap, map[string]bool) {
	nk := len(node.Inputs.Keys) + len(d.Hidden)
	args := &argMap{keys: make([]string, 0, nk), vals: make([][]any, 0, nk)}
	// one backing array for the single-element lists of constants
	singles := make([]any, 0, nk)
	one := func(v any) []any {
		singles = append(singles, v)
		return singles[len(singles)-1 : len(singles) : len(singles)]
	}
	var missing map[string]bool
	for _, k := range node.Inputs.Keys {
		v := node.Inputs.Values[k]
		in, _, declared := d.Input(k)
		if link, ok := asLink(v); ok && !(declared && in.RawLink) {
			var ent *entry
			if exec {
				ent = r.list.getCache(link.NodeID, id)
			}
			if ent == nil || ent.outputs == nil || link.Slot >= len(ent.outputs) || link.Slot < 0 {
				args.add(k, one(nil))
				if missing == nil {
					missing = map[string]bool{}
				}
				missing[k] = true
				continue
			}
			args.add(k, ent.outputs[link.Slot])
			continue
		} else if ok {
			args.add(k, one(link)) // rawLink
			continue
		}
		if declared {
			args.add(k, one(normalize(v)))
		}
	}
	var dyn nodes.DynPrompt
	var orig *graph.Prompt
	if exec {
		dyn, orig = r, r.orig
	}
	for _, h := range d.Hidden {
		if hv, ok := hiddenValue(h.Marker, id, orig, dyn, r.job.ExtraData); ok {
			args.set(h.Name, one(hv))
		}
	}
	return args, missing
}

// ---- calls ----

func isBlocker(v any) bool {
	switch v.(type) {
	case *nodes.Blocker, nodes.Blocker:
		return true
	}
	return false
}

func asBlocker(v any) (*nodes.Blocker, bool) {
	switch b := v.(type) {
	case *nodes.Blocker:
		return b, b != nil
	case nodes.Blocker:
		return &b, true
	}
	return nil, false
}

// callFunc is one list-mapped call of a node function.
type callFunc func(ctx *nodes.Context, in nodes.Inputs) (any, error)

// mapNode calls fn list-mapped over args (ComfyUI's _map_node_over_list). A blocked call
// yields its blocker (after blockCB) instead of a result. With exec, the prompt's interrupt is
// checked before each call.
func (r *run) mapNode(id string, d *nodes.Def, args *argMap, exec bool, blockCB func(*nodes.Blocker) *nodes.Blocker, fn callFunc) ([]any, error) {
	type call struct {
		in  nodes.Inputs
		idx int
	}
	var calls []call
	if d.InputIsList {
		in := make(nodes.Inputs, len(args.keys))
		for j, k := range args.keys {
			in[k] = args.vals[j]
		}
		calls = []call{{in, 0}}
	} else {
		n := 0
		for _, l := range args.vals {
			if len(l) > n {
				n = len(l)
			}
		}
		if n == 0 {
			calls = []call{{nodes.Inputs{}, 0}}
		} else {
			calls = make([]call, 0, n)
			for i := 0; i < n; i++ {
				in := make(nodes.Inputs, len(args.keys))
				for j, k := range args.keys {
					l := args.vals[j]
					switch {
					case len(l) > i:
						in[k] = l[i]
					case len(l) > 0:
						in[k] = l[len(l)-1]
					default:
						return nil, &nodes.NodeError{Type: "IndexError", Msg: "list index out of range"}
					}
				}
				calls = append(calls, call{in, i})
			}
		}
	}
	results := make([]any, 0, len(calls))
	for _, c := range calls {
		if exec && r.ctx.Err() != nil {
			return nil, errInterrupted
		}
		var block *nodes.Blocker
		for _, k := range args.keys {
			v := c.in[k]
			if d.InputIsList {
				if l, ok := v.([]any); ok {
					for _, e := range l {
						if b, ok := asBlocker(e); ok {
							block = b
							break
						}
					}
				}
			} else if b, ok := asBlocker(v); ok {
				block = b
			}
			if block != nil {
				break
			}
		}
		if block != nil {
			if blockCB != nil {
				block = blockCB(block)
			}
			results = append(results, block)
			continue
		}
		res, err := r.safeCall(id, c.idx, fn, c.in)
		if err != nil {
			return nil, err
		}
		results = append(results, res)
	}
	return results, nil
}

func (r *run) nodeCtx(id string, idx int) *nodes.Context {
	ctx := r.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	return &nodes.Context{Context: ctx, PromptID: r.job.PromptID, NodeID: id, DisplayID: r.displayID(id),
		Env: r.e.cfg.Env, Reporter: r, CallIndex: idx, Prompt: r}
}

// panicError is a recovered panic with its stack.
type panicError struct {
	val   any
	stack []string
}

func (p *panicError) Error() string         { return fmt.Sprint(p.val) }
func (p *panicError) ExceptionType() string { return "RuntimeError" }

func (r *run) safeCall(id string, idx int, fn callFunc, in nodes.Inputs) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{val: p, stack: stackLines(debug.Stack())}
		}
	}()
	return fn(r.nodeCtx(id, idx), in)
}

// ---- execute_node ----

func (r *run) executeNode(id string) (status, *nodeFailure) {
	node, ok := r.node(id)
	real := r.realID(id)
	if !ok {
		return stFailure, &nodeFailure{nodeID: real, msg: fmt.Sprintf("Node %s not found", id), typ: "NodeNotFoundError", inputs: map[string]any{}}
	}
	d, ok := r.lookup(node.ClassType)
	if !ok {
		return stFailure, &nodeFailure{nodeID: real, msg: pyStrRepr(node.ClassType), typ: "KeyError", inputs: map[string]any{}}
	}
	display := r.displayID(id)

	// A: output cache hit.
	if ent := r.e.cache.get(r, id); ent != nil {
		var out map[string][]any
		if ent.ui != nil {
			out = ent.ui.output
			r.setUI(id, ent.ui)
		}
		r.emitClient("executed", Executed{Node: id, DisplayNode: display, Output: out, PromptID: r.job.PromptID})
		r.finishProgress(id)
		r.list.cacheUpdate(id, ent)
		return stSuccess, nil
	}

	var inputs *argMap
	fail := func(err error) (status, *nodeFailure) {
		f := &nodeFailure{nodeID: real, inputs: formatInputs(inputs)}
		if r.ctx.Err() != nil || errors.Is(err, errInterrupted) {
			f.interrupted = true
			return stFailure, f
		}
		f.msg = err.Error() + "\n"
		f.typ = "RuntimeError"
		var ex nodes.Exception
		if errors.As(err, &ex) {
			f.typ = ex.ExceptionType()
		}
		var pe *panicError
		if errors.As(err, &pe) {
			f.traceback = pe.stack
		}
		return stFailure, f
	}

	var outputs [][]any
	var ui map[string][]any
	var subs []subResult
	hasSub := false
	switch {
	case r.pendingAsync[id] != nil: // B
		st := r.pendingAsync[id]
		delete(r.pendingAsync, id)
		inputs = st.inputs
		for _, err := range st.errs {
			if err != nil {
				return fail(err)
			}
		}
		var err error
		outputs, ui, subs, hasSub, err = r.processResults(st.results, d)
		if err != nil {
			return fail(err)
		}
	case r.pendingSubgraph[id] != nil: // C
		pend := r.pendingSubgraph[id]
		delete(r.pendingSubgraph, id)
		resolved := make([][]any, 0, len(pend))
		for _, s := range pend {
			if !s.isSub {
				resolved = append(resolved, s.result)
				continue
			}
			var tuple []any
			for _, v := range s.result {
				if l, ok := v.(graph.Link); ok {
					ent := r.list.getCache(l.NodeID, id)
					if ent == nil || l.Slot < 0 || l.Slot >= len(ent.outputs) {
						return fail(fmt.Errorf("expanded node %s has no output %d", l.NodeID, l.Slot))
					}
					tuple = append(tuple, ent.outputs[l.Slot]...)
				} else {
					tuple = append(tuple, v)
				}
			}
			resolved = append(resolved, tuple)
		}
		outputs = mergeResults(resolved, d)
	default: // D
		r.startProgress(id)
		var missing map[string]bool
		inputs, missing = r.inputData(id, node, d, true)
		disp := display
		r.emitClient("executing", Executing{Node: &id, DisplayNode: &disp, PromptID: r.job.PromptID})
		if d.CheckLazy != nil {
			res, err := r.mapNode(id, d, inputs, true, nil, func(ctx *nodes.Context, in nodes.Inputs) (any, error) {
				return d.CheckLazy(ctx, in)
			})
			if err != nil {
				return fail(err)
			}
			var need []string
			seen := map[string]bool{}
			for _, x := range res {
				names, ok := x.([]string)
				if !ok {
					continue
				}
				for _, name := range names {
					_, present := inputs.get(name)
					if seen[name] || (present && !missing[name]) {
						continue
					}
					seen[name] = true
					need = append(need, name)
				}
			}
			if len(need) > 0 {
				for _, name := range need {
					if err := r.list.makeInputStrongLink(id, name); err != nil {
						return fail(err)
					}
				}
				return stPending, nil
			}
		}
		blockCB := func(b *nodes.Blocker) *nodes.Blocker {
			if b.Message == "" && !b.HasMsg {
				return b
			}
			r.emitAny("execution_error", ExecutionError{PromptID: r.job.PromptID, NodeID: id, NodeType: node.ClassType,
				Executed: append([]string{}, r.executed...), ExceptionMessage: "Execution Blocked: " + b.Message,
				ExceptionType: "ExecutionBlocked", Traceback: []string{}, CurrentInputs: []any{}, CurrentOutputs: []string{}})
			return &nodes.Blocker{}
		}
		exec := func(ctx *nodes.Context, in nodes.Inputs) (any, error) { return d.Execute(ctx, in) }
		if d.Async {
			if err := r.startAsync(id, d, inputs, blockCB); err != nil {
				return fail(err)
			}
			return stPending, nil
		}
		res, err := r.mapNode(id, d, inputs, true, blockCB, exec)
		if err != nil {
			return fail(err)
		}
		outputs, ui, subs, hasSub, err = r.processResults(res, d)
		if err != nil {
			return fail(err)
		}
	}

	// E: UI.
	if len(ui) > 0 {
		meta := nodes.NewOrderedMap()
		meta.Set("node_id", id)
		meta.Set("display_node", display)
		if p := r.parents[id]; p != "" {
			meta.Set("parent_node", p)
		} else {
			meta.Set("parent_node", nil)
		}
		meta.Set("real_node_id", real)
		r.setUI(id, &uiRecord{meta: meta, output: ui})
		r.emitClient("executed", Executed{Node: id, DisplayNode: display, Output: ui, PromptID: r.job.PromptID})
	}

	// F: expansion.
	if hasSub {
		if err := r.expand(id, subs); err != nil {
			return fail(err)
		}
		return stPending, nil
	}

	// G: done.
	ent := &entry{ui: r.ui[id], outputs: outputs}
	r.list.cacheUpdate(id, ent)
	r.e.cache.set(r, id, ent)
	r.finishProgress(id)
	r.executed = append(r.executed, id)
	return stSuccess, nil
}

func (r *run) setUI(id string, rec *uiRecord) {
	if _, ok := r.ui[id]; !ok {
		r.uiOrder = append(r.uiOrder, id)
	}
	r.ui[id] = rec
}

// startAsync runs every call of an Async node on its own goroutine and blocks the node until
// they finish.
func (r *run) startAsync(id string, d *nodes.Def, args *argMap, blockCB func(*nodes.Blocker) *nodes.Blocker) error {
	// Blocked calls are resolved synchronously; the others run concurrently.
	var fns []func() (any, error)
	results, err := r.mapNode(id, d, args, true, blockCB, func(ctx *nodes.Context, in nodes.Inputs) (any, error) {
		fns = append(fns, func() (any, error) { return d.Execute(ctx, in) })
		return asyncSlot{}, nil
	})
	if err != nil {
		return err
	}
	st := &asyncState{results: results, errs: make([]error, len(results)), inputs: args}
	r.pendingAsync[id] = st
	r.list.addExternalBlock(id)
	var wg sync.WaitGroup
	k := 0
	for i := range results {
		if _, ok := results[i].(asyncSlot); !ok {
			continue
		}
		fn := fns[k]
		k++
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					st.errs[i] = &panicError{val: p, stack: stackLines(debug.Stack())}
				}
			}()
			res, err := fn()
			st.results[i], st.errs[i] = res, err
		}(i)
	}
	r.asyncInFlight++
	go func() {
		wg.Wait()
		r.asyncDone <- id
	}()
	return nil
}

// asyncSlot marks a call result still being computed.
type asyncSlot struct{}

// processResults is ComfyUI's get_output_from_returns: per-call results → merged outputs, the
// merged UI, and the per-call expansion records when any call expanded.
func (r *run) processResults(res []any, d *nodes.Def) (outputs [][]any, ui map[string][]any, subs []subResult, hasSub bool, err error) {
	var tuples [][]any
	var uis []map[string][]any
	fan := func(b *nodes.Blocker) []any {
		t := make([]any, len(d.Outputs))
		for i := range t {
			t[i] = b
		}
		return t
	}
	for _, x := range res {
		if b, ok := asBlocker(x); ok {
			t := fan(b)
			tuples = append(tuples, t)
			subs = append(subs, subResult{false, t})
			continue
		}
		rr, ok := x.(nodes.Result)
		if !ok {
			if p, ok2 := x.(*nodes.Result); ok2 && p != nil {
				rr, ok = *p, true
			}
		}
		if !ok {
			return nil, nil, nil, false, fmt.Errorf("node returned %T, not nodes.Result", x)
		}
		if rr.Block != nil && rr.Expand == nil {
			t := fan(rr.Block)
			tuples = append(tuples, t)
			subs = append(subs, subResult{false, t})
			if rr.UI != nil {
				uis = append(uis, rr.UI)
			}
			continue
		}
		if rr.UI != nil {
			uis = append(uis, rr.UI)
		}
		if rr.Expand != nil {
			hasSub = true
			result := rr.Outputs
			if rr.Block != nil { // {"result": ExecutionBlocker, "expand": ...}
				result = fan(rr.Block)
			}
			subs = append(subs, subResult{true, result})
			r.expandGraphs = append(r.expandGraphs, rr.Expand)
			continue
		}
		if rr.Outputs == nil && rr.UI != nil && len(d.Outputs) > 0 {
			continue // {"ui": ...} alone: no result
		}
		tuples = append(tuples, rr.Outputs)
		subs = append(subs, subResult{false, rr.Outputs})
	}
	if len(uis) > 0 {
		ui = map[string][]any{}
		for k := range uis[0] {
			var all []any
			for _, u := range uis {
				all = append(all, u[k]...)
			}
			if all == nil {
				all = []any{}
			}
			ui[k] = all
		}
	}
	if hasSub {
		return nil, ui, subs, true, nil
	}
	if len(tuples) > 0 {
		outputs = mergeResults(tuples, d)
	} else {
		outputs = [][]any{}
	}
	return outputs, ui, nil, false, nil
}

// mergeResults is ComfyUI's merge_result_data: per output slot, the list of per-call values, or
// for list outputs their concatenation.
func mergeResults(tuples [][]any, d *nodes.Def) [][]any {
	n := len(tuples[0])
	out := make([][]any, n)
	for i := 0; i < n; i++ {
		isList := i < len(d.Outputs) && d.Outputs[i].IsList
		var vals []any
		for _, t := range tuples {
			var v any
			if i < len(t) {
				v = t[i]
			}
			if isList {
				if isBlocker(v) {
					vals = append(vals, v)
				} else {
					vals = append(vals, asList(v)...)
				}
			} else {
				vals = append(vals, v)
			}
		}
		if vals == nil {
			vals = []any{}
		}
		out[i] = vals
	}
	return out
}

// asList turns a list output value into []any (any slice type is accepted).
func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).Interface()
		}
		return out
	}
	return []any{v}
}

// expand registers the subgraphs returned by node id (first pass of ComfyUI's expansion).
func (r *run) expand(id string, subs []subResult) error {
	graphs := r.expandGraphs
	r.expandGraphs = nil
	var newIDs, newOutputs []string
	var links []graph.Link
	gi := 0
	for _, s := range subs {
		if !s.isSub {
			continue
		}
		g := graphs[gi]
		gi++
		for _, nid := range g.IDs {
			n := g.Nodes[nid]
			newIDs = append(newIDs, nid)
			disp := n.OverrideDisplayID
			if disp == "" {
				disp = id
			}
			r.addEphemeral(nid, n, id, disp)
			nd, ok := r.lookup(n.ClassType)
			if !ok {
				return &nodes.NodeError{Type: "KeyError", Msg: pyStrRepr(n.ClassType)}
			}
			if nd.OutputNode {
				newOutputs = append(newOutputs, nid)
			}
		}
		for _, v := range s.result {
			if l, ok := v.(graph.Link); ok {
				links = append(links, l)
			}
		}
	}
	r.computeKeys(newIDs)
	r.e.cache.ensureSubcache(r, id, newIDs)
	for _, o := range newOutputs {
		if err := r.list.addNode(o, false, nil); err != nil {
			return err
		}
		r.list.cacheLink(o, id)
	}
	for _, l := range links {
		if err := r.list.addStrongLink(l.NodeID, l.Slot, id); err != nil {
			return err
		}
	}
	r.pendingSubgraph[id] = subs
	return nil
}

// formatInputs renders assembled inputs for execution_error's current_inputs.
func formatInputs(a *argMap) any {
	out := map[string]any{}
	if a == nil {
		return out
	}
	for j, k := range a.keys {
		vals := a.vals[j]
		f := make([]any, len(vals))
		for i, v := range vals {
			f[i] = formatValue(v)
		}
		out[k] = f
	}
	return out
}

func formatValue(v any) any {
	switch x := v.(type) {
	case nil, bool, string, int64, uint64, float64, int:
		return x
	case float32:
		return float64(x)
	case *graph.Prompt:
		return "{prompt}"
	case fmt.Stringer:
		return x.String()
	}
	return pyRepr(v)
}
