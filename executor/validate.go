package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/nodes"
)

// ErrorInfo is one ComfyUI error object {type, message, details, extra_info}.
type ErrorInfo struct {
	Type      string         `json:"type"`
	Message   string         `json:"message"`
	Details   string         `json:"details"`
	ExtraInfo map[string]any `json:"extra_info"`
}

// NodeErrors is ComfyUI's node_errors: node id -> its errors.
type NodeErrors map[string]*NodeErrorEntry

// NodeErrorEntry is one node's entry in node_errors.
type NodeErrorEntry struct {
	Errors           []ErrorInfo `json:"errors"`
	DependentOutputs []string    `json:"dependent_outputs"`
	ClassType        string      `json:"class_type"`
}

// ValidationError is a rejected prompt: it marshals to ComfyUI's HTTP 400 body
// {"error": {...}, "node_errors": {...}}.
type ValidationError struct {
	Info       ErrorInfo  `json:"error"`
	NodeErrors NodeErrors `json:"node_errors"`
}

func (e *ValidationError) Error() string {
	if e.Info.Details != "" {
		return e.Info.Message + ": " + e.Info.Details
	}
	return e.Info.Message
}

// NoPromptError is the 400 error for a POST /prompt without "prompt".
func NoPromptError() *ValidationError {
	return &ValidationError{Info: ErrorInfo{Type: "no_prompt", Message: "No prompt provided",
		Details: "No prompt provided", ExtraInfo: map[string]any{}}, NodeErrors: NodeErrors{}}
}

// missingNodeType is current ComfyUI's error for a node without class_type (classType "") or
// of an unregistered class (older versions said invalid_prompt "Cannot execute because ...").
func missingNodeType(id string, n *graph.Node, classType string) *ValidationError {
	var title any
	if n != nil && n.Meta != nil {
		if t, ok := n.Meta["title"].(string); ok {
			title = t
		}
	}
	var msg string
	var ct any
	if classType == "" {
		name := "ID #" + id
		if t, ok := title.(string); ok && t != "" {
			name = t
		}
		msg = fmt.Sprintf("Node '%s' has no class_type. The workflow may be corrupted or a custom node is missing.", name)
	} else {
		ct = classType
		if title == nil {
			title = classType
		}
		msg = fmt.Sprintf("Node '%s' not found. The custom node may not be installed.", title)
	}
	return &ValidationError{Info: ErrorInfo{Type: "missing_node_type", Message: msg,
		Details:   fmt.Sprintf("Node ID '#%s'", id),
		ExtraInfo: map[string]any{"node_id": id, "class_type": ct, "node_title": title}}, NodeErrors: NodeErrors{}}
}

// vresult is the memo entry of one validated node.
type vresult struct {
	ok      bool
	reasons []ErrorInfo
}

