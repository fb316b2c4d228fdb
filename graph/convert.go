package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ConvertOptions tunes ConvertWorkflowWith.
type ConvertOptions struct {
	// Now gives the time for %date:...% in save nodes' filename_prefix (default time.Now).
	Now func() time.Time
	// Rand picks the options of {a|b} groups in dynamic-prompt text widgets (default: a
	// randomly seeded source). Set it for reproducible conversions.
	Rand *rand.Rand
}

// ConvertWorkflow converts a UI workflow into the API prompt ComfyUI's frontend would queue
// (graphToPrompt): subgraphs flattened with "instance:inner" ids, Reroute/PrimitiveNode/Note
// resolved or dropped, bypassed nodes (mode 4) passed through by type, muted nodes (mode 2)
// dropped, widgets_values mapped to input names with the node definitions in s.
//
// Fallback without a definition: a node whose type s does not know (or every node when s is
// nil) is still emitted with its class_type and its linked inputs, but its widget values
// cannot be named and are left out; the executor then reports the unknown type
// (missing_node_type) or the missing inputs.
func ConvertWorkflow(wf *Workflow, s Schema) (*Prompt, error) {
	return ConvertWorkflowWith(wf, s, ConvertOptions{})
}

// Deliberate differences from the frontend, where it would fail or lose data:
//   - integer literals are kept digit for digit (JS rounds seeds beyond 2^53); float literals
//     are rewritten the way JS prints them (8.0 -> 8);
//   - a link id missing from the links table, or a link from a node that does not exist,
//     counts as unconnected (the frontend throws);
//   - a muted subgraph instance feeding a node drops that input (the frontend throws);
//   - an instance nested inside a subgraph is not expanded when muted/bypassed (the frontend
//     only checks root instances);
//   - legacy group nodes (workflow>Name) are an error unless muted or bypassed; LoadAny then
//     falls back to an embedded API prompt when there is one;
//   - nested object values (e.g. curve data) are maps, so their key order is not kept.
//
// ConvertWorkflowWith is ConvertWorkflow with options.
func ConvertWorkflowWith(wf *Workflow, s Schema, opts ConvertOptions) (p *Prompt, err error) {
	if wf == nil {
		return nil, errors.New("convert workflow: nil workflow")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewSource(time.Now().UnixNano()))
	}
	c := &conv{wf: wf, s: s, opts: opts, byID: map[string]*xnode{}, overrides: map[string]map[string]any{}}
	if err := c.expand(); err != nil {
		return nil, fmt.Errorf("convert workflow: %w", err)
	}
	c.applyPrimitives()
	p, err = c.emit()
	if err != nil {
		return nil, fmt.Errorf("convert workflow: %w", err)
	}
	return p, nil
}

// Frontend-only node types (never sent to the backend).
var virtualTypes = map[string]bool{
	"Reroute": true, "PrimitiveNode": true, "Note": true, "MarkdownNote": true,
	// Common custom-pack virtual nodes.
	"Reroute (rgthree)": true, "SetNode": true, "GetNode": true,
	"Note Plus (mtb)": true, "Label (rgthree)": true, "Bookmark (rgthree)": true,
	"Fast Groups Bypasser (rgthree)": true, "Fast Groups Muter (rgthree)": true,
	"Fast Bypasser (rgthree)": true, "Fast Muter (rgthree)": true,
}

// Node types the frontend renames on load.
var typeRenames = map[string]string{
	"T2IAdapterLoader":         "ControlNetLoader",
	"ConditioningAverage ":     "ConditioningAverage",
	"SDV_img2vid_Conditioning": "SVD_img2vid_Conditioning",
	"Load3DAnimation":          "Load3D",
	"Preview3DAnimation":       "Preview3D",
}

// Save nodes whose filename_prefix gets %Node.widget% / %date:...% replacement.
var saveNodeTypes = map[string]bool{
	"SaveImage": true, "SaveImageAdvanced": true, "SaveSVGNode": true, "SaveVideo": true,
	"SaveAnimatedWEBP": true, "SaveWEBM": true, "SaveAudio": true, "SaveAudioMP3": true,
	"SaveAudioOpus": true, "SaveAudioAdvanced": true, "SaveGLB": true, "SaveAnimatedPNG": true,
	"CLIPSave": true, "VAESave": true, "ModelSave": true, "LoraSave": true, "SaveLatent": true,
}

type conv struct {
	wf   *Workflow
	s    Schema
	opts ConvertOptions

	order []*xnode          // every expanded node, in the frontend's map insertion order
	byID  map[string]*xnode // execution id -> node
	// overrides: execution id -> widget name -> value (PrimitiveNode values, proxy values).
	overrides map[string]map[string]any
	scopes    []*scope
}

// scope is one expanded graph: the root or one subgraph instance.
type scope struct {
	g        *WorkflowGraph
	prefix   string // "" for the root, "12:" / "12:7:" inside instances
	instance *xnode // the instance node this scope expands (nil at the root)
}

// xnode is one node of an expanded graph (the frontend's ExecutableNodeDTO).
type xnode struct {
	id       string // execution id
	n        *WorkflowNode
	typ      string // node type after load-time renames
	sc       *scope
	ns       *NodeSchema    // node definition (nil: unknown or virtual)
	sub      *WorkflowGraph // definition when this is a subgraph instance
	inner    *scope         // expansion of an instance (nil when muted/bypassed)
	virtual  bool
	group    bool // legacy group node (only muted/bypassed ones are accepted)
	live     []liveInput
	outTypes []string

	widgets     []namedValue // mapped widget values (computed lazily)
	widgetsDone bool
	widgetIdx   map[string]int
	promoted    []promotedSlot // instance: boundary inputs shown as widgets
	promoDone   bool
}

