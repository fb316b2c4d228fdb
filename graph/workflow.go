package graph

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Workflow is a UI-format workflow (what the ComfyUI editor saves), schema 0.4 or 1, with
// its subgraph definitions. Both link forms (0.4 arrays, schema-1 objects) are normalised.
// Ids (nodes, links) are kept as strings: integers in their decimal form.
type Workflow struct {
	WorkflowGraph
	Version float64 // 0.4, 1, ...; 0 when absent
	// Subgraphs holds every subgraph definition (all nesting levels) by its UUID.
	Subgraphs map[string]*WorkflowGraph
	// GroupNodes holds the names of legacy group-node definitions (extra.groupNodes).
	GroupNodes map[string]bool
	Extra      map[string]any
}

// WorkflowGraph is one graph: the root workflow or a subgraph definition.
type WorkflowGraph struct {
	ID    string // subgraph UUID ("" for the root)
	Name  string
	Nodes []*WorkflowNode
	Links []*WorkflowLink
	// Subgraph boundary slots (definitions only), in order.
	Inputs  []SubgraphSlot
	Outputs []SubgraphSlot

	nodeByID map[string]*WorkflowNode
	linkByID map[string]*WorkflowLink
}

// WorkflowNode is one node of a UI workflow.
type WorkflowNode struct {
	ID       string
	Type     string
	Mode     int // 0 normal, 2 muted, 4 bypassed (1, 3 run like 0)
	Title    string
	HasTitle bool
	Inputs   []WorkflowInput
	Outputs  []WorkflowOutput
	// Properties is the free-form "properties" object.
	Properties map[string]any
	// WidgetsValues is the list form of widgets_values; WidgetsDict the object form
	// (keyed by widget name). At most one is set.
	WidgetsValues []any
	WidgetsDict   map[string]any
}

// WorkflowInput is one input socket entry of a node.
type WorkflowInput struct {
	Name   string
	Type   string
	Link   string // link id, "" when unconnected
	Widget string // widget name when the socket belongs to a widget
}

// WorkflowOutput is one output slot of a node.
type WorkflowOutput struct {
	Name   string
	Type   string
	Links  []string
	Widget string // PrimitiveNode: the widget it feeds
}

// WorkflowLink is a link from output OriginSlot of OriginID to input TargetSlot of TargetID.
// In a subgraph definition, origin "-10" is the input boundary and target "-20" the output one.
type WorkflowLink struct {
	ID         string
	OriginID   string
	OriginSlot int
	TargetID   string
	TargetSlot int
	Type       string
}

// SubgraphSlot is a boundary input or output of a subgraph definition.
type SubgraphSlot struct {
	ID      string
	Name    string
	Type    string
	LinkIDs []string
}

const (
	subgraphInputID  = "-10"
	subgraphOutputID = "-20"
)

// Node returns the node of this graph with id.
func (g *WorkflowGraph) Node(id string) *WorkflowNode {
	if g.nodeByID == nil {
		g.index()
	}
	return g.nodeByID[id]
}

// Link returns the link of this graph with id.
func (g *WorkflowGraph) Link(id string) *WorkflowLink {
	if g.linkByID == nil {
		g.index()
	}
	return g.linkByID[id]
}

func (g *WorkflowGraph) index() {
	g.nodeByID = make(map[string]*WorkflowNode, len(g.Nodes))
	for _, n := range g.Nodes {
		if _, dup := g.nodeByID[n.ID]; !dup {
			g.nodeByID[n.ID] = n
		}
	}
	g.linkByID = make(map[string]*WorkflowLink, len(g.Links))
	for _, l := range g.Links {
		g.linkByID[l.ID] = l
	}
}

// ParseWorkflow parses a UI-format workflow (schema 0.4 or 1, subgraph definitions included).
// Unknown fields are ignored; old-file forms are tolerated (numeric strings for slots, string
// or integer ids, bare NaN/Infinity, which become null as in the frontend).
func ParseWorkflow(data []byte) (*Workflow, error) {
	v, err := parseJSON(data, true)
	if err != nil {
		return nil, fmt.Errorf("parse workflow: %w", err)
	}
	o, ok := v.(*jobj)
	if !ok {
		return nil, fmt.Errorf("parse workflow: top level is %s, want an object", kindOf(v))
	}
	wf, err := workflowFromObject(o)
	if err != nil {
		return nil, fmt.Errorf("parse workflow: %w", err)
	}
	return wf, nil
}