// Validate checks prompt p against the registry the way ComfyUI's validate_prompt does and
// returns the outputs to execute. targets are partial_execution_targets: nil when the request
// has none, non-nil (possibly empty, which fails) when given. nodeErrors lists failures of
// outputs that were dropped while others passed (it goes into the 200 response). verr is the
// 400 body when the prompt is rejected. Validate coerces constants in p in place.
func (e *Executor) Validate(p *graph.Prompt, targets []string) (outputs []string, nodeErrors NodeErrors, verr *ValidationError) {
	lookup := newDefCache(e.lookup)
	var outNodes []string // output nodes in document order
	for _, id := range p.IDs {
		n := p.Nodes[id]
		if n == nil || n.ClassType == "" {
			return nil, nil, missingNodeType(id, n, "")
		}
		d, ok := lookup(n.ClassType)
		if !ok {
			return nil, nil, missingNodeType(id, n, n.ClassType)
		}
		if d.OutputNode {
			outNodes = append(outNodes, id)
		}
	}
	var tset map[string]bool
	if targets != nil {
		tset = make(map[string]bool, len(targets))
		for _, t := range targets {
			tset[t] = true
		}
	}
	var outs []string
	for _, id := range outNodes {
		if tset == nil || tset[id] {
			outs = append(outs, id)
		}
	}
	if len(outs) == 0 {
		return nil, nil, &ValidationError{Info: ErrorInfo{Type: "prompt_no_outputs", Message: "Prompt has no outputs",
			Details: "", ExtraInfo: map[string]any{}}, NodeErrors: NodeErrors{}}
	}

	// The memo is sized for the whole prompt (growing a big map costs more than the unused
	// space when outputs reach only part of it); sources live in chunks.
	v := &validator{e: e, lookup: lookup, p: p}
	v.getScratch(len(p.IDs))
	defer v.putScratch()
	nodeErrors = NodeErrors{}
	var errs []string // "<message>: <details>" of failing outputs' own reasons
	var good []string
	for _, o := range outs {
		res := v.validate(o)
		if res.ok {
			good = append(good, o)
			continue
		}
		for _, r := range res.reasons {
			errs = append(errs, r.Message+": "+r.Details)
		}
		for _, vn := range v.order {
			id := vn.id
			m := &vn.res
			if m.ok || len(m.reasons) == 0 {
				continue
			}
			ne := nodeErrors[id]
			if ne == nil {
				ne = &NodeErrorEntry{Errors: m.reasons, DependentOutputs: []string{}, ClassType: p.Nodes[id].ClassType}
				nodeErrors[id] = ne
			}
			ne.DependentOutputs = append(ne.DependentOutputs, o)
		}
	}
	if len(good) == 0 {
		return nil, nodeErrors, &ValidationError{Info: ErrorInfo{Type: "prompt_outputs_failed_validation",
			Message: "Prompt outputs failed validation", Details: strings.Join(errs, "\n"), ExtraInfo: map[string]any{}},
			NodeErrors: nodeErrors}
	}
	return good, nodeErrors, nil
}

// newDefCache memoises registry lookups for the duration of one call.
func newDefCache(lookup func(string) (*nodes.Def, bool)) func(string) (*nodes.Def, bool) {
	m := map[string]*nodes.Def{}
	var lastName string
	var lastDef *nodes.Def
	return func(name string) (*nodes.Def, bool) {
		if lastDef != nil && name == lastName { // runs of one class are common
			return lastDef, true
		}
		if d, ok := m[name]; ok {
			if d != nil {
				lastName, lastDef = name, d
			}
			return d, d != nil
		}
		d, ok := lookup(name)
		if !ok {
			d = nil
		}
		m[name] = d
		return d, ok
	}
}

// validator holds one validate_prompt call's shared memo.
type validator struct {
	e       *Executor
	lookup  func(string) (*nodes.Def, bool)
	p       *graph.Prompt
	nodes   map[string]*vnode
	order   []*vnode // memo insertion order
	stack   []*vnode
	slab    []vnode   // vnodes are allocated in chunks
	srcSlab []srcLink // backing store of the nodes' srcs
	sc      *vscratch
}

// vnode is a node's validation state: 1 = in progress, 2 = done; res is its memo entry.
type vnode struct {
	state uint8
	has   bool
	res   vresult
	// while on the stack: the node's own reasons and the sources still to validate
	id      string // set by vn
	node    *graph.Node
	reasons []ErrorInfo
	srcs    []srcLink
	next    int
	ok      bool
}

func (v *validator) vn(id string) *vnode {
	n := v.nodes[id]
	if n == nil {
		if len(v.slab) == 0 {
			v.slab = v.sc.vnodeChunk()
		}
		n = &v.slab[0]
		v.slab = v.slab[1:]
		n.id = id
		v.nodes[id] = n
	}
	return n
}

func (v *validator) setMemo(n *vnode, r vresult) {
	if !n.has {
		n.has = true
		v.order = append(v.order, n)
	}
	n.res = r
}

// vscratch is a validator's storage, pooled across Validate calls (they may run concurrently).
type vscratch struct {
	nodes           map[string]*vnode
	vchunks         [][]vnode
	vused           int // chunks handed out
	schunks         [][]srcLink
	sused           int
	order, stackBuf []*vnode
}

var vscratchPool sync.Pool

func (sc *vscratch) vnodeChunk() []vnode {
	if sc.vused == len(sc.vchunks) {
		sc.vchunks = append(sc.vchunks, make([]vnode, 512))
	}
	sc.vused++
	return sc.vchunks[sc.vused-1]
}

