package web

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkPromptToExecutionStart measures POST /prompt → execution_start on the submitting
// client's websocket (validation, durable enqueue with fsync, worker hand-off, event delivery).
func BenchmarkPromptToExecutionStart(b *testing.B) {
	ts := newTestServer(b, "")
	c := dialWS(b, ts, "bench")
	var total time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		id := ts.queue(b, map[string]any{"client_id": "bench", "prompt": map[string]any{
			"1": map[string]any{"class_type": "WebTestText", "inputs": map[string]any{"value": i}}}})
		for {
			m := c.next(b, 10*time.Second)
			if m.Type == "execution_start" && m.Data["prompt_id"] == id {
				total += time.Since(start)
				break
			}
		}
		c.until(b, id, 10*time.Second)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/exec_start")
}

// BenchmarkFanout measures broadcast throughput: one event delivered to 50 websocket clients.
func BenchmarkFanout(b *testing.B) {
	const nClients = 50
	ts := newTestServer(b, "", func(c *Config) { c.ClientQueue = 1 << 20 })
	clients := make([]*testWS, nClients)
	for i := range clients {
		clients[i] = dialWS(b, ts, fmt.Sprintf("f%d", i))
	}
	data := map[string]any{"value": 1, "max": 20, "prompt_id": "p", "node": "3"}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func(c *testWS) {
			defer wg.Done()
			for got := 0; got < b.N; {
				select {
				case m := <-c.ch:
					if m.Type == "progress" {
						got++
					}
				case <-time.After(30 * time.Second):
					b.Errorf("fan-out stalled at %d/%d", got, b.N)
					return
				}
			}
		}(c)
	}
	for i := 0; i < b.N; i++ {
		ts.hub.Send("progress", data, "")
	}
	wg.Wait()
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "events/s")
	b.ReportMetric(float64(b.N*nClients)/el.Seconds(), "deliveries/s")
}

// fillHistory writes n history entries in one transaction (fast set-up for benchmarks).
func fillHistory(tb testing.TB, dir string, n int) {
	os.MkdirAll(filepath.Join(dir, "user"), 0o755)
	st, err := OpenStore(filepath.Join(dir, "user", "comfygo.db"))
	if err != nil {
		tb.Fatal(err)
	}
	defer st.Close()
	err = st.db.Update(func(tx *bolt.Tx) error {
		h, idx, meta := tx.Bucket(bucketHistory), tx.Bucket(bucketHistIdx), tx.Bucket(bucketMeta)
		for i := 1; i <= n; i++ {
			id := fmt.Sprintf("p-%06d", i)
			it := &storedItem{PromptID: id, Number: float64(i), Prompt: json.RawMessage(`{"1": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "ComfyUI"}}, "2": {"class_type": "WebTestImage", "inputs": {"width": 512, "height": 512, "value": 0.5}}}`),
				Extra: json.RawMessage(fmt.Sprintf(`{"client_id": "c", "create_time": %d}`, 1736240000000+i)), Outputs: []string{"1"}}
			status := map[string]any{"status_str": "success", "completed": true, "messages": []any{
				[]any{"execution_start", map[string]any{"prompt_id": id, "timestamp": 1736240000100 + i}},
				[]any{"execution_cached", map[string]any{"nodes": []string{}, "prompt_id": id, "timestamp": 1736240000101 + i}},
				[]any{"execution_success", map[string]any{"prompt_id": id, "timestamp": 1736240004200 + i}}}}
			outputs := map[string]any{"1": map[string]any{"images": []any{map[string]any{"filename": fmt.Sprintf("ComfyUI_%05d_.png", i), "subfolder": "", "type": "output"}}}}
			e := historyEntryJSON(it, outputs, status, map[string]any{"1": map[string]any{"node_id": "1", "display_node": "1", "parent_node": nil, "real_node_id": "1"}})
			se, _ := json.Marshal(storedEntry{ID: id, Entry: e})
			if err := h.Put(u64(uint64(i)), se); err != nil {
				return err
			}
			idx.Put([]byte(id), u64(uint64(i)))
		}
		meta.Put([]byte("hseq"), u64(uint64(n)))
		return meta.Put([]byte("hcount"), u64(uint64(n)))
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkJobsFullHistory: GET /api/jobs (the frontend's queue/history panel) with 10000
// history entries; the first call parses every entry, later ones use the row cache.
func BenchmarkJobsFullHistory(b *testing.B) {
	dir := b.TempDir()
	fillHistory(b, dir, 10000)
	ts := newTestServer(b, dir)
	t0 := time.Now()
	code, _ := ts.do(b, "GET", "/api/jobs?status=completed,failed,cancelled&limit=64&offset=0", nil)
	if code != 200 {
		b.Fatal(code)
	}
	b.Logf("first /api/jobs over 10000 entries (parses all): %v", time.Since(t0))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ts.do(b, "GET", "/api/jobs?status=completed,failed,cancelled&limit=64&offset=0", nil)
	}
	b.StopTimer()
	t0 = time.Now()
	ts.do(b, "GET", "/history?max_items=64", nil)
	b.ReportMetric(float64(time.Since(t0).Microseconds()), "µs/history64")
}
