package web

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// job is one row of /api/jobs, with the parts needed for filtering and sorting.
type job struct {
	fields     *orderedFields
	status     string
	createTime float64
	duration   float64
	workflowID string
}

// orderedFields is a small ordered JSON object builder that omits null values.
type orderedFields struct {
	keys []string
	vals map[string]any
}

func (o *orderedFields) set(k string, v any) {
	if v == nil {
		return
	}
	if o.vals == nil {
		o.vals = map[string]any{}
	}
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *orderedFields) MarshalJSON() ([]byte, error) {
	m := make(map[string]json.RawMessage, len(o.keys))
	for _, k := range o.keys {
		b, err := json.Marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		m[k] = b
	}
	return orderedRaw(m, o.keys), nil
}

// extraInfo pulls create_time and the workflow id out of extra_data.
func extraInfo(extra json.RawMessage) (createTime any, ct float64, workflowID string) {
	var e struct {
		CreateTime   json.Number `json:"create_time"`
		ExtraPNGInfo struct {
			Workflow struct {
				ID any `json:"id"`
			} `json:"workflow"`
		} `json:"extra_pnginfo"`
	}
	dec := json.NewDecoder(strings.NewReader(string(extra)))
	dec.UseNumber()
	_ = dec.Decode(&e)
	createTime = 0
	if e.CreateTime != "" {
		if f, err := e.CreateTime.Float64(); err == nil {
			ct = f
			createTime = e.CreateTime
		}
	}
	if s, ok := e.ExtraPNGInfo.Workflow.ID.(string); ok {
		workflowID = s
	}
	return createTime, ct, workflowID
}

func queueJob(it *storedItem, status string, detail bool) *job {
	f := &orderedFields{}
	ctv, ct, wf := extraInfo(it.Extra)
	f.set("id", it.PromptID)
	f.set("status", status)
	f.set("priority", json.RawMessage(formatNumber(it.Number, it.IsFloat)))
	f.set("create_time", ctv)
	f.set("outputs_count", 0)
	if wf != "" {
		f.set("workflow_id", wf)
	}
	if detail {
		f.set("workflow", map[string]json.RawMessage{"prompt": it.Prompt, "extra_data": it.Extra})
	}
	return &job{fields: f, status: status, createTime: ct, workflowID: wf}
}

// historyView is the part of a stored history entry the jobs API reads.
type historyView struct {
	Prompt  []json.RawMessage                     `json:"prompt"`
	Outputs map[string]map[string]json.RawMessage `json:"outputs"`
	Status  *struct {
		StatusStr string              `json:"status_str"`
		Completed bool                `json:"completed"`
		Messages  [][]json.RawMessage `json:"messages"`
	} `json:"status"`
}

