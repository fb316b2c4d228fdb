package web

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestLoad: many websocket clients, many cheap prompts; every prompt reaches history, every
// client gets every one of its events and every status broadcast, memory stays bounded.
// -short runs a smaller variant; COMFYGO_LOAD="clients,prompts" a bigger one.
func TestLoad(t *testing.T) {
	nClients, nPrompts := 50, 500
	if testing.Short() {
		nClients, nPrompts = 10, 100
	}
	if v := os.Getenv("COMFYGO_LOAD"); v != "" {
		if _, err := fmt.Sscanf(v, "%d,%d", &nClients, &nPrompts); err != nil || nClients < 1 || nPrompts < 1 {
			t.Fatalf("COMFYGO_LOAD=%q: want clients,prompts", v)
		}
	}
	ts := newTestServer(t, "")
	clients := make([]*testWS, nClients)
	for i := range clients {
		clients[i] = dialWS(t, ts, fmt.Sprintf("load-%d", i))
	}
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	// Submit from 8 goroutines.
	ids := make([]string, nPrompts)
	var wg sync.WaitGroup
	errs := make(chan error, nPrompts)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for k := g; k < nPrompts; k += 8 {
				body := map[string]any{"client_id": fmt.Sprintf("load-%d", k%nClients), "prompt": map[string]any{
					"1": map[string]any{"class_type": "WebTestText", "inputs": map[string]any{"value": k}}}}
				code, b := ts.do(t, "POST", "/prompt", body)
				if code != 200 {
					errs <- fmt.Errorf("POST %d: %d %s", k, code, b)
					continue
				}
				var r struct {
					PromptID string `json:"prompt_id"`
				}
				json.Unmarshal(b, &r)
				ids[k] = r.PromptID
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	submitted := time.Since(start)

	// Each client: wait for the end of each of its prompts; check the per-prompt sequence.
	want := []string{"execution_start", "execution_cached:[]", "progress_state", "executing:1", "executed:1", "progress_state", "execution_success", "executing:null"}
	var mu sync.Mutex
	var failures []string
	statusCounts := make([]int, nClients)
	for i, c := range clients {
		wg.Add(1)
		go func(i int, c *testWS) {
			defer wg.Done()
			mine := map[string]bool{}
			for k := i; k < nPrompts; k += nClients {
				mine[ids[k]] = true
			}
			seqs := map[string][]string{}
			done := 0
			timeout := time.After(60*time.Second + time.Duration(nPrompts)*20*time.Millisecond)
			for done < len(mine) || statusCounts[i] < 3*nPrompts {
				var m wsMsg
				var ok bool
				select {
				case m, ok = <-c.ch:
				case <-timeout:
					ok = false
				}
				if !ok {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("client %d: closed/timed out after %d/%d prompts, %d statuses", i, done, len(mine), statusCounts[i]))
					mu.Unlock()
					return
				}
				if m.Type == "status" {
					statusCounts[i]++
					continue
				}
				pid, _ := m.Data["prompt_id"].(string)
				if !mine[pid] {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("client %d got an event of another client's prompt: %s", i, m.Raw))
					mu.Unlock()
					continue
				}
				seqs[pid] = append(seqs[pid], label(m))
				if m.Type == "executing" && m.Data["node"] == nil {
					done++
				}
			}
			for pid, seq := range seqs {
				if !reflect.DeepEqual(seq, want) {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("client %d prompt %s: %v", i, pid, seq))
					mu.Unlock()
				}
			}
		}(i, c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(failures) > 0 {
		if len(failures) > 10 {
			failures = failures[:10]
		}
		t.Fatalf("%s", strings.Join(failures, "\n"))
	}
	for i, n := range statusCounts {
		if n != 3*nPrompts { // enqueue, dequeue, done for each prompt
			t.Errorf("client %d got %d status broadcasts, want %d", i, n, 3*nPrompts)
		}
	}
	var hist map[string]json.RawMessage
	ts.getJSON(t, "/history", &hist)
	if len(hist) != nPrompts {
		t.Fatalf("history has %d entries, want %d", len(hist), nPrompts)
	}
	if d := ts.hub.Dropped(); d != 0 {
		t.Errorf("%d clients dropped", d)
	}
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	growth := int64(m1.HeapInuse) - int64(m0.HeapInuse)
	t.Logf("load: %d clients, %d prompts: submitted in %v, all done in %v (%.0f prompts/s); heap in use %d MiB → %d MiB; goroutines %d",
		nClients, nPrompts, submitted.Round(time.Millisecond), elapsed.Round(time.Millisecond), float64(nPrompts)/elapsed.Seconds(),
		m0.HeapInuse>>20, m1.HeapInuse>>20, runtime.NumGoroutine())
	if growth > 256<<20 {
		t.Errorf("heap grew by %d MiB", growth>>20)
	}
}

