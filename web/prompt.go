package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/comfygo/comfygo/graph"
)

// sensitiveKeys are removed from extra_data before queuing (never stored, never shown).
var sensitiveKeys = []string{"auth_token_comfy_org", "api_key_comfy_org"}

// kv is one key of an ordered JSON object.
type kv struct {
	k string
	v json.RawMessage
}

// parseObject splits a JSON object into its keys, in order (duplicates: last wins, first place).
func parseObject(raw []byte) ([]kv, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var out []kv
	idx := map[string]int{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if i, ok := idx[k]; ok {
			out[i].v = v
			continue
		}
		idx[k] = len(out)
		out = append(out, kv{k, v})
	}
	return out, nil
}

func renderObject(kvs []kv) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range kvs {
		if i > 0 {
			b.WriteString(", ")
		}
		kj, _ := json.Marshal(e.k)
		b.Write(kj)
		b.WriteString(": ")
		b.Write(e.v)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// promptError answers 400 with ComfyUI's {"error": {...}, "node_errors": {...}} shape.
func promptError(w http.ResponseWriter, typ, msg, details string, nodeErrors any) {
	if nodeErrors == nil {
		nodeErrors = map[string]any{}
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{
		"error":       &orderedFields{keys: []string{"type", "message", "details", "extra_info"}, vals: map[string]any{"type": typ, "message": msg, "details": details, "extra_info": map[string]any{}}},
		"node_errors": nodeErrors,
	})
}

func (s *Server) handleGetPrompt(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.statusData())
}

// statusData is the status message data: {"exec_info": {"queue_remaining": N}}.
func (s *Server) statusData() map[string]any {
	return map[string]any{"exec_info": map[string]any{"queue_remaining": s.q.remaining()}}
}

func (s *Server) broadcastStatus() {
	s.hub.Send("status", map[string]any{"status": s.statusData()}, "")
}

func truthy(raw json.RawMessage) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch x := v.(type) {
	case bool:
		return x
	case float64:
		return x != 0
	case string:
		return x != ""
	case nil:
		return false
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return false
}

func (s *Server) handlePostPrompt(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		badJSON(w, err)
		return
	}
	fields, err := parseObject(body)
	if err != nil {
		badJSON(w, err)
		return
	}
	get := map[string]json.RawMessage{}
	for _, f := range fields {
		get[f.k] = f.v
	}
	rawPrompt, ok := get["prompt"]
	if !ok || string(rawPrompt) == "null" {
		promptError(w, "no_prompt", "No prompt provided", "No prompt provided", nil)
		return
	}
	if len(bytes.TrimSpace(rawPrompt)) == 0 || bytes.TrimSpace(rawPrompt)[0] != '{' {
		promptError(w, "invalid_prompt", "Invalid prompt: the prompt must be a JSON object of nodes", "", nil)
		return
	}
	prompt, err := graph.ParsePrompt(rawPrompt)
	if err != nil {
		promptError(w, "invalid_prompt", "Invalid prompt: "+err.Error(), err.Error(), nil)
		return
	}
	var clientID, promptID string
	if v, ok := get["client_id"]; ok {
		_ = json.Unmarshal(v, &clientID)
	}
	if v, ok := get["prompt_id"]; ok {
		_ = json.Unmarshal(v, &promptID)
	}
	if promptID == "" {
		promptID = newUUID()
	}
	var targets []string
	if v, ok := get["partial_execution_targets"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &targets); err != nil {
			promptError(w, "invalid_prompt", "partial_execution_targets must be a list of node ids", err.Error(), nil)
			return
		}
	}
	it := &storedItem{PromptID: promptID, Prompt: rawPrompt}
	var counter uint64
	if v, ok := get["number"]; ok && string(v) != "null" {
		n, err := strconv.ParseFloat(strings.TrimSpace(string(v)), 64)
		if err != nil {
			var sv string
			if json.Unmarshal(v, &sv) == nil {
				n, err = strconv.ParseFloat(sv, 64)
			}
		}
		if err != nil {
			promptError(w, "invalid_prompt", "number must be a number", string(v), nil)
			return
		}
		it.Number, it.IsFloat = n, true
	}

	// extra_data: the client's keys in order, minus the sensitive ones, plus client_id and
	// create_time.
	var extra []kv
	sensitive := map[string]any{}
	if v, ok := get["extra_data"]; ok && string(v) != "null" {
		ex, err := parseObject(v)
		if err != nil {
			promptError(w, "invalid_prompt", "extra_data must be a JSON object", err.Error(), nil)
			return
		}
		for _, e := range ex {
			isSens := false
			for _, sk := range sensitiveKeys {
				if e.k == sk {
					isSens = true
				}
			}
			if isSens {
				var x any
				_ = json.Unmarshal(e.v, &x)
				sensitive[e.k] = x
				continue
			}
			extra = append(extra, e)
		}
	}
	setKV := func(k string, v any) {
		b, _ := json.Marshal(v)
		for i := range extra {
			if extra[i].k == k {
				extra[i].v = b
				return
			}
		}
		extra = append(extra, kv{k, b})
	}
	if _, ok := get["client_id"]; ok {
		setKV("client_id", clientID)
	}
	setKV("create_time", time.Now().UnixMilli())
	it.Extra = renderObject(extra)

	val := s.engine.Validate(prompt, targets)
	if val.Error != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": val.Error, "node_errors": orEmpty(val.NodeErrors)})
		return
	}
	it.Outputs = val.Outputs
	// Validation coerces constants in place; the coerced prompt is what runs and what queue and
	// history show (as in ComfyUI).
	if b, err := json.Marshal(prompt); err == nil {
		it.Prompt = b
	}
	it.parsed = prompt
	if !it.IsFloat {
		front := false
		if v, ok := get["front"]; ok {
			front = truthy(v)
		}
		it.Number, counter = s.q.nextNumber(front)
	}
	if err := s.q.push(it, counter, sensitive); err != nil {
		if errors.Is(err, errDuplicate) {
			promptError(w, "invalid_prompt", "Invalid prompt: "+err.Error(), promptID, nil)
			return
		}
		s.log.Error("queue prompt", "err", err)
		http.Error(w, "cannot store the prompt", http.StatusInternalServerError)
		return
	}
	s.broadcastStatus()
	resp := &orderedFields{}
	resp.set("prompt_id", promptID)
	resp.set("number", json.RawMessage(formatNumber(it.Number, it.IsFloat)))
	resp.set("node_errors", orEmpty(val.NodeErrors))
	writeJSON(w, http.StatusOK, resp)
}