type liveInput struct {
	name, typ, link, widget string
	isWidget                bool // the schema declares it as a widget input
}

type namedValue struct {
	name  string
	value any
	set   bool // false: the widget has no value (undefined in JS) and is left out
}

type promotedSlot struct {
	isWidget bool
	value    any
	has      bool
}

func (c *conv) nodeSchema(typ string) *NodeSchema {
	if c.s == nil {
		return nil
	}
	ns, ok := c.s.NodeSchema(typ)
	if !ok {
		return nil
	}
	return ns
}

// expand builds the execution map: root nodes in litegraph's computeExecutionOrder, each
// non-muted, non-bypassed subgraph instance followed by its inner nodes (definition order).
func (c *conv) expand() error {
	root := &scope{g: &c.wf.WorkflowGraph}
	c.scopes = append(c.scopes, root)
	for _, n := range executionOrder(root.g) {
		if err := c.addNode(root, n, nil); err != nil {
			return err
		}
	}
	return nil
}

// maxExpandedNodes bounds subgraph expansion (nested instances multiply).
const maxExpandedNodes = 1 << 20

func (c *conv) addNode(sc *scope, n *WorkflowNode, chain []string) error {
	if len(c.order) >= maxExpandedNodes {
		return fmt.Errorf("workflow expands to more than %d nodes", maxExpandedNodes)
	}
	id := sc.prefix + n.ID
	if _, dup := c.byID[id]; dup {
		return nil // duplicate node id in one graph: the first wins, as in the frontend's map
	}
	typ := n.Type
	if r, ok := typeRenames[typ]; ok {
		typ = r
	}
	x := &xnode{id: id, n: n, typ: typ, sc: sc}
	if strings.HasPrefix(typ, "workflow>") || (strings.HasPrefix(typ, "workflow/") && c.wf.GroupNodes[strings.TrimPrefix(typ, "workflow/")]) {
		if n.Mode != 2 && n.Mode != 4 {
			return fmt.Errorf("node %s: legacy group node %q is not supported (convert it to a subgraph in the ComfyUI editor)", id, typ)
		}
		// A muted or bypassed group node emits nothing; a bypassed one still passes
		// its inputs through (see resolveOutput).
		x.group = true
		c.buildLive(x)
		c.byID[id] = x
		c.order = append(c.order, x)
		return nil
	}
	if sub, ok := c.wf.Subgraphs[typ]; ok {
		x.sub = sub
	} else if virtualTypes[typ] {
		x.virtual = true
	} else {
		x.ns = c.nodeSchema(typ)
	}
	c.buildLive(x)
	c.byID[id] = x
	c.order = append(c.order, x)
	if x.sub != nil && n.Mode != 2 && n.Mode != 4 {
		for _, d := range chain {
			if d == x.sub.ID {
				return fmt.Errorf("node %s: subgraph %s contains itself", id, x.sub.ID)
			}
		}
		if len(chain) > 64 {
			return fmt.Errorf("node %s: subgraphs nested too deeply", id)
		}
		inner := &scope{g: x.sub, prefix: id + ":", instance: x}
		x.inner = inner
		c.scopes = append(c.scopes, inner)
		c.applyProxyOverrides(x)
		next := append(append([]string(nil), chain...), x.sub.ID)
		for _, in := range x.sub.Nodes {
			if err := c.addNode(inner, in, next); err != nil {
				return err
			}
		}
	}
	return nil
}

// buildLive rebuilds the node's input sockets as the frontend has them after loading: the
// definition's inputs in order (every widget input has a socket since frontend 1.16), then
// saved entries the definition does not know; connectivity comes from the saved entries,
// matched by name.
func (c *conv) buildLive(x *xnode) {
	saved := x.n.Inputs
	switch {
	case x.sub != nil:
		used := make([]bool, len(saved))
		for k, s := range x.sub.Inputs {
			li := liveInput{name: s.Name, typ: s.Type}
			j := findInput(saved, s.Name, used)
			if j < 0 && s.Name == "" && k < len(saved) && !used[k] {
				j = k
			}
			if j >= 0 {
				used[j] = true
				li.link, li.widget = saved[j].Link, saved[j].Widget
			}
			x.live = append(x.live, li)
		}
		for _, s := range x.sub.Outputs {
			x.outTypes = append(x.outTypes, s.Type)
		}
	case x.ns != nil:
		used := make([]bool, len(saved))
		for _, si := range x.ns.Inputs {
			li := liveInput{name: si.Name, typ: si.Type, isWidget: si.Widget && !si.ForceInput}
			if li.isWidget {
				li.widget = si.Name
			}
			if j := findInput(saved, si.Name, used); j >= 0 {
				used[j] = true
				li.link = saved[j].Link
				if saved[j].Widget != "" {
					li.widget = saved[j].Widget
				}
			}
			x.live = append(x.live, li)
		}
		for j, s := range saved {
			if !used[j] {
				x.live = append(x.live, liveInput{name: s.Name, typ: s.Type, link: s.Link, widget: s.Widget})
			}
		}
		x.outTypes = append(x.outTypes, x.ns.Outputs...)
	default:
		for _, s := range saved {
			x.live = append(x.live, liveInput{name: s.Name, typ: s.Type, link: s.Link, widget: s.Widget})
		}
		for _, o := range x.n.Outputs {
			x.outTypes = append(x.outTypes, o.Type)
		}
	}
}

