package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// queue is the prompt queue: an in-memory priority list mirrored in the Store. Pending items are
// kept sorted by (number, prompt_id), ComfyUI's heap order.
type queue struct {
	store      *Store
	maxHistory int
	log        *slog.Logger

	mu        sync.Mutex
	pending   []*storedItem
	running   *storedItem
	counter   uint64
	sensitive map[string]map[string]any // never persisted: API keys stay in memory only
	wake      chan struct{}
	closed    bool
}

// maxAttempts is how many times a prompt may be started: a prompt found running at start-up
// (the process died while executing it) is re-run once, then given up with an error entry.
const maxAttempts = 2

func newQueue(st *Store, maxHistory int, log *slog.Logger) (*queue, error) {
	q := &queue{store: st, maxHistory: maxHistory, log: log, sensitive: map[string]map[string]any{}, wake: make(chan struct{}, 1)}
	c, err := st.Counter()
	if err != nil {
		return nil, err
	}
	q.counter = c
	items, err := st.Items()
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if it.Running {
			if it.Attempts >= maxAttempts {
				log.Warn("prompt was running when comfygo stopped twice; giving up", "prompt_id", it.PromptID)
				entry := crashEntry(it)
				if err := st.Finish(it.PromptID, entry, maxHistory); err != nil {
					return nil, err
				}
				continue
			}
			log.Info("re-running prompt interrupted by a restart", "prompt_id", it.PromptID)
			it.Running = false
			if err := st.PutItem(it, 0); err != nil {
				return nil, err
			}
		}
		q.pending = append(q.pending, it)
	}
	sort.Slice(q.pending, func(i, j int) bool { return itemLess(q.pending[i], q.pending[j]) })
	if len(q.pending) > 0 {
		log.Info("restored queue", "pending", len(q.pending))
	}
	return q, nil
}

func itemLess(a, b *storedItem) bool {
	if a.Number != b.Number {
		return a.Number < b.Number
	}
	return a.PromptID < b.PromptID
}

// crashEntry is the history entry of a prompt abandoned after repeated crashes.
func crashEntry(it *storedItem) []byte {
	ts := time.Now().UnixMilli()
	data := map[string]any{"prompt_id": it.PromptID, "node_id": nil, "node_type": nil, "executed": []string{},
		"exception_message": "comfygo stopped while running this prompt, twice; not retried again\n",
		"exception_type":    "comfygo.ServerRestarted", "traceback": []string{}, "current_inputs": map[string]any{},
		"current_outputs": []string{}, "timestamp": ts}
	status := map[string]any{"status_str": "error", "completed": false,
		"messages": []any{[]any{"execution_error", json.RawMessage(orderedData("execution_error", data))}}}
	return historyEntryJSON(it, json.RawMessage(`{}`), status, json.RawMessage(`{}`))
}

// historyEntryJSON renders a history entry with ComfyUI's key order.
func historyEntryJSON(it *storedItem, outputs any, status any, meta any) []byte {
	m := map[string]json.RawMessage{}
	m["prompt"] = itemTuple(it)
	m["outputs"] = mustJSON(outputs)
	m["status"] = orderedData2(status, []string{"status_str", "completed", "messages"})
	m["meta"] = mustJSON(meta)
	return orderedRaw(m, []string{"prompt", "outputs", "status", "meta"})
}

func orderedData2(v any, order []string) json.RawMessage {
	raw := mustJSON(v)
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return raw
	}
	return orderedRaw(m, order)
}

func mustJSON(v any) json.RawMessage {
	if r, ok := v.(json.RawMessage); ok && len(r) > 0 {
		return r
	}
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" && v != nil {
		return json.RawMessage("{}")
	}
	return b
}

// itemTuple is the 5-element [number, prompt_id, prompt, extra_data, outputs_to_execute].
func itemTuple(it *storedItem) json.RawMessage {
	outs := it.Outputs
	if outs == nil {
		outs = []string{}
	}
	ob, _ := json.Marshal(outs)
	id, _ := json.Marshal(it.PromptID)
	prompt, extra := it.Prompt, it.Extra
	if len(prompt) == 0 {
		prompt = json.RawMessage("{}")
	}
	if len(extra) == 0 {
		extra = json.RawMessage("{}")
	}
	s := "[" + formatNumber(it.Number, it.IsFloat) + ", " + string(id) + ", " + string(prompt) + ", " + string(extra) + ", " + string(ob) + "]"
	return json.RawMessage(s)
}

// formatNumber renders a priority like Python: ints as ints, client numbers as floats (12.0).
func formatNumber(n float64, isFloat bool) string {
	if isFloat && n == float64(int64(n)) && n < 1e15 && n > -1e15 {
		return fmt.Sprintf("%d.0", int64(n))
	}
	b, _ := json.Marshal(n)
	return string(b)
}