// TestSlowClientDisconnected: a client that stops reading is dropped once its queue is full;
// sending never blocks and a reading client gets every frame, in order.
func TestSlowClientDisconnected(t *testing.T) {
	ts := newTestServer(t, "", func(c *Config) { c.ClientQueue = 256 })
	good, _, err := websocket.DefaultDialer.Dial("ws://"+ts.Host+"/ws?clientId=good", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	slow, _, err := websocket.DefaultDialer.Dial("ws://"+ts.Host+"/ws?clientId=slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	for ts.hub.Clients() < 2 {
		time.Sleep(time.Millisecond)
	}
	const n = 1200 // 64 KiB each, 75 MiB in all: more than the loopback socket buffers hold
	// The good client reads raw frames (no JSON decoding) and checks their order.
	got := make(chan error, 1)
	go func() {
		want := 0
		buf := make([]byte, 64)
		for want < n {
			typ, r, err := good.NextReader()
			if err != nil {
				got <- fmt.Errorf("good client after %d frames: %w", want, err)
				return
			}
			k, _ := io.ReadFull(r, buf)
			io.Copy(io.Discard, r)
			if typ != websocket.TextMessage || !strings.Contains(string(buf[:k]), `"test_big"`) {
				continue // the connect status
			}
			if !strings.Contains(string(buf[:k]), fmt.Sprintf(`{"i":%d,`, want)) {
				got <- fmt.Errorf("frame %d out of order: %s", want, buf[:k])
				return
			}
			want++
		}
		got <- nil
	}()
	big := strings.Repeat("x", 64<<10)
	var maxSend time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		ts.hub.Send("test_big", map[string]any{"i": i, "pad": big}, "")
		if d := time.Since(t0); d > maxSend {
			maxSend = d
		}
		if i%4 == 3 {
			time.Sleep(time.Millisecond) // a paced producer: a reading client keeps up
		}
	}
	if maxSend > 500*time.Millisecond {
		t.Errorf("a send blocked for %v", maxSend)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("good client stalled")
	}
	if ts.hub.Dropped() != 1 {
		t.Errorf("dropped %d clients, want 1 (the slow one)", ts.hub.Dropped())
	}
	if ts.hub.Clients() != 1 {
		t.Errorf("%d clients registered", ts.hub.Clients())
	}
}

// TestReconnectSameClientID: a reconnect replaces the registration; the old socket's close does
// not unregister the new one.
func TestReconnectSameClientID(t *testing.T) {
	ts := newTestServer(t, "")
	a := dialWS(t, ts, "same")
	b := dialWS(t, ts, "same")
	a.conn.Close()
	time.Sleep(50 * time.Millisecond)
	id := ts.queue(t, map[string]any{"client_id": "same", "prompt": map[string]any{
		"1": map[string]any{"class_type": "WebTestText", "inputs": map[string]any{"value": 1}}}})
	b.until(t, id, 10*time.Second)
}

// TestReconnectDuringRun: a client reconnecting with its id while its prompt runs gets the
// status and then executing {node} (no prompt_id) for the running node, then the rest.
func TestReconnectDuringRun(t *testing.T) {
	ts := newTestServer(t, "", func(c *Config) { c.MaxClients = 3 })
	c := dialWS(t, ts, "rc")
	id := ts.queue(t, map[string]any{"client_id": "rc", "prompt": map[string]any{
		"1": map[string]any{"class_type": "WebTestImage", "inputs": map[string]any{"width": 4, "height": 4, "value": 0.11}},
		"2": map[string]any{"class_type": "WebTestSleep", "inputs": map[string]any{"image": []any{"1", 0}, "steps": 100000, "step_ms": 5}},
		"3": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"2", 0}, "filename_prefix": "rc"}},
	}})
	for {
		if m := c.next(t, 10*time.Second); m.Type == "progress" {
			break
		}
	}
	c2 := dialWS(t, ts, "rc")
	m := c2.next(t, 5*time.Second)
	if m.Type != "executing" || m.Data["node"] != "2" || m.Data["prompt_id"] != nil {
		t.Fatalf("after reconnect: %s", m.Raw)
	}
	// The client limit: two more connections fit (3 in all), the next is refused.
	dialWS(t, ts, "x1")
	dialWS(t, ts, "x2")
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+ts.Host+"/ws", nil); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("client over the limit accepted: %v", err)
	}
	ts.do(t, "POST", "/interrupt", nil)
	c2.until(t, id, 10*time.Second)
}