func findInput(saved []WorkflowInput, name string, used []bool) int {
	for j, s := range saved {
		if !used[j] && s.Name == name && name != "" {
			return j
		}
	}
	return -1
}

// executionOrder is litegraph's computeExecutionOrder: Kahn's algorithm with a FIFO queue,
// starting from nodes without connected inputs in document order; nodes left in cycles
// follow in JavaScript object-key order.
func executionOrder(g *WorkflowGraph) []*WorkflowNode {
	remaining := make(map[*WorkflowNode]int, len(g.Nodes))
	var queue []*WorkflowNode
	for _, n := range g.Nodes {
		if g.Node(n.ID) != n {
			continue // duplicate id
		}
		cnt := 0
		for _, in := range n.Inputs {
			if in.Link != "" {
				cnt++
			}
		}
		if cnt == 0 {
			queue = append(queue, n)
		} else {
			remaining[n] = cnt
		}
	}
	out := make([]*WorkflowNode, 0, len(g.Nodes))
	done := make(map[*WorkflowNode]bool, len(g.Nodes))
	visited := map[string]bool{}
	for head := 0; head < len(queue); head++ {
		n := queue[head]
		out = append(out, n)
		done[n] = true
		for _, o := range n.Outputs {
			for _, lid := range o.Links {
				l := g.Link(lid)
				if l == nil || visited[l.ID] {
					continue
				}
				visited[l.ID] = true
				t := g.Node(l.TargetID)
				if t == nil {
					continue
				}
				if r, ok := remaining[t]; ok {
					r--
					remaining[t] = r
					if r == 0 {
						delete(remaining, t)
						queue = append(queue, t)
					}
				}
			}
		}
	}
	if len(remaining) > 0 {
		var rest []string
		byID := map[string]*WorkflowNode{}
		for _, n := range g.Nodes {
			if !done[n] && g.Node(n.ID) == n {
				rest = append(rest, n.ID)
				byID[n.ID] = n
			}
		}
		for _, id := range jsKeyOrder(rest) {
			out = append(out, byID[id])
		}
	}
	return out
}

// jsKeyOrder orders keys as a JavaScript object enumerates them: canonical array-index keys
// ascending, then the others in insertion order. The frontend builds the prompt in a JS
// object, so its JSON follows this order.
func jsKeyOrder(keys []string) []string {
	var idx []uint64
	idxKey := map[uint64]string{}
	var other []string
	for _, k := range keys {
		if n, ok := arrayIndex(k); ok {
			if _, dup := idxKey[n]; !dup {
				idx = append(idx, n)
				idxKey[n] = k
			}
			continue
		}
		other = append(other, k)
	}
	if len(idx) == 0 {
		return keys
	}
	sortUint64(idx)
	out := make([]string, 0, len(keys))
	for _, n := range idx {
		out = append(out, idxKey[n])
	}
	return append(out, other...)
}

func arrayIndex(k string) (uint64, bool) {
	if k == "" || len(k) > 10 || (len(k) > 1 && k[0] == '0') {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' {
			return 0, false
		}
		n = n*10 + uint64(k[i]-'0')
	}
	return n, n < math.MaxUint32
}

func sortUint64(a []uint64) { sort.Slice(a, func(i, j int) bool { return a[i] < a[j] }) }

// ---------------------------------------------------------------------------------------
// Widget values

// widgetSlot is one entry of a node's widget list (what widgets_values positions map to).
type widgetSlot struct {
	name    string
	kind    int // slotValue, slotControl, slotFilter, slotUpload
	in      *SchemaInput
	nameCtl bool // control added by the seed/noise_seed name rule only
}

const (
	slotValue = iota
	slotControl
	slotFilter
	slotUpload
)

func hasControl(in *SchemaInput) (ctl, byName bool) {
	if in.ControlAfterGenerate {
		return true, false
	}
	if !in.NoControlAfterGenerate && in.Type == "INT" && (in.Name == "seed" || in.Name == "noise_seed") {
		return true, true
	}
	return false, false
}

func widgetSlots(ns *NodeSchema) []widgetSlot {
	var slots []widgetSlot
	lastReq := -1
	upload := false
	for i := range ns.Inputs {
		if !ns.Inputs[i].Optional {
			lastReq = i
		}
		if ns.Inputs[i].ImageUpload {
			upload = true
		}
	}
	if upload && lastReq < 0 {
		slots = append(slots, widgetSlot{name: "upload", kind: slotUpload})
	}
	for i := range ns.Inputs {
		in := &ns.Inputs[i]
		if in.Widget && !in.ForceInput {
			slots = append(slots, widgetSlot{name: in.Name, kind: slotValue, in: in})
			if ctl, byName := hasControl(in); ctl {
				slots = append(slots, widgetSlot{name: in.Name, kind: slotControl, in: in, nameCtl: byName})
				if in.Type == "COMBO" {
					slots = append(slots, widgetSlot{name: in.Name, kind: slotFilter, in: in, nameCtl: byName})
				}
			}
		}
		if i == lastReq && upload {
			slots = append(slots, widgetSlot{name: "upload", kind: slotUpload})
		}
	}
	return slots
}