func (sc *vscratch) srcChunk(n int) []srcLink {
	for sc.sused < len(sc.schunks) {
		c := sc.schunks[sc.sused]
		sc.sused++
		if cap(c) >= n {
			return c[:0]
		}
	}
	c := make([]srcLink, 0, n)
	sc.schunks = append(sc.schunks, c)
	sc.sused++
	return c
}

func (v *validator) getScratch(n int) {
	sc, _ := vscratchPool.Get().(*vscratch)
	if sc == nil {
		sc = &vscratch{nodes: make(map[string]*vnode, min(n, 1<<16))}
	}
	v.sc, v.nodes, v.order, v.stack = sc, sc.nodes, sc.order[:0], sc.stackBuf[:0]
	v.srcSlab = sc.srcChunk(min(max(n, 64), 1024))
}

// putScratch clears what the call used (no references survive) and pools it.
func (v *validator) putScratch() {
	sc := v.sc
	if len(v.nodes) > 1<<16 {
		return // too big to keep
	}
	for i, c := range sc.vchunks[:sc.vused] {
		if i == sc.vused-1 {
			c = c[:len(c)-len(v.slab)] // the current chunk is used up to v.slab
		}
		clear(c)
	}
	for _, c := range sc.schunks[:sc.sused] {
		clear(c[:cap(c)])
	}
	clear(v.nodes)
	clear(v.order)
	clear(v.stack[:cap(v.stack)])
	sc.vused, sc.sused = 0, 0
	sc.order, sc.stackBuf = v.order[:0], v.stack[:0]
	vscratchPool.Put(sc)
}

// srcLink is a declared, type-compatible link whose source must be validated recursively.
type srcLink struct {
	sn    *vnode      // the source's state
	node  *graph.Node // the source node
	input string
	in    *nodes.Input
	v3    bool
	env   *nodes.Env
	link  graph.Link
}

// validate runs ComfyUI's validate_inputs for root (memoised) without recursion.
func (v *validator) validate(root string) *vresult {
	if n := v.nodes[root]; n != nil && n.state == 2 {
		return &n.res
	}
	stack := v.stack[:0] // explicit stack: no Go recursion over the graph
	defer func() { v.stack = stack[:0] }()
	push := func(id string, n *vnode, node *graph.Node) *ErrorInfo {
		reasons, srcs, exc := v.own(id, node)
		if exc != nil {
			return exc // raised
		}
		n.state = 1
		n.node, n.reasons, n.srcs, n.next, n.ok = node, reasons, srcs, 0, len(reasons) == 0
		stack = append(stack, n)
		return nil
	}
	rn := v.vn(root)
	if exc := push(root, rn, v.p.Nodes[root]); exc != nil {
		// An output's own validation raised: exception_during_validation.
		v.setMemo(rn, vresult{ok: false, reasons: []ErrorInfo{exceptionDuringValidation(*exc)}})
		rn.state = 2
		return &rn.res
	}
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		if f.next < len(f.srcs) {
			s := f.srcs[f.next]
			f.next++
			src := s.link.NodeID
			sn := s.sn // resolved by own
			if sn.state == 2 {
				if !sn.res.ok {
					f.ok = false
				}
				continue
			}
			if sn.state == 1 {
				// A dependency cycle: the source "raises" (Python recursion would overflow).
				f.ok = false
				v.setMemo(sn, vresult{ok: false, reasons: []ErrorInfo{innerException(s, "Dependency cycle detected", "graph.DependencyCycleError", nil)}})
				continue
			}
			if exc := push(src, sn, s.node); exc != nil {
				f.ok = false
				v.setMemo(sn, vresult{ok: false, reasons: []ErrorInfo{innerException(s, exc.Details, exc.ExtraInfo["exception_type"].(string), exc.ExtraInfo["traceback"])}})
				sn.state = 2
			}
			continue
		}
		// all sources done
		done := f
		stack = stack[:len(stack)-1]
		n := done
		if n.has && !n.res.ok && len(n.res.reasons) == 1 && n.res.reasons[0].Type == "exception_during_inner_validation" {
			// a cycle member that "raised" keeps its single exception reason
		} else {
			v.setMemo(done, vresult{ok: done.ok && len(done.reasons) == 0, reasons: done.reasons})
		}
		n.state = 2
		n.reasons, n.srcs = nil, nil
		if len(stack) > 0 && !n.res.ok {
			stack[len(stack)-1].ok = false
		}
	}
	return &rn.res
}