func workflowFromObject(o *jobj) (*Workflow, error) {
	wf := &Workflow{Subgraphs: map[string]*WorkflowGraph{}, GroupNodes: map[string]bool{}}
	if v, ok := o.get("version"); ok {
		if f, ok := numberOf(v); ok {
			wf.Version = f
		}
	}
	nodes, ok := o.get("nodes")
	if !ok {
		return nil, fmt.Errorf("no \"nodes\" array (not a UI workflow)")
	}
	if err := readGraph(&wf.WorkflowGraph, o, false); err != nil {
		return nil, err
	}
	_ = nodes
	if ev, ok := o.get("extra"); ok {
		if eo, ok := ev.(*jobj); ok {
			wf.Extra = plain(eo).(map[string]any)
			if gn, ok := eo.get("groupNodes"); ok {
				if gno, ok := gn.(*jobj); ok {
					for _, k := range gno.keys {
						wf.GroupNodes[k] = true
					}
				}
			}
		}
	}
	if err := readDefinitions(wf, o, 0); err != nil {
		return nil, err
	}
	return wf, nil
}

func readDefinitions(wf *Workflow, o *jobj, depth int) error {
	if depth > 64 {
		return fmt.Errorf("subgraph definitions nested too deeply")
	}
	dv, ok := o.get("definitions")
	if !ok {
		return nil
	}
	do, ok := dv.(*jobj)
	if !ok {
		return nil
	}
	sv, ok := do.get("subgraphs")
	if !ok {
		return nil
	}
	list, ok := sv.([]any)
	if !ok {
		return fmt.Errorf("definitions.subgraphs is %s, want an array", kindOf(sv))
	}
	for i, e := range list {
		so, ok := e.(*jobj)
		if !ok {
			return fmt.Errorf("definitions.subgraphs[%d] is %s, want an object", i, kindOf(e))
		}
		g := &WorkflowGraph{}
		g.ID = idString(mustGet(so, "id"))
		if g.ID == "" {
			return fmt.Errorf("definitions.subgraphs[%d] has no id", i)
		}
		g.Name, _ = mustGet(so, "name").(string)
		if err := readGraph(g, so, true); err != nil {
			return fmt.Errorf("subgraph %s: %w", g.ID, err)
		}
		g.Inputs = readSlots(mustGet(so, "inputs"))
		g.Outputs = readSlots(mustGet(so, "outputs"))
		if _, dup := wf.Subgraphs[g.ID]; !dup {
			wf.Subgraphs[g.ID] = g
		}
		if err := readDefinitions(wf, so, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func readSlots(v any) []SubgraphSlot {
	list, _ := v.([]any)
	out := make([]SubgraphSlot, 0, len(list))
	for _, e := range list {
		so, ok := e.(*jobj)
		if !ok {
			out = append(out, SubgraphSlot{})
			continue
		}
		s := SubgraphSlot{ID: idString(mustGet(so, "id")), Type: typeString(mustGet(so, "type"))}
		s.Name, _ = mustGet(so, "name").(string)
		if ids, ok := mustGet(so, "linkIds").([]any); ok {
			for _, id := range ids {
				if sid := idString(id); sid != "" {
					s.LinkIDs = append(s.LinkIDs, sid)
				}
			}
		}
		out = append(out, s)
	}
	return out
}

func mustGet(o *jobj, k string) any {
	v, _ := o.get(k)
	return v
}

func readGraph(g *WorkflowGraph, o *jobj, isSubgraph bool) error {
	nv := mustGet(o, "nodes")
	nodes, ok := nv.([]any)
	if !ok && nv != nil {
		return fmt.Errorf("\"nodes\" is %s, want an array", kindOf(nv))
	}
	g.Nodes = make([]*WorkflowNode, 0, len(nodes))
	for i, e := range nodes {
		no, ok := e.(*jobj)
		if !ok {
			return fmt.Errorf("nodes[%d] is %s, want an object", i, kindOf(e))
		}
		n, err := readNode(no)
		if err != nil {
			return fmt.Errorf("nodes[%d]: %w", i, err)
		}
		g.Nodes = append(g.Nodes, n)
	}
	lv := mustGet(o, "links")
	links, ok := lv.([]any)
	if !ok && lv != nil {
		return fmt.Errorf("\"links\" is %s, want an array", kindOf(lv))
	}
	g.Links = make([]*WorkflowLink, 0, len(links))
	for i, e := range links {
		l, err := readLink(e)
		if err != nil {
			return fmt.Errorf("links[%d]: %w", i, err)
		}
		if l != nil {
			g.Links = append(g.Links, l)
		}
	}
	g.index()
	return nil
}

func readLink(v any) (*WorkflowLink, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil // a hole left by a deleted link in old files
	case []any:
		if len(x) < 5 {
			return nil, fmt.Errorf("link array has %d items, want 6", len(x))
		}
		l := &WorkflowLink{ID: idString(x[0]), OriginID: idString(x[1]), TargetID: idString(x[3])}
		var ok1, ok2 bool
		l.OriginSlot, ok1 = intOf(x[2])
		l.TargetSlot, ok2 = intOf(x[4])
		if !ok1 || !ok2 || l.ID == "" {
			return nil, fmt.Errorf("bad link %v", plain(x))
		}
		if len(x) > 5 {
			l.Type = typeString(x[5])
		}
		return l, nil
	case *jobj:
		l := &WorkflowLink{
			ID:       idString(mustGet(x, "id")),
			OriginID: idString(mustGet(x, "origin_id")),
			TargetID: idString(mustGet(x, "target_id")),
			Type:     typeString(mustGet(x, "type")),
		}
		var ok1, ok2 bool
		l.OriginSlot, ok1 = intOf(mustGet(x, "origin_slot"))
		l.TargetSlot, ok2 = intOf(mustGet(x, "target_slot"))
		if !ok1 || !ok2 || l.ID == "" {
			return nil, fmt.Errorf("bad link object (id %q)", l.ID)
		}
		return l, nil
	}
	return nil, fmt.Errorf("link is %s, want an array or object", kindOf(v))
}

func readNode(o *jobj) (*WorkflowNode, error) {
	n := &WorkflowNode{}
	n.ID = idString(mustGet(o, "id"))
	if n.ID == "" {
		return nil, fmt.Errorf("node without an id")
	}
	t, ok := mustGet(o, "type").(string)
	if !ok {
		return nil, fmt.Errorf("node %s: \"type\" is %s, want a string", n.ID, kindOf(mustGet(o, "type")))
	}
	n.Type = t
	if m, ok := intOf(mustGet(o, "mode")); ok {
		n.Mode = m
	}
	if tv, ok := o.get("title"); ok {
		if s, ok := tv.(string); ok {
			n.Title, n.HasTitle = s, true
		}
	}
	if ins, ok := mustGet(o, "inputs").([]any); ok {
		for _, e := range ins {
			io, ok := e.(*jobj)
			if !ok {
				continue
			}
			in := WorkflowInput{Type: typeString(mustGet(io, "type"))}
			in.Name, _ = mustGet(io, "name").(string)
			in.Link = idString(mustGet(io, "link"))
			if wo, ok := mustGet(io, "widget").(*jobj); ok {
				in.Widget, _ = mustGet(wo, "name").(string)
			}
			n.Inputs = append(n.Inputs, in)
		}
	}
	if outs, ok := mustGet(o, "outputs").([]any); ok {
		for _, e := range outs {
			oo, ok := e.(*jobj)
			if !ok {
				n.Outputs = append(n.Outputs, WorkflowOutput{})
				continue
			}
			out := WorkflowOutput{Type: typeString(mustGet(oo, "type"))}
			out.Name, _ = mustGet(oo, "name").(string)
			if ls, ok := mustGet(oo, "links").([]any); ok {
				for _, l := range ls {
					if s := idString(l); s != "" {
						out.Links = append(out.Links, s)
					}
				}
			}
			if wo, ok := mustGet(oo, "widget").(*jobj); ok {
				out.Widget, _ = mustGet(wo, "name").(string)
			}
			n.Outputs = append(n.Outputs, out)
		}
	}
	if pv, ok := mustGet(o, "properties").(*jobj); ok {
		n.Properties = plain(pv).(map[string]any)
	}
	switch wv := mustGet(o, "widgets_values").(type) {
	case []any:
		n.WidgetsValues = plain(wv).([]any)
	case *jobj:
		n.WidgetsDict = plain(wv).(map[string]any)
	}
	return n, nil
}

// idString renders a node or link id: integers in decimal, strings as they are, anything
// else "" (no id).
func idString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return strconv.FormatInt(n, 10)
			}
			return s
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1e15 {
			return strconv.FormatInt(int64(f), 10)
		}
		return s
	}
	return ""
}

// intOf reads an integer that may be a number or a numeric string (old files).
func intOf(v any) (int, bool) {
	switch x := v.(type) {
	case json.Number:
		return slotNumber(x)
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

func numberOf(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

// typeString renders a slot type: strings as they are; a legacy options list is "COMBO";
// a number (litegraph event slots) is "".
func typeString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []any:
		return "COMBO"
	}
	return ""
}
