package web

import (
	"fmt"
	"sync"
	"testing"
	"time"
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