func isControlValue(v any) bool {
	switch x := v.(type) {
	case bool:
		return true
	case string:
		switch x {
		case "fixed", "increment", "decrement", "randomize", "increment-wrap":
			return true
		}
	}
	return false
}

// migrateForceInput drops the dummy values pre-1.16 frontends saved for forceInput inputs
// (upstream migrateWidgetsValues): only when the count matches exactly.
func migrateForceInput(ns *NodeSchema, values []any) []any {
	hasForce := false
	var flags []bool
	for i := range ns.Inputs {
		in := &ns.Inputs[i]
		if !(in.Widget && !in.ForceInput) && !in.ForceInput {
			continue
		}
		if in.ForceInput {
			hasForce = true
		}
		flags = append(flags, in.ForceInput)
		if ctl, _ := hasControl(in); ctl {
			flags = append(flags, false)
		}
	}
	if !hasForce || len(flags) != len(values) {
		return values
	}
	out := make([]any, 0, len(values))
	for i, v := range values {
		if !flags[i] {
			out = append(out, v)
		}
	}
	return out
}

// nodeWidgets maps the node's widgets_values to its widget inputs (value slots only).
func (c *conv) nodeWidgets(x *xnode) []namedValue {
	if x.widgetsDone {
		return x.widgets
	}
	x.widgetsDone = true
	if x.ns == nil {
		return nil
	}
	slots := widgetSlots(x.ns)
	values := x.n.WidgetsValues
	dict := x.n.WidgetsDict
	if dict == nil {
		values = migrateForceInput(x.ns, values)
		// A node whose definition gained a name-rule control widget since the file was saved:
		// if the value count matches the list without those slots and the values there are
		// not control values, assume there is no control slot.
		var without []widgetSlot
		mismatch := false
		for _, s := range slots {
			if (s.kind == slotControl || s.kind == slotFilter) && s.nameCtl {
				continue
			}
			without = append(without, s)
		}
		if len(without) != len(slots) && len(values) == len(without) {
			for k, s := range slots {
				if s.kind == slotControl && s.nameCtl && k < len(values) && !isControlValue(values[k]) {
					mismatch = true
				}
			}
			if mismatch {
				slots = without
			}
		}
	}
	ov := c.overrides[x.id]
	x.widgetIdx = map[string]int{}
	for k, s := range slots {
		if s.kind != slotValue {
			continue
		}
		var v any
		set := false
		if dict != nil {
			v, set = dict[s.name]
		} else if k < len(values) {
			v, set = values[k], true
		}
		if set {
			v = jsNormalize(v)
		} else {
			v, set = widgetDefault(s.in)
		}
		if ov != nil {
			if o, ok := ov[s.name]; ok {
				v, set = o, true
			}
		}
		// Load-time fixups of the frontend.
		if s.in.Type == "COMBO" && set && v == nil && len(s.in.Options) > 0 {
			v = s.in.Options[0]
		}
		if (x.typ == "KSampler" || x.typ == "KSamplerAdvanced") && s.name == "sampler_name" {
			if str, ok := v.(string); ok && strings.HasPrefix(str, "sample_") {
				v = str[len("sample_"):]
			}
		}
		if _, dup := x.widgetIdx[s.name]; dup {
			continue
		}
		x.widgetIdx[s.name] = len(x.widgets)
		x.widgets = append(x.widgets, namedValue{name: s.name, value: v, set: set})
	}
	return x.widgets
}

// widgetValue returns the current value of widget name on x (after primitives and fixups).
func (c *conv) widgetValue(x *xnode, name string) (any, bool) {
	ws := c.nodeWidgets(x)
	if i, ok := x.widgetIdx[name]; ok && ws[i].set {
		return ws[i].value, true
	}
	return nil, false
}

func (c *conv) hasWidget(x *xnode, name string) bool {
	c.nodeWidgets(x)
	_, ok := x.widgetIdx[name]
	return ok
}

func widgetDefault(in *SchemaInput) (any, bool) {
	if in.Default != nil {
		switch in.Type {
		case "COMBO":
			// The frontend uses the default only when truthy, else the first option.
			if s, ok := in.Default.(string); ok && s == "" && len(in.Options) > 0 {
				return in.Options[0], true
			}
		}
		return goToJSValue(in.Default), true
	}
	switch in.Type {
	case "INT", "FLOAT":
		return json.Number("0"), true
	case "STRING":
		return "", true
	case "BOOLEAN":
		return false, true
	case "COMBO":
		if len(in.Options) > 0 {
			return in.Options[0], true
		}
	}
	return nil, false
}

// goToJSValue turns a Go default into the value forms of prompts, numbers written the way
// JavaScript's JSON.stringify writes them (1.0 -> 1).
func goToJSValue(v any) any {
	switch x := v.(type) {
	case int:
		return json.Number(strconv.FormatInt(int64(x), 10))
	case int32:
		return json.Number(strconv.FormatInt(int64(x), 10))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case uint64:
		return json.Number(strconv.FormatUint(x, 10))
	case uint32:
		return json.Number(strconv.FormatUint(uint64(x), 10))
	case uint:
		return json.Number(strconv.FormatUint(uint64(x), 10))
	case float32:
		return jsNumber(float64(x))
	case float64:
		return jsNumber(x)
	case json.Number:
		return jsNormalize(x)
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	}
	return v
}

