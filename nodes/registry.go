package nodes

import (
	"fmt"
	"sort"
	"sync"
)

// The node registry is comfygo's one piece of global mutable state, as in ComfyUI
// (NODE_CLASS_MAPPINGS): node packs add to it from init.
var (
	regMu    sync.RWMutex
	registry = map[string]*Def{}
	regOrder []*Def // registration order (ComfyUI's NODE_CLASS_MAPPINGS order)
)

// Register adds node types to the registry. It panics on a duplicate or nameless type, so a
// conflicting pack fails at start-up, as Caddy does for duplicate module IDs.
func Register(defs ...*Def) {
	regMu.Lock()
	defer regMu.Unlock()
	for _, d := range defs {
		if d == nil || d.Name == "" {
			panic("nodes: Register of a node without a name")
		}
		if _, dup := registry[d.Name]; dup {
			panic(fmt.Sprintf("nodes: node type %q registered twice", d.Name))
		}
		if d.Execute == nil {
			panic(fmt.Sprintf("nodes: node type %q has no Execute", d.Name))
		}
		registry[d.Name] = d
		regOrder = append(regOrder, d)
	}
}

// Lookup returns the registered node type name.
func Lookup(name string) (*Def, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	d, ok := registry[name]
	return d, ok
}

// All returns every registered node type, sorted by name.
func All() []*Def {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]*Def, 0, len(registry))
	for _, d := range registry {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Ordered returns every registered node type in registration order (the order of /object_info).
func Ordered() []*Def {
	regMu.RLock()
	defer regMu.RUnlock()
	return append([]*Def(nil), regOrder...)
}

// Input returns the declared input name and its section ("required", "optional", "hidden"),
// looked up in ComfyUI's order: required, optional, hidden.
func (d *Def) Input(name string) (in Input, section string, ok bool) {
	for _, x := range d.Required {
		if x.Name == name {
			return x, "required", true
		}
	}
	for _, x := range d.Optional {
		if x.Name == name {
			return x, "optional", true
		}
	}
	for _, h := range d.Hidden {
		if h.Name == name {
			return Input{Name: h.Name, Type: h.Marker}, "hidden", true
		}
	}
	return Input{}, "", false
}
