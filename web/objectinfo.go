package web

import (
	"encoding/json"
	"net/http"

	"github.com/comfygo/comfygo/nodes"
)

// handleObjectInfo renders every registered node type (file-based combo lists recomputed now).
func (s *Server) handleObjectInfo(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(nodes.ObjectInfoAll(s.env))
	if err != nil {
		http.Error(w, "cannot render node definitions", http.StatusInternalServerError)
		return
	}
	writeRaw(w, http.StatusOK, b)
}

// handleObjectInfoClass renders one node type, or {} for an unknown class.
func (s *Server) handleObjectInfoClass(w http.ResponseWriter, r *http.Request) {
	out := nodes.NewOrderedMap()
	if d, ok := nodes.Lookup(r.PathValue("class")); ok {
		out.Set(d.Name, nodes.ObjectInfo(d, s.env))
	}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(w, "cannot render node definition", http.StatusInternalServerError)
		return
	}
	writeRaw(w, http.StatusOK, b)
}