// jsNumber formats f as JavaScript's JSON.stringify does (null for NaN/Infinity).
func jsNumber(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	if f == 0 {
		return json.Number("0")
	}
	a := math.Abs(f)
	if a >= 1e21 || a < 1e-6 {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		// Go writes e+21 / e-07; JavaScript e+21 / e-7.
		if i := strings.IndexAny(s, "e"); i >= 0 {
			mant, exp := s[:i], s[i+1:]
			sign := exp[0]
			digits := strings.TrimLeft(exp[1:], "0")
			if digits == "" {
				digits = "0"
			}
			s = mant + "e" + string(sign) + digits
		}
		return json.Number(s)
	}
	return json.Number(strconv.FormatFloat(f, 'f', -1, 64))
}

// jsNormalize rewrites float-literal numbers in the form JavaScript would re-serialise them
// (8.0 -> 8); integer literals are kept digit for digit (seeds beyond 2^53).
func jsNormalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if strings.ContainsAny(s, ".eE") {
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				return jsNumber(f)
			}
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsNormalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsNormalize(e)
		}
		return out
	}
	return v
}

func wrapArray(v any) any {
	if a, ok := v.([]any); ok {
		return map[string]any{"__value__": a}
	}
	return v
}

// ---------------------------------------------------------------------------------------
// PrimitiveNode values and subgraph promoted widgets

// applyPrimitives copies each PrimitiveNode's value into the widget of every node it feeds
// (the frontend's applyToGraph), in every expanded graph.
func (c *conv) applyPrimitives() {
	for _, sc := range c.scopes {
		for _, p := range sc.g.Nodes {
			if p.Type != "PrimitiveNode" || len(p.Outputs) == 0 || len(p.Outputs[0].Links) == 0 {
				continue
			}
			if len(p.WidgetsValues) == 0 {
				continue
			}
			v := jsNormalize(p.WidgetsValues[0])
			if on, _ := p.Properties["Run widget replace on values"].(bool); on {
				if s, ok := v.(string); ok && s != "" {
					v = c.textReplace(s)
				}
			}
			for _, lid := range p.Outputs[0].Links {
				l := sc.g.Link(lid)
				if l == nil {
					continue
				}
				t := sc.g.Node(l.TargetID)
				if t == nil {
					continue
				}
				tx := c.byID[sc.prefix+t.ID]
				if tx == nil {
					continue
				}
				wname := ""
				for _, in := range t.Inputs {
					if in.Link == lid {
						wname = in.Widget
						break
					}
				}
				if wname == "" {
					continue
				}
				if tx.sub != nil || c.hasWidgetNoCompute(tx, wname) {
					c.setOverride(tx.id, wname, v)
				}
			}
		}
	}
}

// hasWidgetNoCompute reports whether x's definition has a widget named name (without
// computing values, which must wait until all overrides are known).
func (c *conv) hasWidgetNoCompute(x *xnode, name string) bool {
	if x.ns == nil {
		return false
	}
	for _, s := range widgetSlots(x.ns) {
		if s.kind == slotValue && s.name == name {
			return true
		}
	}
	return false
}

func (c *conv) setOverride(id, name string, v any) {
	m := c.overrides[id]
	if m == nil {
		m = map[string]any{}
		c.overrides[id] = m
	}
	m[name] = v
}

// applyProxyOverrides reads properties.proxyWidgets of a subgraph instance: entries of the
// form [innerNodeId, widgetName, source?, {"value": v}] override that inner widget for this
// instance.
func (c *conv) applyProxyOverrides(x *xnode) {
	pv, ok := x.n.Properties["proxyWidgets"]
	if !ok {
		return
	}
	if s, ok := pv.(string); ok {
		parsed, err := parseJSON([]byte(s), true)
		if err != nil {
			return
		}
		pv = plain(parsed)
	}
	list, ok := pv.([]any)
	if !ok {
		return
	}
	for _, e := range list {
		ent, ok := e.([]any)
		if !ok || len(ent) < 4 {
			continue
		}
		inner := idString(ent[0])
		wname, _ := ent[1].(string)
		vm, ok := ent[3].(map[string]any)
		if inner == "" || wname == "" || !ok {
			continue
		}
		if v, ok := vm["value"]; ok {
			c.setOverride(x.id+":"+inner, wname, jsNormalize(v))
		}
	}
}

// promotedValue returns the instance's widget value for boundary input k, if that input is
// shown as a widget on the instance.
func (c *conv) promotedValue(inst *xnode, k int) (any, bool) {
	if !inst.promoDone {
		inst.promoDone = true
		j := 0
		for bk := range inst.sub.Inputs {
			ps := promotedSlot{}
			tx, wname := c.boundaryWidget(inst, bk)
			if tx != nil {
				ps.isWidget = true
				var v any
				if j < len(inst.n.WidgetsValues) {
					v = inst.n.WidgetsValues[j]
				}
				j++
				if v != nil {
					ps.value, ps.has = jsNormalize(v), true
				} else if iv, ok := c.widgetValue(tx, wname); ok {
					ps.value, ps.has = iv, true
				}
			}
			inst.promoted = append(inst.promoted, ps)
		}
	}
	if k < 0 || k >= len(inst.promoted) || !inst.promoted[k].isWidget || !inst.promoted[k].has {
		return nil, false
	}
	return inst.promoted[k].value, true
}