func innerException(s srcLink, msg, typ string, tb any) ErrorInfo {
	if tb == nil {
		tb = []string{}
	}
	return ErrorInfo{Type: "exception_during_inner_validation", Message: "Exception when validating inner node",
		Details: msg, ExtraInfo: map[string]any{"input_name": s.input, "input_config": nodes.InputConfig(s.in, s.env, s.v3),
			"exception_message": msg, "exception_type": typ, "traceback": tb, "linked_node": linkJSON(s.link)}}
}

func exceptionDuringValidation(raised ErrorInfo) ErrorInfo {
	return ErrorInfo{Type: "exception_during_validation", Message: "Exception when validating node",
		Details: raised.Details, ExtraInfo: map[string]any{"exception_type": raised.ExtraInfo["exception_type"],
			"traceback": raised.ExtraInfo["traceback"]}}
}

// raisedError describes an exception escaping validate_inputs (kept in an ErrorInfo).
func raisedError(msg, typ string, tb []string) *ErrorInfo {
	if tb == nil {
		tb = []string{}
	}
	return &ErrorInfo{Details: msg, ExtraInfo: map[string]any{"exception_type": typ, "traceback": tb}}
}

func linkJSON(l graph.Link) []any { return []any{l.NodeID, l.Slot} }

// asLink interprets an input value as a link the way validation does: a graph.Link, or any
// 2-element list with a string id and a numeric slot.
func asLink(v any) (graph.Link, bool) {
	switch x := v.(type) {
	case graph.Link:
		return x, true
	case []any:
		if len(x) == 2 {
			if id, ok := x[0].(string); ok {
				if f, ok := asFloat(x[1]); ok {
					if _, isBool := x[1].(bool); !isBool {
						return graph.Link{NodeID: id, Slot: int(f)}, true
					}
				}
			}
		}
	}
	return graph.Link{}, false
}

// typesCompatible is ComfyUI's validate_node_input (non-strict) for received type r and
// declared type d.
func typesCompatible(r, d string) bool {
	if r == d || r == "*" || d == "*" || r == "COMFY_MATCHTYPE_V3" || d == "COMFY_MATCHTYPE_V3" {
		return true
	}
	rs, ds := splitTypes(r), splitTypes(d)
	for _, x := range rs {
		if x == "*" {
			return true
		}
	}
	for _, y := range ds {
		if y == "*" {
			return true
		}
		for _, x := range rs {
			if x == y {
				return true
			}
		}
	}
	return false
}

