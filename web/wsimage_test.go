package web

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image/png"
	"reflect"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/comfygo/comfygo/nodes"
)

func init() {
	nodes.Register(&nodes.Def{
		Name: "WebTestProgressText", Category: "_for_testing/web", OutputNode: true,
		Required: []nodes.Input{{Name: "text", Type: nodes.TypeString, Default: "working"}},
		Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
			ctx.ProgressText(in.String("text"))
			return nodes.Result{}, nil
		},
	})
}

func wsImagePrompt(w, h int) map[string]any {
	return map[string]any{
		"1":                         map[string]any{"class_type": "WebTestImage", "inputs": map[string]any{"width": w, "height": h, "value": 0.5}},
		"save_image_websocket_node": map[string]any{"class_type": "SaveImageWebsocket", "inputs": map[string]any{"images": []any{"1", 0}}},
	}
}

// checkPNGFrame checks a type-1 PNG frame of a w×h image with every channel 127.
func checkPNGFrame(t *testing.T, b []byte, w, h int) {
	t.Helper()
	if len(b) < 8 || binary.BigEndian.Uint32(b[0:4]) != BinaryPreviewImage || binary.BigEndian.Uint32(b[4:8]) != formatPNG {
		t.Fatalf("frame header % x, want type 1 format 2", b[:min(8, len(b))])
	}
	checkPNG(t, b[8:], w, h)
}

func checkPNG(t *testing.T, b []byte, w, h int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode png: %v", err)
	}
	if img.Bounds().Dx() != w || img.Bounds().Dy() != h {
		t.Fatalf("image %v, want %dx%d (full size)", img.Bounds(), w, h)
	}
	if r, g, bb, _ := img.At(w-1, h-1).RGBA(); r>>8 != 127 || g>>8 != 127 || bb>>8 != 127 {
		t.Fatalf("pixel %d %d %d, want 127", r>>8, g>>8, bb>>8)
	}
}

func TestSaveImageWebsocketFrames(t *testing.T) {
	ts := newTestServer(t, "")
	legacy := dialWS(t, ts, "legacy")
	meta := dialWS(t, ts, "meta")
	meta.conn.WriteMessage(websocket.TextMessage, []byte(`{"type": "feature_flags", "data": {"supports_preview_metadata": true}}`))
	if m := meta.next(t, 5*time.Second); m.Type != "feature_flags" {
		t.Fatalf("feature_flags reply %s", m.Raw)
	}
	const w, h = 700, 300 // larger than the 512 preview size: must not be downscaled

	// A legacy client: executing, then progress, then the type-1 PNG frame.
	id := ts.queue(t, map[string]any{"prompt": wsImagePrompt(w, h), "client_id": "legacy"})
	msgs := legacy.until(t, id, 10*time.Second)
	want := []string{"status", "status", "execution_start", "execution_cached:[]",
		"progress_state", "executing:1", "progress_state",
		"progress_state", "executing:save_image_websocket_node", "progress_state", "progress:0/1", "binary", "progress_state",
		"execution_success", "status", "executing:null"}
	if got := labels(msgs); !reflect.DeepEqual(got, want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
	for _, m := range msgs {
		if m.Type == "binary" {
			checkPNGFrame(t, m.Binary, w, h)
		}
	}
	// Nothing is saved and history has no output for the node.
	var hist map[string]map[string]any
	ts.getJSON(t, "/history/"+id, &hist)
	if outs := hist[id]["outputs"].(map[string]any); len(outs) != 0 {
		t.Errorf("history outputs %v, want none", outs)
	}

	// A client with preview metadata: type 4 with image/png, same node ids; re-executes although
	// its input is cached (IS_CHANGED is always new).
	id2 := ts.queue(t, map[string]any{"prompt": wsImagePrompt(w, h), "client_id": "meta"})
	msgs = meta.until(t, id2, 10*time.Second)
	for len(msgs) > 0 && msgs[0].Type == "status" { // the first prompt's and this one's queue updates
		msgs = msgs[1:]
	}
	want = []string{"execution_start", "execution_cached:[1]",
		"progress_state", "executing:save_image_websocket_node", "progress_state", "binary", "progress:0/1", "progress_state",
		"execution_success", "status", "executing:null"}
	if got := labels(msgs); !reflect.DeepEqual(got, want) {
		t.Fatalf("metadata client events\n got %v\nwant %v", got, want)
	}
	for _, m := range msgs {
		if m.Type != "binary" {
			continue
		}
		b := m.Binary
		if binary.BigEndian.Uint32(b[0:4]) != BinaryPreviewImageWithMetadata {
			t.Fatalf("frame type %d, want 4", binary.BigEndian.Uint32(b[0:4]))
		}
		n := binary.BigEndian.Uint32(b[4:8])
		var md map[string]any
		if err := json.Unmarshal(b[8:8+n], &md); err != nil {
			t.Fatal(err)
		}
		if md["image_type"] != "image/png" || md["node_id"] != "save_image_websocket_node" || md["prompt_id"] != id2 {
			t.Errorf("metadata %v", md)
		}
		checkPNG(t, b[8+n:], w, h)
	}
	// The legacy client saw only the broadcast status messages of the second prompt.
	for _, m := range legacy.drain(300 * time.Millisecond) {
		if m.Type != "status" {
			t.Errorf("legacy client got %s of another client's prompt", label(m))
		}
	}
}

func TestProgressTextFrame(t *testing.T) {
	ts := newTestServer(t, "")
	a := dialWS(t, ts, "a")
	other := dialWS(t, ts, "other")
	id := ts.queue(t, map[string]any{"client_id": "a", "prompt": map[string]any{
		"5": map[string]any{"class_type": "WebTestProgressText", "inputs": map[string]any{"text": "step 1 ✓"}}}})
	msgs := a.until(t, id, 10*time.Second)
	check := func(ms []wsMsg, who string) {
		t.Helper()
		n := 0
		for _, m := range ms {
			if m.Type != "binary" {
				continue
			}
			n++
			b := m.Binary
			l := binary.BigEndian.Uint32(b[4:8])
			if binary.BigEndian.Uint32(b[0:4]) != BinaryText || string(b[8:8+l]) != "5" || string(b[8+l:]) != "step 1 ✓" {
				t.Errorf("%s: text frame % x", who, b)
			}
		}
		if n != 1 {
			t.Errorf("%s: %d text frames, want 1", who, n)
		}
	}
	check(msgs, "submitter")
	check(other.drain(500*time.Millisecond), "other client (ComfyUI broadcasts progress text)")
}

// drain returns the messages that arrive within d.
func (c *testWS) drain(d time.Duration) []wsMsg {
	var out []wsMsg
	deadline := time.After(d)
	for {
		select {
		case m, ok := <-c.ch:
			if !ok {
				return out
			}
			out = append(out, m)
		case <-deadline:
			return out
		}
	}
}