// boundaryWidget finds the inner widget a boundary input k of an instance is promoted from:
// the target of its first inner link, when that target input is a widget input.
func (c *conv) boundaryWidget(inst *xnode, k int) (*xnode, string) {
	if inst.inner == nil {
		return nil, ""
	}
	g := inst.sub
	var link *WorkflowLink
	for _, lid := range g.Inputs[k].LinkIDs {
		if l := g.Link(lid); l != nil && l.OriginID == subgraphInputID {
			link = l
			break
		}
	}
	if link == nil {
		for _, l := range g.Links {
			if l.OriginID == subgraphInputID && l.OriginSlot == k {
				link = l
				break
			}
		}
	}
	if link == nil {
		return nil, ""
	}
	tx := c.byID[inst.inner.prefix+link.TargetID]
	if tx == nil {
		return nil, ""
	}
	for _, li := range tx.live {
		if li.link == link.ID {
			if li.widget != "" && c.hasWidget(tx, li.widget) {
				return tx, li.widget
			}
			return nil, ""
		}
	}
	return nil, ""
}

// ---------------------------------------------------------------------------------------
// Link resolution (ExecutableNodeDTO.resolveInput / resolveOutput)

type resolved struct {
	link     Link
	value    any
	hasValue bool // a widget value instead of a link
}

type visitKey struct {
	id   string
	out  bool
	slot int
}

var errCircular = errors.New("circular reference")

func (c *conv) resolveInput(x *xnode, slot int, wantType string, typed bool, visited map[visitKey]bool) (*resolved, error) {
	key := visitKey{x.id, false, slot}
	if visited[key] {
		return nil, fmt.Errorf("%w while resolving input %d of node %s", errCircular, slot, x.id)
	}
	visited[key] = true
	if slot < 0 || slot >= len(x.live) {
		return nil, nil
	}
	in := x.live[slot]
	if in.link == "" {
		return nil, nil
	}
	g := x.sc.g
	l := g.Link(in.link)
	if l == nil {
		return nil, nil // dangling link id: treated as unconnected
	}
	if !typed {
		wantType = in.typ
	}
	if l.OriginID == subgraphInputID && x.sc.instance != nil {
		inst := x.sc.instance
		if l.OriginSlot < 0 || l.OriginSlot >= len(inst.live) {
			return nil, nil
		}
		if inst.live[l.OriginSlot].link == "" {
			if v, ok := c.promotedValue(inst, l.OriginSlot); ok {
				return &resolved{value: v, hasValue: true}, nil
			}
			return nil, nil
		}
		r, err := c.resolveInput(inst, l.OriginSlot, "", false, visited)
		if err != nil || r != nil {
			return r, err
		}
		// Linked to something that carries no link (a PrimitiveNode): the value it set on
		// the instance's widget.
		if v, ok := c.overrides[inst.id][inst.live[l.OriginSlot].name]; ok {
			return &resolved{value: v, hasValue: true}, nil
		}
		return nil, nil
	}
	o := c.byID[x.sc.prefix+l.OriginID]
	if o == nil {
		return nil, nil // link from a node that does not exist: dropped
	}
	return c.resolveOutput(o, l.OriginSlot, wantType, visited)
}

func (c *conv) resolveOutput(o *xnode, slot int, wantType string, visited map[visitKey]bool) (*resolved, error) {
	key := visitKey{o.id, true, slot}
	if visited[key] {
		return nil, fmt.Errorf("%w while resolving output %d of node %s", errCircular, slot, o.id)
	}
	visited[key] = true
	if o.group {
		if o.n.Mode != 4 {
			return &resolved{link: Link{NodeID: o.id, Slot: slot}}, nil // muted: removed later
		}
		// ExecutableGroupNodeDTO's bypass: the same slot, else the first input, whose type
		// equals the wanted type exactly.
		cands := append([]int{slot}, make([]int, len(o.live))...)
		for i := range o.live {
			cands[i+1] = i
		}
		for _, i := range cands {
			if i >= 0 && i < len(o.live) && o.live[i].typ == wantType {
				return c.resolveInput(o, i, "", false, visited)
			}
		}
		return nil, nil
	}
	if o.n.Mode == 4 {
		idx := c.bypassSlot(o, slot, wantType)
		if idx < 0 {
			return nil, nil
		}
		return c.resolveInput(o, idx, "", false, visited)
	}
	if o.sub != nil {
		if o.inner == nil {
			// Muted instance: a link to it, removed with the other links to omitted nodes.
			return &resolved{link: Link{NodeID: o.id, Slot: slot}}, nil
		}
		g := o.sub
		var link *WorkflowLink
		if slot >= 0 && slot < len(g.Outputs) {
			for _, lid := range g.Outputs[slot].LinkIDs {
				if l := g.Link(lid); l != nil && l.TargetID == subgraphOutputID {
					link = l
					break
				}
			}
		}
		if link == nil {
			for _, l := range g.Links {
				if l.TargetID == subgraphOutputID && l.TargetSlot == slot {
					link = l
					break
				}
			}
		}
		if link == nil {
			return nil, nil
		}
		if link.OriginID == subgraphInputID {
			// Output wired straight to an input: pass the instance input through.
			return c.resolveInput(o, link.OriginSlot, "", false, visited)
		}
		inner := c.byID[o.inner.prefix+link.OriginID]
		if inner == nil {
			return nil, nil
		}
		return c.resolveOutput(inner, link.OriginSlot, wantType, visited)
	}
	if o.virtual {
		if o.typ == "GetNode" {
			if set := c.findSetNode(o); set != nil {
				return c.resolveInput(set, 0, wantType, true, visited)
			}
			return nil, nil
		}
		if slot >= 0 && slot < len(o.live) {
			return c.resolveInput(o, slot, wantType, true, visited)
		}
		return nil, nil
	}
	return &resolved{link: Link{NodeID: o.id, Slot: slot}}, nil
}