// nextNumber returns the default number for a new item and the counter to persist with it.
func (q *queue) nextNumber(front bool) (float64, uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.counter
	q.counter++
	if front && n > 0 { // the very first front number is 0, not -0
		return -float64(n), q.counter
	}
	return float64(n), q.counter
}

// errDuplicate is returned by push for a prompt_id that is already queued or running.
var errDuplicate = errors.New("a prompt with this prompt_id is already queued or running")

// push persists and enqueues it.
func (q *queue) push(it *storedItem, counter uint64, sensitive map[string]any) error {
	q.mu.Lock()
	dup := q.running != nil && q.running.PromptID == it.PromptID
	for _, p := range q.pending {
		dup = dup || p.PromptID == it.PromptID
	}
	q.mu.Unlock()
	if dup {
		return errDuplicate
	}
	if err := q.store.PutItem(it, counter); err != nil {
		return err
	}
	q.mu.Lock()
	i := sort.Search(len(q.pending), func(i int) bool { return itemLess(it, q.pending[i]) })
	q.pending = append(q.pending, nil)
	copy(q.pending[i+1:], q.pending[i:])
	q.pending[i] = it
	if len(sensitive) > 0 {
		q.sensitive[it.PromptID] = sensitive
	}
	q.mu.Unlock()
	q.signal()
	return nil
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop waits for the next item, marks it running (persisted) and returns it with its sensitive
// extra data; nil when woken without an item (e.g. by POST /free), when ctx ends or the queue
// closes.
func (q *queue) pop(ctx context.Context) (*storedItem, map[string]any) {
	if it, sens, ok := q.take(); ok {
		return it, sens
	}
	select {
	case <-ctx.Done():
		return nil, nil
	case <-q.wake:
	}
	it, sens, _ := q.take()
	return it, sens
}

// take moves the first pending item to running, if any.
func (q *queue) take() (*storedItem, map[string]any, bool) {
	q.mu.Lock()
	if q.closed || len(q.pending) == 0 {
		q.mu.Unlock()
		return nil, nil, false
	}
	it := q.pending[0]
	q.pending = q.pending[1:]
	it.Running = true
	it.Attempts++
	q.running = it
	sens := q.sensitive[it.PromptID]
	delete(q.sensitive, it.PromptID)
	q.mu.Unlock()
	if err := q.store.PutItem(it, 0); err != nil {
		q.log.Error("persist running prompt", "prompt_id", it.PromptID, "err", err)
	}
	return it, sens, true
}

// finish stores the history entry of the running item and removes it, atomically.
func (q *queue) finish(it *storedItem, entry []byte) error {
	err := q.store.Finish(it.PromptID, entry, q.maxHistory)
	q.mu.Lock()
	if q.running == it {
		q.running = nil
	}
	q.mu.Unlock()
	return err
}

// requeue puts an item that was stopped by shutdown back as not running (its attempt not
// counted), so the next start runs it again.
func (q *queue) requeue(it *storedItem) {
	it.Running = false
	if it.Attempts > 0 {
		it.Attempts--
	}
	if err := q.store.PutItem(it, 0); err != nil {
		q.log.Error("persist requeued prompt", "prompt_id", it.PromptID, "err", err)
	}
	q.mu.Lock()
	if q.running == it {
		q.running = nil
	}
	q.mu.Unlock()
}

// remove deletes pending items (all when clear); the running item is never touched. It
// reports whether anything changed.
func (q *queue) remove(ids []string, clear bool) (bool, error) {
	q.mu.Lock()
	del := map[string]bool{}
	for _, id := range ids {
		del[id] = true
	}
	var gone []string
	kept := q.pending[:0:0]
	for _, it := range q.pending {
		if clear || del[it.PromptID] {
			gone = append(gone, it.PromptID)
			delete(q.sensitive, it.PromptID)
			continue
		}
		kept = append(kept, it)
	}
	q.pending = kept
	q.mu.Unlock()
	if len(gone) == 0 {
		return false, nil
	}
	return true, q.store.DeleteItems(gone)
}

// snapshot returns the running item (or nil) and a copy of the pending list.
func (q *queue) snapshot() (*storedItem, []*storedItem) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.running, append([]*storedItem(nil), q.pending...)
}

// remaining is ComfyUI's queue_remaining: pending + running.
func (q *queue) remaining() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.pending)
	if q.running != nil {
		n++
	}
	return n
}

// runningID returns the running prompt id or "".
func (q *queue) runningID() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running == nil {
		return ""
	}
	return q.running.PromptID
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}