func orEmpty(v any) any {
	if v == nil {
		return map[string]any{}
	}
	return v
}

func (s *Server) handleGetQueue(w http.ResponseWriter, r *http.Request) {
	running, pending := s.q.snapshot()
	run := []json.RawMessage{}
	if running != nil {
		run = append(run, itemTuple(running))
	}
	pend := make([]json.RawMessage, 0, len(pending))
	for _, it := range pending {
		pend = append(pend, itemTuple(it))
	}
	writeJSON(w, http.StatusOK, &orderedFields{keys: []string{"queue_running", "queue_pending"},
		vals: map[string]any{"queue_running": run, "queue_pending": pend}})
}

// clearDelete is the body of POST /queue and POST /history.
type clearDelete struct {
	Clear  bool     `json:"clear"`
	Delete []string `json:"delete"`
}

func readClearDelete(r *http.Request) (clearDelete, error) {
	var raw map[string]json.RawMessage
	var cd clearDelete
	if err := readJSON(r, &raw); err != nil {
		return cd, err
	}
	if v, ok := raw["clear"]; ok {
		cd.Clear = truthy(v)
	}
	if v, ok := raw["delete"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &cd.Delete); err != nil {
			return cd, errors.New("delete must be a list of prompt ids")
		}
	}
	return cd, nil
}

func (s *Server) handlePostQueue(w http.ResponseWriter, r *http.Request) {
	cd, err := readClearDelete(r)
	if err != nil {
		badJSON(w, err)
		return
	}
	changed, err := s.q.remove(cd.Delete, cd.Clear)
	if err != nil {
		s.log.Error("queue delete", "err", err)
	}
	if changed || cd.Clear || len(cd.Delete) > 0 {
		s.broadcastStatus()
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleInterrupt(w http.ResponseWriter, r *http.Request) {
	var body struct {
		PromptID string `json:"prompt_id"`
	}
	if r.Body != nil {
		_ = json.NewDecoder(r.Body).Decode(&body) // empty or invalid body: global interrupt
	}
	cur := s.q.runningID()
	if body.PromptID == "" || body.PromptID == cur {
		if cur != "" {
			s.engine.Interrupt(cur)
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleFree(w http.ResponseWriter, r *http.Request) {
	var raw map[string]json.RawMessage
	if err := readJSON(r, &raw); err != nil {
		badJSON(w, err)
		return
	}
	unload, free := truthy(raw["unload_models"]), truthy(raw["free_memory"])
	if unload || free {
		s.freeMu.Lock()
		s.freeUnload = s.freeUnload || unload || free
		s.freeMemory = s.freeMemory || free
		s.freeMu.Unlock()
		s.q.signal()
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleGetHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	max, offset := -1, -1
	if v := q.Get("max_items"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			http.Error(w, "max_items must be an integer", http.StatusBadRequest)
			return
		}
		max = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			http.Error(w, "offset must be an integer", http.StatusBadRequest)
			return
		}
		offset = n
	}
	// ComfyUI: offset < 0 with max_items → the newest max_items entries.
	if offset < 0 {
		offset = 0
		if max >= 0 {
			offset = s.store.HistoryCount() - max
			if offset < 0 {
				offset = 0
			}
		}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	_, err := s.store.History(offset, max, func(id string, e json.RawMessage) {
		if !first {
			b.WriteString(", ")
		}
		first = false
		kj, _ := json.Marshal(id)
		b.Write(kj)
		b.WriteString(": ")
		b.Write(e)
	})
	if err != nil {
		http.Error(w, "cannot read history", http.StatusInternalServerError)
		return
	}
	b.WriteByte('}')
	writeRaw(w, http.StatusOK, b.Bytes())
}

func (s *Server) handleGetHistoryID(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	e, err := s.store.Entry(id)
	if err != nil {
		http.Error(w, "cannot read history", http.StatusInternalServerError)
		return
	}
	if e == nil {
		writeRaw(w, http.StatusOK, []byte("{}"))
		return
	}
	kj, _ := json.Marshal(id)
	writeRaw(w, http.StatusOK, []byte("{"+string(kj)+": "+string(e)+"}"))
}

func (s *Server) handlePostHistory(w http.ResponseWriter, r *http.Request) {
	cd, err := readClearDelete(r)
	if err != nil {
		badJSON(w, err)
		return
	}
	if cd.Clear || len(cd.Delete) > 0 {
		if err := s.store.DeleteHistory(cd.Delete, cd.Clear); err != nil {
			s.log.Error("history delete", "err", err)
			http.Error(w, "cannot update history", http.StatusInternalServerError)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}