// findSetNode finds the KJNodes SetNode with the GetNode's constant name in the same graph.
func (c *conv) findSetNode(get *xnode) *xnode {
	if len(get.n.WidgetsValues) == 0 {
		return nil
	}
	name := get.n.WidgetsValues[0]
	for _, n := range get.sc.g.Nodes {
		if n.Type == "SetNode" && len(n.WidgetsValues) > 0 && n.WidgetsValues[0] == name {
			return c.byID[get.sc.prefix+n.ID]
		}
	}
	return nil
}

// bypassSlot chooses the input a bypassed node passes to its output slot (frontend rule).
func (c *conv) bypassSlot(o *xnode, slot int, wantType string) int {
	ins := o.live
	if len(ins) == 0 {
		return -1
	}
	if wantType == "*" || wantType == "" {
		if slot >= 0 && len(ins) > slot {
			return slot
		}
		return 0
	}
	outType := ""
	if slot >= 0 && slot < len(o.outTypes) {
		outType = o.outTypes[slot]
	}
	if slot >= 0 && slot < len(ins) && validConnection(ins[slot].typ, outType) && validConnection(ins[slot].typ, wantType) {
		return slot
	}
	for i, in := range ins {
		if in.typ == wantType {
			return i
		}
	}
	for i, in := range ins {
		if validConnection(in.typ, outType) && validConnection(in.typ, wantType) {
			return i
		}
	}
	return -1
}

// validConnection is litegraph's isValidConnection for type strings.
func validConnection(a, b string) bool {
	if a == "*" {
		a = ""
	}
	if b == "*" {
		b = ""
	}
	if a == "" || b == "" || a == b {
		return true
	}
	a, b = strings.ToLower(a), strings.ToLower(b)
	if !strings.Contains(a, ",") && !strings.Contains(b, ",") {
		return a == b
	}
	for _, x := range strings.Split(a, ",") {
		for _, y := range strings.Split(b, ",") {
			if x == y {
				return true
			}
		}
	}
	return false
}

// ---------------------------------------------------------------------------------------
// Emit

func (c *conv) emit() (*Prompt, error) {
	type entry struct {
		id string
		n  *Node
	}
	var entries []entry
	for _, x := range c.order {
		if x.virtual || x.sub != nil || x.group || x.n.Mode == 2 || x.n.Mode == 4 {
			continue
		}
		node := &Node{ClassType: x.typ}
		for _, w := range c.nodeWidgets(x) {
			if !w.set {
				continue
			}
			v := w.value
			if x.ns != nil {
				if si := schemaInput(x.ns, w.name); si != nil {
					if si.DynamicPrompts {
						if s, ok := v.(string); ok {
							v = processDynamicPrompt(s, c.opts.Rand)
						}
					}
				}
			}
			if w.name == "filename_prefix" && saveNodeTypes[x.typ] {
				if s, ok := v.(string); ok {
					v = c.textReplace(s)
				}
			}
			if si := schemaInput(x.ns, w.name); si != nil && si.Type == "CURVE" && v != nil {
				// Newer frontends tag curve widget values.
				node.Inputs.Set(w.name, map[string]any{"__type__": "CURVE", "__value__": v})
				continue
			}
			node.Inputs.Set(w.name, wrapArray(v))
		}
		for i, li := range x.live {
			r, err := c.resolveInput(x, i, "", false, map[visitKey]bool{})
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", x.id, err)
			}
			if r == nil {
				continue
			}
			if r.hasValue {
				node.Inputs.Set(li.name, wrapArray(r.value))
				continue
			}
			node.Inputs.Set(li.name, r.link)
		}
		title := x.n.Title
		if !x.n.HasTitle {
			title = x.typ
			if x.ns != nil && x.ns.DisplayName != "" {
				title = x.ns.DisplayName
			}
		}
		node.Meta = map[string]any{"title": title}
		node.Inputs.Keys = jsKeyOrder(node.Inputs.Keys)
		entries = append(entries, entry{x.id, node})
	}
	p := NewPrompt()
	ids := make([]string, 0, len(entries))
	byID := make(map[string]*Node, len(entries))
	for _, e := range entries {
		if _, dup := byID[e.id]; dup {
			continue
		}
		ids = append(ids, e.id)
		byID[e.id] = e.n
	}
	for _, id := range jsKeyOrder(ids) {
		p.Add(id, byID[id])
	}
	// Remove inputs linked to nodes that are not in the prompt (muted sources).
	for _, id := range p.IDs {
		n := p.Nodes[id]
		for _, k := range append([]string(nil), n.Inputs.Keys...) {
			if l, ok := n.Inputs.Values[k].(Link); ok {
				if _, ok := p.Nodes[l.NodeID]; !ok {
					n.Inputs.Delete(k)
				}
			}
		}
	}
	return p, nil
}

func schemaInput(ns *NodeSchema, name string) *SchemaInput {
	for i := range ns.Inputs {
		if ns.Inputs[i].Name == name {
			return &ns.Inputs[i]
		}
	}
	return nil
}

