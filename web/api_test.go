package web

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"image/png"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// imagePrompt is WebTestImage → SaveImage.
func imagePrompt(value float64, prefix string) map[string]any {
	return map[string]any{
		"1": map[string]any{"class_type": "WebTestImage", "inputs": map[string]any{"width": 16, "height": 8, "value": value}},
		"2": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"1", 0}, "filename_prefix": prefix}},
	}
}

func TestPromptEventSequenceHistoryAndView(t *testing.T) {
	ts := newTestServer(t, "")
	c := dialWS(t, ts, "client-a")
	if c.sid != "client-a" {
		t.Fatalf("sid %q", c.sid)
	}
	prompt := imagePrompt(0.25, "webtest")

	// Fresh run: ComfyUI's sequence for 1 → 2(SaveImage).
	id := ts.queue(t, map[string]any{"prompt": prompt, "client_id": "client-a"})
	msgs := c.until(t, id, 10*time.Second)
	want := []string{"status", "status", "execution_start", "execution_cached:[]",
		"progress_state", "executing:1", "progress_state",
		"progress_state", "executing:2", "executed:2", "progress_state",
		"execution_success", "status", "executing:null"}
	if got := labels(msgs); !reflect.DeepEqual(got, want) {
		t.Fatalf("fresh run events\n got %v\nwant %v", got, want)
	}
	for _, m := range msgs {
		if m.Type != "status" && m.Data["prompt_id"] != id {
			t.Errorf("%s without prompt_id %s: %s", m.Type, id, m.Raw)
		}
	}
	// Key order of the executing message is ComfyUI's.
	for _, m := range msgs {
		if m.Type == "executing" && m.Data["node"] == "1" {
			if !bytes.Contains(m.Raw, []byte(`"data": {"node": "1", "display_node": "1", "prompt_id": "`)) {
				t.Errorf("executing key order: %s", m.Raw)
			}
		}
	}
	// The last status says the queue is empty.
	last := msgs[len(msgs)-2]
	if qr := last.Data["status"].(map[string]any)["exec_info"].(map[string]any)["queue_remaining"]; qr != 0.0 {
		t.Errorf("final queue_remaining %v", qr)
	}

	// History holds the entry and /view returns the PNG.
	var hist map[string]struct {
		Prompt  []any                                  `json:"prompt"`
		Outputs map[string]map[string][]map[string]any `json:"outputs"`
		Status  struct {
			StatusStr string  `json:"status_str"`
			Completed bool    `json:"completed"`
			Messages  [][]any `json:"messages"`
		} `json:"status"`
		Meta map[string]map[string]any `json:"meta"`
	}
	ts.getJSON(t, "/history/"+id, &hist)
	e, ok := hist[id]
	if !ok {
		t.Fatalf("history lacks %s", id)
	}
	if e.Status.StatusStr != "success" || !e.Status.Completed || len(e.Status.Messages) != 3 {
		t.Fatalf("status %+v", e.Status)
	}
	if len(e.Prompt) != 5 || e.Prompt[1] != id {
		t.Fatalf("prompt tuple %v", e.Prompt)
	}
	imgs := e.Outputs["2"]["images"]
	if len(imgs) != 1 || imgs[0]["filename"] != "webtest_00001_.png" || imgs[0]["type"] != "output" {
		t.Fatalf("outputs %v", e.Outputs)
	}
	if e.Meta["2"]["node_id"] != "2" {
		t.Fatalf("meta %v", e.Meta)
	}
	q := url.Values{"filename": {"webtest_00001_.png"}, "subfolder": {""}, "type": {"output"}}
	for _, p := range []string{"/view?", "/api/view?"} {
		code, body := ts.do(t, "GET", p+q.Encode(), nil)
		if code != 200 {
			t.Fatalf("%s: %d", p, code)
		}
		img, err := png.Decode(bytes.NewReader(body))
		if err != nil || img.Bounds().Dx() != 16 || img.Bounds().Dy() != 8 {
			t.Fatalf("view image: %v %v", err, img)
		}
	}

	// Fully cached run: no executing for any node, executed replayed for the output node.
	id2 := ts.queue(t, map[string]any{"prompt": prompt, "client_id": "client-a"})
	msgs = c.until(t, id2, 10*time.Second)
	want = []string{"status", "status", "execution_start", "execution_cached:[1 2]",
		"executed:2", "progress_state", "execution_success", "status", "executing:null"}
	if got := labels(msgs); !reflect.DeepEqual(got, want) {
		t.Fatalf("cached run events\n got %v\nwant %v", got, want)
	}
	ts.getJSON(t, "/history/"+id2, &hist)
	if got := hist[id2].Outputs["2"]["images"][0]["filename"]; got != "webtest_00001_.png" {
		t.Errorf("cached run output %v", got)
	}

	// A prompt from a client without a socket runs; other clients see only status broadcasts.
	other := dialWS(t, ts, "")
	id3 := ts.queue(t, map[string]any{"prompt": imagePrompt(0.5, "webtest"), "client_id": "nobody"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		var h map[string]any
		ts.getJSON(t, "/history/"+id3, &h)
		if len(h) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("prompt for an absent client never finished")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	for {
		select {
		case m := <-other.ch:
			if m.Type != "status" && m.Type != "progress_state" {
				t.Errorf("bystander got %s", m.Raw)
			}
			continue
		default:
		}
		break
	}
}

func TestValidationErrors(t *testing.T) {
	ts := newTestServer(t, "")
	type errBody struct {
		Error struct {
			Type, Message, Details string
			ExtraInfo              map[string]any `json:"extra_info"`
		} `json:"error"`
		NodeErrors map[string]struct {
			Errors []struct {
				Type, Message, Details string
				ExtraInfo              map[string]any `json:"extra_info"`
			} `json:"errors"`
			DependentOutputs []string `json:"dependent_outputs"`
			ClassType        string   `json:"class_type"`
		} `json:"node_errors"`
	}
	post := func(body string) (int, errBody) {
		code, b := ts.do(t, "POST", "/prompt", body)
		var e errBody
		if code == 400 {
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("400 body not JSON: %s", b)
			}
		}
		return code, e
	}
	code, e := post(`{"client_id": "x"}`)
	if code != 400 || e.Error.Type != "no_prompt" || e.Error.Message != "No prompt provided" {
		t.Errorf("no prompt: %d %+v", code, e)
	}
	code, e = post(`{"prompt": {"1": {"class_type": "NoSuchNode", "inputs": {}}}}`)
	// The exact type/message are the executor's (ComfyUI 0.8: invalid_prompt "Cannot execute because
	// node X does not exist."; later: missing_node_type); the shape is the server's.
	if code != 400 || (e.Error.Type != "invalid_prompt" && e.Error.Type != "missing_node_type") || !strings.Contains(e.Error.Message, "NoSuchNode") || e.Error.Details != "Node ID '#1'" {
		t.Errorf("unknown class: %d %+v", code, e)
	}
	code, e = post(`{"prompt": {"1": {"class_type": "WebTestImage", "inputs": {"width": 8, "height": 8, "value": 0.1}}}}`)
	if code != 400 || e.Error.Type != "prompt_no_outputs" {
		t.Errorf("no outputs: %d %+v", code, e)
	}
	code, e = post(`{"prompt": {"1": {"class_type": "WebTestImage", "inputs": {"width": 8, "height": 99999, "value": 0.1}},
		"2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}}`)
	if code != 400 || e.Error.Type != "prompt_outputs_failed_validation" || e.Error.Message != "Prompt outputs failed validation" {
		t.Fatalf("bad value: %d %+v", code, e)
	}
	ne, ok := e.NodeErrors["1"]
	if !ok || len(ne.Errors) != 1 || ne.Errors[0].Type != "value_bigger_than_max" || ne.ClassType != "WebTestImage" || !reflect.DeepEqual(ne.DependentOutputs, []string{"2"}) {
		t.Errorf("node_errors %+v", e.NodeErrors)
	}
	// Malformed JSON: ComfyUI-style 400, and the server keeps working.
	for _, bad := range []string{`{`, `not json`, `[1,2]`, `{"prompt": [1]}`, `{"prompt": "x"}`, `{"prompt": {"1": 5}}`, "\x00\xff", `{"prompt": {}, "number": "abc"}`} {
		code, b := ts.do(t, "POST", "/prompt", bad)
		if code != 400 {
			t.Errorf("POST /prompt %q: %d %s", bad, code, b)
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil || m["error"] == nil {
			t.Errorf("POST /prompt %q: body %s", bad, b)
		}
	}
	for _, p := range []string{"/queue", "/history", "/settings", "/free"} {
		if code, _ := ts.do(t, "POST", p, `{"clear": `); code != 400 {
			t.Errorf("malformed POST %s: %d", p, code)
		}
	}
	// Interrupt accepts anything.
	if code, _ := ts.do(t, "POST", "/interrupt", `garbage`); code != 200 {
		t.Errorf("interrupt with garbage: %d", code)
	}
	// A partially valid prompt runs the good output and reports the bad one on 200.
	code, b := ts.do(t, "POST", "/prompt", `{"prompt": {"1": {"class_type": "WebTestImage", "inputs": {"width": 8, "height": 99999, "value": 0.1}},
		"2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
		"3": {"class_type": "WebTestText", "inputs": {"value": 7}}}}`)
	var ok200 struct {
		PromptID   string                    `json:"prompt_id"`
		Number     float64                   `json:"number"`
		NodeErrors map[string]map[string]any `json:"node_errors"`
	}
	if code != 200 || json.Unmarshal(b, &ok200) != nil || ok200.NodeErrors["1"] == nil {
		t.Errorf("partial prompt: %d %s", code, b)
	}
	if code, _ := ts.do(t, "GET", "/system_stats", nil); code != 200 {
		t.Fatalf("server unhealthy after bad input: %d", code)
	}
}

func TestInterrupt(t *testing.T) {
	ts := newTestServer(t, "")
	c := dialWS(t, ts, "int")
	prompt := map[string]any{
		"1": map[string]any{"class_type": "WebTestImage", "inputs": map[string]any{"width": 4, "height": 4, "value": 0.3}},
		"2": map[string]any{"class_type": "WebTestSleep", "inputs": map[string]any{"image": []any{"1", 0}, "steps": 100000, "step_ms": 5}},
		"3": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"2", 0}, "filename_prefix": "int"}},
	}
	id := ts.queue(t, map[string]any{"prompt": prompt, "client_id": "int"})
	queued := ts.queue(t, map[string]any{"prompt": imagePrompt(0.9, "after"), "client_id": "int"})
	// Wait for progress of the sleeping node.
	for {
		m := c.next(t, 10*time.Second)
		if m.Type == "progress" && m.Data["node"] == "2" {
			break
		}
	}
	var q struct {
		Running [][]any `json:"queue_running"`
		Pending [][]any `json:"queue_pending"`
	}
	ts.getJSON(t, "/queue", &q)
	if len(q.Running) != 1 || q.Running[0][1] != id || len(q.Pending) != 1 || q.Pending[0][1] != queued {
		t.Fatalf("queue %v", q)
	}
	// An interrupt naming another prompt is a no-op.
	ts.do(t, "POST", "/interrupt", map[string]any{"prompt_id": "someone-else"})
	time.Sleep(30 * time.Millisecond)
	if ts.q.runningID() != id {
		t.Fatal("interrupt for another prompt stopped the running one")
	}
	start := time.Now()
	ts.do(t, "POST", "/interrupt", map[string]any{"prompt_id": id})
	msgs := c.until(t, id, 10*time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("interrupt took %v", d)
	}
	got := labels(msgs)
	var sawInterrupted bool
	for i, l := range got {
		if l == "execution_interrupted" {
			sawInterrupted = true
			if msgs[i].Data["node_id"] != "2" {
				t.Errorf("interrupted node %v", msgs[i].Data)
			}
			if rest := got[i+1:]; !reflect.DeepEqual(rest, []string{"status", "executing:null"}) {
				t.Errorf("after interrupt: %v", rest)
			}
		}
		if l == "execution_success" || l == "executed:3" {
			t.Errorf("interrupted run sent %s", l)
		}
	}
	if !sawInterrupted {
		t.Fatalf("no execution_interrupted in %v", got)
	}
	var hist map[string]struct {
		Status struct {
			StatusStr string `json:"status_str"`
			Completed bool   `json:"completed"`
		} `json:"status"`
	}
	ts.getJSON(t, "/history/"+id, &hist)
	if s := hist[id].Status; s.StatusStr != "error" || s.Completed {
		t.Errorf("interrupted history status %+v", s)
	}
	// The next prompt runs normally (the interrupt flag does not leak).
	msgs = c.until(t, queued, 10*time.Second)
	if l := labels(msgs); !contains(l, "execution_success") {
		t.Errorf("next prompt after interrupt: %v", l)
	}
	// Jobs API classifies the interrupted run as cancelled.
	var jobs struct {
		Jobs []map[string]any `json:"jobs"`
	}
	ts.getJSON(t, "/api/jobs?status=cancelled", &jobs)
	if len(jobs.Jobs) != 1 || jobs.Jobs[0]["id"] != id {
		t.Errorf("cancelled jobs %v", jobs.Jobs)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestExecutionError(t *testing.T) {
	ts := newTestServer(t, "")
	c := dialWS(t, ts, "err")
	id := ts.queue(t, map[string]any{"client_id": "err", "prompt": map[string]any{
		"1": map[string]any{"class_type": "WebTestImage", "inputs": map[string]any{"width": 4, "height": 4, "value": 0.3}},
		"2": map[string]any{"class_type": "WebTestFail", "inputs": map[string]any{"image": []any{"1", 0}}},
	}})
	msgs := c.until(t, id, 10*time.Second)
	got := labels(msgs)
	want := []string{"execution_error", "status", "executing:null"}
	if len(got) < 3 || !reflect.DeepEqual(got[len(got)-3:], want) {
		t.Fatalf("error run %v", got)
	}
	ee := msgs[len(msgs)-3]
	if ee.Data["node_id"] != "2" || ee.Data["node_type"] != "WebTestFail" || !strings.Contains(ee.Data["exception_message"].(string), "always fails") {
		t.Errorf("execution_error %s", ee.Raw)
	}
	var jobs struct {
		Jobs []map[string]any `json:"jobs"`
	}
	ts.getJSON(t, "/api/jobs/"+id, new(map[string]any))
	ts.getJSON(t, "/api/jobs?status=failed", &jobs)
	if len(jobs.Jobs) != 1 || jobs.Jobs[0]["execution_error"] == nil {
		t.Errorf("failed jobs %v", jobs.Jobs)
	}
}

func TestPreviewFrames(t *testing.T) {
	ts := newTestServer(t, "")
	legacy := dialWS(t, ts, "legacy")
	meta := dialWS(t, ts, "meta")
	meta.conn.WriteMessage(websocket.TextMessage, []byte(`{"type": "feature_flags", "data": {"supports_preview_metadata": true}}`))
	if m := meta.next(t, 5*time.Second); m.Type != "feature_flags" || m.Data["supports_preview_metadata"] != true {
		t.Fatalf("feature_flags reply %s", m.Raw)
	}
	prompt := func(v float64) map[string]any {
		return map[string]any{
			"1": map[string]any{"class_type": "WebTestImage", "inputs": map[string]any{"width": 4, "height": 4, "value": v}},
			"2": map[string]any{"class_type": "WebTestSleep", "inputs": map[string]any{"image": []any{"1", 0}, "steps": 2, "step_ms": 1, "preview": true}},
			"3": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"2", 0}, "filename_prefix": "pv"}},
		}
	}
	check := func(c *testWS, client string, v float64, withMeta bool) {
		id := ts.queue(t, map[string]any{"prompt": prompt(v), "client_id": client})
		msgs := c.until(t, id, 10*time.Second)
		var seq []string
		for _, m := range msgs {
			if m.Type == "binary" {
				typ := binary.BigEndian.Uint32(m.Binary[0:4])
				seq = append(seq, fmt.Sprintf("binary%d", typ))
				var img []byte
				if typ == 1 {
					if f := binary.BigEndian.Uint32(m.Binary[4:8]); f != 1 {
						t.Errorf("format %d", f)
					}
					img = m.Binary[8:]
				} else {
					n := binary.BigEndian.Uint32(m.Binary[4:8])
					var md map[string]any
					if err := json.Unmarshal(m.Binary[8:8+n], &md); err != nil || md["node_id"] != "2" || md["prompt_id"] != id || md["image_type"] != "image/jpeg" {
						t.Errorf("metadata %s", m.Binary[8:8+n])
					}
					img = m.Binary[8+n:]
				}
				cfg, err := jpeg.DecodeConfig(bytes.NewReader(img))
				if err != nil || cfg.Width != 512 || cfg.Height != 256 {
					t.Errorf("preview image %v %+v (want 512x256, downscaled)", err, cfg)
				}
			} else if m.Type == "progress" {
				seq = append(seq, "progress")
			}
		}
		want := []string{"progress", "binary1", "progress", "binary1"}
		if withMeta {
			want = []string{"binary4", "progress", "binary4", "progress"}
		}
		if !reflect.DeepEqual(seq, want) {
			t.Errorf("%s: %v want %v", client, seq, want)
		}
	}
	check(legacy, "legacy", 0.1, false)
	check(meta, "meta", 0.2, true)
}