func historyJob(id string, entry json.RawMessage, detail bool) *job {
	var h historyView
	_ = json.Unmarshal(entry, &h)
	var raw map[string]json.RawMessage
	_ = json.Unmarshal(entry, &raw)
	f := &orderedFields{}
	var extra json.RawMessage
	var priority json.RawMessage = json.RawMessage("0")
	if len(h.Prompt) >= 4 {
		priority, extra = h.Prompt[0], h.Prompt[3]
	}
	ctv, ct, wf := extraInfo(extra)
	status := "completed"
	var start, end any
	var startF, endF float64
	var execErr json.RawMessage
	interrupted := false
	if h.Status != nil {
		if h.Status.StatusStr == "error" {
			status = "failed"
		}
		for _, m := range h.Status.Messages {
			if len(m) < 2 {
				continue
			}
			var name string
			_ = json.Unmarshal(m[0], &name)
			var d struct {
				Timestamp json.Number `json:"timestamp"`
			}
			dec := json.NewDecoder(strings.NewReader(string(m[1])))
			dec.UseNumber()
			_ = dec.Decode(&d)
			switch name {
			case "execution_start":
				if d.Timestamp != "" {
					start = d.Timestamp
					startF, _ = d.Timestamp.Float64()
				}
			case "execution_success", "execution_error", "execution_interrupted":
				if d.Timestamp != "" {
					end = d.Timestamp
					endF, _ = d.Timestamp.Float64()
				}
				if name == "execution_error" {
					execErr = m[1]
				}
				if name == "execution_interrupted" {
					interrupted = true
				}
			}
		}
	}
	if status == "failed" && interrupted {
		status = "cancelled"
	}
	count := 0
	var preview map[string]any
	var fallback map[string]any
	nodeIDs := make([]string, 0, len(h.Outputs))
	for k := range h.Outputs {
		nodeIDs = append(nodeIDs, k)
	}
	sort.Strings(nodeIDs)
	for _, nid := range nodeIDs {
		out := h.Outputs[nid]
		keys := make([]string, 0, len(out))
		for k := range out {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, key := range keys {
			if key == "animated" {
				continue
			}
			var items []any
			if json.Unmarshal(out[key], &items) != nil {
				continue
			}
			for _, item := range items {
				m, ok := item.(map[string]any)
				if !ok {
					continue
				}
				count++
				if previewable(key, m) {
					c := map[string]any{}
					for k, v := range m {
						c[k] = v
					}
					c["nodeId"], c["mediaType"] = nid, key
					if m["type"] == "output" && preview == nil {
						preview = c
					} else if fallback == nil {
						fallback = c
					}
				}
			}
		}
	}
	if preview == nil {
		preview = fallback
	}
	f.set("id", id)
	f.set("status", status)
	f.set("priority", priority)
	f.set("create_time", ctv)
	f.set("execution_start_time", start)
	f.set("execution_end_time", end)
	if execErr != nil {
		f.set("execution_error", execErr)
	}
	f.set("outputs_count", count)
	if preview != nil {
		f.set("preview_output", preview)
	}
	if wf != "" {
		f.set("workflow_id", wf)
	}
	if detail {
		f.set("outputs", raw["outputs"])
		f.set("execution_status", raw["status"])
		if len(h.Prompt) >= 4 {
			f.set("workflow", map[string]json.RawMessage{"prompt": h.Prompt[2], "extra_data": h.Prompt[3]})
		}
	}
	dur := 0.0
	if start != nil && end != nil {
		dur = endF - startF
	}
	return &job{fields: f, status: status, createTime: ct, duration: dur, workflowID: wf}
}

func previewable(key string, m map[string]any) bool {
	if key == "images" || key == "video" || key == "audio" {
		return true
	}
	if f, ok := m["format"].(string); ok && (strings.HasPrefix(f, "video/") || strings.HasPrefix(f, "audio/")) {
		return true
	}
	if fn, ok := m["filename"].(string); ok {
		fn = strings.ToLower(fn)
		for _, e := range []string{".obj", ".fbx", ".gltf", ".glb"} {
			if strings.HasSuffix(fn, e) {
				return true
			}
		}
	}
	return false
}

func jobsError(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": msg})
}

func (s *Server) handleJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	want := map[string]bool{}
	if st := q.Get("status"); st != "" {
		var bad []string
		for _, x := range strings.Split(st, ",") {
			x = strings.ToLower(strings.TrimSpace(x))
			switch x {
			case "pending", "in_progress", "completed", "failed", "cancelled":
				want[x] = true
			case "":
			default:
				bad = append(bad, x)
			}
		}
		if len(bad) > 0 {
			jobsError(w, "Invalid status value(s): "+strings.Join(bad, ", ")+". Valid values: pending, in_progress, completed, failed, cancelled")
			return
		}
	}
	sortBy := q.Get("sort_by")
	if sortBy == "" {
		sortBy = "created_at"
	}
	if sortBy != "created_at" && sortBy != "execution_duration" {
		jobsError(w, "sort_by must be 'created_at' or 'execution_duration'")
		return
	}
	order := q.Get("sort_order")
	if order == "" {
		order = "desc"
	}
	if order != "asc" && order != "desc" {
		jobsError(w, "sort_order must be 'asc' or 'desc'")
		return
	}
	limit := -1
	if ls := q.Get("limit"); ls != "" {
		n, err := strconv.Atoi(ls)
		if err != nil {
			jobsError(w, "limit must be an integer")
			return
		}
		if n <= 0 {
			jobsError(w, "limit must be a positive integer")
			return
		}
		limit = n
	}
	offset := 0
	if os := q.Get("offset"); os != "" {
		n, err := strconv.Atoi(os)
		if err != nil {
			jobsError(w, "offset must be an integer")
			return
		}
		if n > 0 {
			offset = n
		}
	}
	wf := q.Get("workflow_id")
	// A client asking for "failed" without "cancelled" still gets interrupted runs (they were
	// "failed" before the cancelled status existed).
	if want["failed"] && !want["cancelled"] {
		want["cancelled"] = true
	}

	var all []*job
	add := func(j *job) {
		if len(want) > 0 && !want[j.status] {
			return
		}
		if wf != "" && j.workflowID != wf {
			return
		}
		all = append(all, j)
	}
	running, pending := s.q.snapshot()
	if running != nil {
		add(queueJob(running, "in_progress", false))
	}
	for _, it := range pending {
		add(queueJob(it, "pending", false))
	}
	if len(want) == 0 || want["completed"] || want["failed"] || want["cancelled"] {
		// History entries never change once stored: their job rows are cached by sequence number
		// (the cache keeps only the entries seen in this scan, so deleted ones drop out).
		s.jobsMu.Lock()
		seen := make(map[uint64]*job, len(s.jobsCache))
		err := s.store.HistoryScan(func(seq uint64, decode func() (string, json.RawMessage, error)) {
			j := s.jobsCache[seq]
			if j == nil {
				id, e, err := decode()
				if err != nil {
					return
				}
				j = historyJob(id, e, false)
			}
			seen[seq] = j
			add(j)
		})
		s.jobsCache = seen
		s.jobsMu.Unlock()
		if err != nil {
			http.Error(w, "cannot read history", http.StatusInternalServerError)
			return
		}
	}
	key := func(j *job) float64 {
		if sortBy == "execution_duration" {
			return j.duration
		}
		return j.createTime
	}
	sort.SliceStable(all, func(i, j int) bool {
		if order == "asc" {
			return key(all[i]) < key(all[j])
		}
		return key(all[i]) > key(all[j])
	})
	total := len(all)
	page := all
	if offset < len(page) {
		page = page[offset:]
	} else {
		page = nil
	}
	if limit >= 0 && len(page) > limit {
		page = page[:limit]
	}
	jobs := make([]*orderedFields, 0, len(page))
	for _, j := range page {
		jobs = append(jobs, j.fields)
	}
	var lim any
	if limit >= 0 {
		lim = limit
	}
	pag := &orderedFields{}
	pag.set("offset", offset)
	pag.vals["limit"] = lim
	pag.keys = append(pag.keys, "limit")
	pag.set("total", total)
	pag.set("has_more", offset+len(page) < total)
	writeJSON(w, http.StatusOK, map[string]any{"jobs": jobs, "pagination": pag})
}

func (s *Server) handleJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	running, pending := s.q.snapshot()
	if running != nil && running.PromptID == id {
		writeJSON(w, http.StatusOK, queueJob(running, "in_progress", true).fields)
		return
	}
	for _, it := range pending {
		if it.PromptID == id {
			writeJSON(w, http.StatusOK, queueJob(it, "pending", true).fields)
			return
		}
	}
	e, err := s.store.Entry(id)
	if err != nil || e == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "Job not found"})
		return
	}
	writeJSON(w, http.StatusOK, historyJob(id, e, true).fields)
}