// ---------------------------------------------------------------------------------------
// Text replacement (%Node.widget%, %date:...%) and dynamic prompts

var replacePattern = regexp.MustCompile(`%([^%]+)%`)

// textReplace is the frontend's applyTextReplacements over all nodes of the workflow.
func (c *conv) textReplace(s string) string {
	return replacePattern.ReplaceAllStringFunc(s, func(match string) string {
		text := match[1 : len(match)-1]
		parts := strings.Split(text, ".")
		if len(parts) != 2 {
			if strings.HasPrefix(parts[0], "date:") {
				return formatDate(parts[0][len("date:"):], c.opts.Now())
			}
			return match
		}
		x := c.findReplaceNode(parts[0])
		if x == nil {
			return match
		}
		if !c.hasWidget(x, parts[1]) {
			return match
		}
		v, _ := c.widgetValue(x, parts[1])
		return replaceUnsafe.Replace(jsString(v))
	})
}

var replaceUnsafe = func() *strings.Replacer {
	var pairs []string
	for _, ch := range []string{"/", "?", "<", ">", "\\", ":", "*", "|", "\""} {
		pairs = append(pairs, ch, "_")
	}
	for b := 0; b < 0x20; b++ {
		pairs = append(pairs, string(rune(b)), "_")
	}
	pairs = append(pairs, "\x7f", "_")
	return strings.NewReplacer(pairs...)
}()

// findReplaceNode finds the first node (root, then subgraph definitions) whose
// "Node name for S&R" property (default: its type, except for save nodes) equals name, else
// whose title does.
func (c *conv) findReplaceNode(name string) *xnode {
	var byTitle *xnode
	for _, sc := range c.scopes {
		for _, n := range sc.g.Nodes {
			x := c.byID[sc.prefix+n.ID]
			if x == nil {
				continue
			}
			sr, has := n.Properties["Node name for S&R"].(string)
			if !has && x.ns != nil && !saveNodeTypes[x.typ] {
				sr, has = x.typ, true
			}
			if has && sr == name {
				return x
			}
			title := n.Title
			if !n.HasTitle {
				title = x.typ
				if x.ns != nil && x.ns.DisplayName != "" {
					title = x.ns.DisplayName
				}
			}
			if byTitle == nil && title == name {
				byTitle = x
			}
		}
	}
	return byTitle
}

// jsString is JavaScript's String(v) for widget values.
func jsString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		if x {
			return "true"
		}
		return "false"
	case json.Number:
		return string(x)
	}
	b, err := MarshalCompact(v)
	if err != nil {
		return ""
	}
	return string(b)
}

var datePattern = regexp.MustCompile(`dd?|MM?|hh?|mm?|ss?|yyy?y?`)

// formatDate is the frontend's formatDate: yyyy, yy, M/MM, d/dd, h/hh, m/mm, s/ss.
func formatDate(f string, t time.Time) string {
	return datePattern.ReplaceAllStringFunc(f, func(tok string) string {
		var n int
		switch tok[0] {
		case 'y':
			switch tok {
			case "yy":
				y := strconv.Itoa(t.Year())
				if len(y) > 2 {
					return y[2:]
				}
				return ""
			case "yyyy":
				return strconv.Itoa(t.Year())
			}
			return tok
		case 'd':
			n = t.Day()
		case 'M':
			n = int(t.Month())
		case 'h':
			n = t.Hour()
		case 'm':
			n = t.Minute()
		case 's':
			n = t.Second()
		}
		s := strconv.Itoa(n)
		for len(s) < len(tok) {
			s = "0" + s
		}
		return s
	})
}

var commentPattern = regexp.MustCompile(`/\*[\s\S]*?\*/|//.*`)

// processDynamicPrompt strips C-style comments and replaces each {a|b|c} group (nestable;
// a backslash escapes the next character and is kept) by one option chosen with rng.
func processDynamicPrompt(s string, rng *rand.Rand) string {
	if !strings.ContainsAny(s, "{/\\") {
		return s
	}
	text := []rune(commentPattern.ReplaceAllString(s, ""))
	return dynExpand(text, rng, 0)
}

func dynExpand(text []rune, rng *rand.Rand, depth int) string {
	var out strings.Builder
	i := 0
	for i < len(text) {
		ch := text[i]
		i++
		switch ch {
		case '\\':
			out.WriteRune('\\')
			if i < len(text) {
				out.WriteRune(text[i])
				i++
			} else {
				out.WriteString("undefined") // JS: '\\' + input[i++] past the end
			}
		case '{':
			var opts [][]rune
			var cur []rune
			d := 0
			for i < len(text) {
				c := text[i]
				i++
				if c == '\\' {
					cur = append(cur, '\\')
					if i < len(text) {
						cur = append(cur, text[i])
						i++
					} else {
						cur = append(cur, []rune("undefined")...)
					}
					continue
				}
				if c == '{' {
					d++
				} else if c == '}' {
					if d == 0 {
						break
					}
					d--
				} else if c == '|' && d == 0 {
					opts = append(opts, cur)
					cur = nil
					continue
				}
				cur = append(cur, c)
			}
			opts = append(opts, cur)
			chosen := opts[rng.Intn(len(opts))]
			if depth < 100 {
				out.WriteString(dynExpand(chosen, rng, depth+1))
			} else {
				out.WriteString(string(chosen))
			}
		default:
			out.WriteRune(ch)
		}
	}
	return out.String()
}
