package web

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// LogRing keeps the last console writes for /internal/logs and forwards new ones to subscribed
// websocket clients. Use it as (part of) the log output: each Write is one entry.
type LogRing struct {
	mu      sync.Mutex
	entries []logEntry
	max     int
	hub     *Hub
}

type logEntry struct {
	T string `json:"t"`
	M string `json:"m"`
}

// NewLogRing keeps the last max entries (300 when max <= 0, like ComfyUI).
func NewLogRing(max int) *LogRing {
	if max <= 0 {
		max = 300
	}
	return &LogRing{max: max}
}

func (l *LogRing) setHub(h *Hub) {
	l.mu.Lock()
	l.hub = h
	l.mu.Unlock()
}

// Write records p as one entry.
func (l *LogRing) Write(p []byte) (int, error) {
	e := logEntry{T: time.Now().Format("2006-01-02T15:04:05.000000"), M: string(p)}
	l.mu.Lock()
	l.entries = append(l.entries, e)
	if len(l.entries) > l.max {
		l.entries = append(l.entries[:0:0], l.entries[len(l.entries)-l.max:]...)
	}
	h := l.hub
	l.mu.Unlock()
	if h != nil {
		h.SendLogs(map[string]any{"entries": []logEntry{e}, "size": map[string]int{"cols": 80, "rows": 24}})
	}
	return len(p), nil
}

func (l *LogRing) snapshot() []logEntry {
	if l == nil {
		return []logEntry{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]logEntry{}, l.entries...)
}

func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	for _, e := range s.cfg.Logs.snapshot() {
		b.WriteString(e.T + " - " + e.M)
	}
	writeJSON(w, http.StatusOK, b.String())
}

func (s *Server) handleLogsRaw(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"entries": s.cfg.Logs.snapshot(),
		"size": map[string]int{"cols": 80, "rows": 24}})
}

func (s *Server) handleLogsSubscribe(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ClientID string `json:"clientId"`
		Enabled  bool   `json:"enabled"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		badJSON(w, err)
		return
	}
	s.hub.Subscribe(body.ClientID, body.Enabled)
	w.WriteHeader(http.StatusOK)
}