func splitTypes(t string) []string {
	parts := strings.Split(t, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// own runs the per-input checks and the custom validator of node id. It returns the node's
// own reasons and the links whose sources must be validated; exc is an exception escaping
// validate_inputs (missing link source, bad slot, panicking validator).
func (v *validator) own(id string, n *graph.Node) (reasons []ErrorInfo, srcs []srcLink, exc *ErrorInfo) {
	defer func() {
		if r := recover(); r != nil {
			exc = raisedError(fmt.Sprint(r), "RuntimeError", stackLines(debug.Stack()))
		}
	}()
	d, _ := v.lookup(n.ClassType)
	val := d.Validate
	var declared map[string]bool
	if val != nil && len(val.Inputs) > 0 {
		declared = make(map[string]bool, len(val.Inputs))
		for _, name := range val.Inputs {
			declared[name] = true
		}
	}
	var receivedTypes map[string]string
	if val != nil && val.InputTypes {
		receivedTypes = map[string]string{}
	}
	env := v.e.cfg.Env
	srcStart := 0 // srcs live in v.srcSlab (one allocation for many nodes)
	nIn := len(d.Required) + len(d.Optional)
	for i := 0; i < nIn; i++ {
		required := i < len(d.Required)
		var in *nodes.Input
		if required {
			in = &d.Required[i]
		} else {
			in = &d.Optional[i-len(d.Required)]
		}
		x := in.Name
		raw, present := n.Inputs.Get(x)
		if !present {
			if required {
				reasons = append(reasons, ErrorInfo{Type: "required_input_missing", Message: "Required input is missing",
					Details: x, ExtraInfo: map[string]any{"input_name": x}})
			}
			continue
		}
		config := func() []any { return nodes.InputConfig(in, env, d.V3) }
		if l, isList := raw.([]any); isList && len(l) != 2 {
			reasons = append(reasons, ErrorInfo{Type: "bad_linked_input",
				Message: "Bad linked input, must be a length-2 list of [node_id, slot_index]", Details: x,
				ExtraInfo: map[string]any{"input_name": x, "input_config": config(), "received_value": raw}})
			continue
		}
		if _, isList := raw.([]any); isList || isLinkValue(raw) {
			link, ok := asLink(raw)
			if !ok {
				return nil, nil, raisedError(fmt.Sprintf("invalid link %s", pyRepr(raw)), "TypeError", nil)
			}
			src, ok := v.p.Nodes[link.NodeID]
			if !ok {
				return nil, nil, raisedError(pyStrRepr(link.NodeID), "KeyError", nil)
			}
			sd, _ := v.lookup(src.ClassType)
			if link.Slot < 0 || link.Slot >= len(sd.Outputs) {
				return nil, nil, raisedError("tuple index out of range", "IndexError", nil)
			}
			r := sd.Outputs[link.Slot].Type
			if receivedTypes != nil {
				receivedTypes[x] = r
			}
			if (val == nil || !val.InputTypes) && !inputTypeOK(r, in, d) {
				reasons = append(reasons, ErrorInfo{Type: "return_type_mismatch", Message: "Return type mismatch between linked nodes",
					Details:   fmt.Sprintf("%s, received_type(%s) mismatch input_type(%s)", x, r, in.Type),
					ExtraInfo: map[string]any{"input_name": x, "input_config": config(), "received_type": r, "linked_node": linkJSON(link)}})
				continue
			}
			if srcs == nil {
				srcStart = len(v.srcSlab)
			}
			if len(v.srcSlab) == cap(v.srcSlab) { // new chunk; this node's sources move along
				cur := v.srcSlab[srcStart:]
				v.srcSlab = append(v.sc.srcChunk(max(1024, 2*len(cur))), cur...)
				srcStart = 0
			}
			v.srcSlab = append(v.srcSlab, srcLink{sn: v.vn(link.NodeID), node: src, input: x, in: in, v3: d.V3, env: env, link: link})
			srcs = v.srcSlab[srcStart:len(v.srcSlab):len(v.srcSlab)]
			continue
		}
		// constant
		value := raw
		if m, ok := raw.(map[string]any); ok {
			if inner, ok := m["__value__"]; ok {
				value = inner
				n.Inputs.Set(x, inner)
			}
		}
		switch in.Type {
		case nodes.TypeInt, nodes.TypeFloat, nodes.TypeString, nodes.TypeBoolean:
			cv, err := coerce(in.Type, value)
			if err == nil && sameConst(cv, value) {
				break
			}
			if err != nil {
				reasons = append(reasons, ErrorInfo{Type: "invalid_input_type",
					Message: fmt.Sprintf("Failed to convert an input value to a %s value", in.Type),
					Details: fmt.Sprintf("%s, %s, %s", x, pyStr(normalize(value)), err.Error()),
					ExtraInfo: map[string]any{"input_name": x, "input_config": config(), "received_value": normalize(value),
						"exception_message": err.Error()}})
				continue
			}
			value = cv
			n.Inputs.Set(x, cv)
		}
		if declared[x] || (val != nil && val.AllInputs) {
			continue
		}
		if in.Min != nil {
			if c, ok := pyCompare(value, in.Min); ok && c < 0 {
				reasons = append(reasons, ErrorInfo{Type: "value_smaller_than_min",
					Message: fmt.Sprintf("Value %s smaller than min of %s", pyStr(value), pyStr(in.Min)), Details: x,
					ExtraInfo: map[string]any{"input_name": x, "input_config": config(), "received_value": value}})
				continue
			}
		}
		if in.Max != nil {
			if c, ok := pyCompare(value, in.Max); ok && c > 0 {
				reasons = append(reasons, ErrorInfo{Type: "value_bigger_than_max",
					Message: fmt.Sprintf("Value %s bigger than max of %s", pyStr(value), pyStr(in.Max)), Details: x,
					ExtraInfo: map[string]any{"input_name": x, "input_config": config(), "received_value": value}})
				continue
			}
		}
		if in.Type == nodes.TypeCombo {
			opts := in.ComboOptions(env)
			found := false
			nv := normalize(value)
			for _, o := range opts {
				if pyEqual(nv, o) {
					found = true
					break
				}
			}
			if !found {
				listInfo := ""
				var cfg any
				if len(opts) > 20 {
					listInfo = fmt.Sprintf("(list of length %d)", len(opts))
					cfg = nil
				} else {
					listInfo = pyRepr(opts)
					cfg = config()
				}
				reasons = append(reasons, ErrorInfo{Type: "value_not_in_list", Message: "Value not in list",
					Details:   fmt.Sprintf("%s: '%s' not in %s", x, pyStr(nv), listInfo),
					ExtraInfo: map[string]any{"input_name": x, "input_config": cfg, "received_value": nv}})
				continue
			}
		}
	}
	if val != nil && val.Func != nil && (len(val.Inputs) > 0 || val.AllInputs || val.InputTypes) {
		// Arguments: declared names (all inputs with AllInputs); linked inputs are nil.
		args := nodes.Inputs{}
		var names []string
		addArg := func(name string) {
			raw, ok := n.Inputs.Get(name)
			if !ok {
				return
			}
			if _, isLink := asLink(raw); isLink || isLinkValue(raw) {
				args[name] = nil
			} else {
				args[name] = normalize(raw)
			}
			names = append(names, name)
		}
		if val.AllInputs {
			for _, k := range n.Inputs.Keys {
				addArg(k)
			}
		} else {
			for _, name := range val.Inputs {
				addArg(name)
			}
		}
		for _, h := range d.Hidden {
			if hv, ok := hiddenValue(h.Marker, id, nil, nil, nil); ok {
				args[h.Name] = hv
			}
		}
		var inTypes map[string]string
		if val.InputTypes {
			inTypes = receivedTypes
			names = append(names, "input_types")
		}
		blocked := false
		for _, a := range args {
			if isBlocker(a) {
				blocked = true
			}
		}
		if !blocked {
			ctx := &nodes.Context{Context: context.Background(), NodeID: id, DisplayID: id, Env: v.e.cfg.Env,
				Prompt: staticPrompt{v.p}}
			if err := val.Func(ctx, args, inTypes); err != nil {
				msg := err.Error()
				for _, name := range names {
					details := name
					if msg != "" {
						details = name + " - " + msg
					}
					reasons = append(reasons, ErrorInfo{Type: "custom_validation_failed", Message: "Custom validation failed for node",
						Details: details, ExtraInfo: map[string]any{"input_name": name}})
				}
			}
		}
	}
	return reasons, srcs, nil
}

// inputTypeOK is the engine's link type check for received type r into input in.
func inputTypeOK(r string, in *nodes.Input, d *nodes.Def) bool {
	if in.Type == nodes.TypeCombo {
		// A legacy combo is a list type: only "*" (or another combo) matches.
		return r == "*" || r == nodes.TypeCombo
	}
	return typesCompatible(r, in.Type)
}

// sameConst reports whether coercion left a constant unchanged (no write-back needed).
func sameConst(a, b any) bool {
	switch x := a.(type) {
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || (x != x && y != y))
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	}
	return false
}

func isLinkValue(v any) bool {
	_, ok := v.(graph.Link)
	return ok
}

func stackLines(b []byte) []string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		out = append(out, l+"\n")
	}
	return out
}

var _ = json.Marshal

// staticPrompt is the nodes.DynPrompt view of a prompt being validated (no expansions yet); a
// custom validator reaches it through ctx.Prompt.
type staticPrompt struct{ p *graph.Prompt }

func (s staticPrompt) Node(id string) (*graph.Node, bool) {
	n, ok := s.p.Nodes[id]
	return n, ok
}
func (s staticPrompt) RealID(id string) string    { return id }
func (s staticPrompt) ParentID(id string) string  { return "" }
func (s staticPrompt) DisplayID(id string) string { return id }
func (s staticPrompt) Original() *graph.Prompt    { return s.p }
func (s staticPrompt) NodeIDs() []string          { return append([]string(nil), s.p.IDs...) }
