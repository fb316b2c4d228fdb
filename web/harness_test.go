package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/comfygo/comfygo/executor"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
	_ "github.com/comfygo/comfygo/nodes/core" // SaveImage, PreviewImage
)

// Test fixture nodes: real node types run by the real executor.
func init() {
	nodes.Register(
		&nodes.Def{
			Name: "WebTestImage", Category: "_for_testing/web",
			Required: []nodes.Input{
				{Name: "width", Type: nodes.TypeInt, Default: 8, Min: 1, Max: 4096},
				{Name: "height", Type: nodes.TypeInt, Default: 8, Min: 1, Max: 4096},
				{Name: "value", Type: nodes.TypeFloat, Default: 0.5, Min: 0.0, Max: 1.0},
			},
			Outputs: []nodes.Output{{Type: nodes.TypeImage}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				w, h := int(in.Int("width")), int(in.Int("height"))
				t := tensor.New(1, h, w, 3)
				v := float32(in.Float("value"))
				for i := range t.Data {
					t.Data[i] = v
				}
				return nodes.Out(t)
			},
		},
		&nodes.Def{
			Name: "WebTestSleep", Category: "_for_testing/web",
			Required: []nodes.Input{
				{Name: "image", Type: nodes.TypeImage},
				{Name: "steps", Type: nodes.TypeInt, Default: 3, Min: 1, Max: 100000},
				{Name: "step_ms", Type: nodes.TypeInt, Default: 10, Min: 0, Max: 100000},
			},
			Optional: []nodes.Input{{Name: "preview", Type: nodes.TypeBoolean, Default: false}},
			Outputs:  []nodes.Output{{Type: nodes.TypeImage}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				steps, ms := in.Int("steps"), in.Int("step_ms")
				for i := int64(1); i <= steps; i++ {
					select {
					case <-ctx.Done():
						return nodes.Result{}, ctx.Err()
					case <-time.After(time.Duration(ms) * time.Millisecond):
					}
					var pv image.Image
					if in.Bool("preview") {
						pv = image.NewRGBA(image.Rect(0, 0, 1024, 512))
					}
					if err := ctx.Progress(float64(i), float64(steps), pv); err != nil {
						return nodes.Result{}, err
					}
				}
				return nodes.Out(in.Tensor("image"))
			},
		},
		&nodes.Def{
			Name: "WebTestText", Category: "_for_testing/web", OutputNode: true,
			Required: []nodes.Input{{Name: "value", Type: nodes.TypeInt, Default: 0, Min: 0, Max: 1 << 40}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Result{UI: map[string][]any{"text": {fmt.Sprint(in.Int("value"))}}}, nil
			},
		},
		&nodes.Def{
			Name: "WebTestFail", Category: "_for_testing/web", OutputNode: true,
			Required: []nodes.Input{{Name: "image", Type: nodes.TypeImage}},
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return nodes.Result{}, errors.New("this node always fails")
			},
		},
	)
}

// testServer is a server on a free 127.0.0.1 port.
type testServer struct {
	*Server
	URL  string // http://127.0.0.1:port
	Host string // 127.0.0.1:port
	Dir  string
	stop func()
}

type serverOpt func(*Config)

func newTestServer(t testing.TB, dir string, opts ...serverOpt) *testServer {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	folders := nodes.NewFolders(filepath.Join(dir, "models"), filepath.Join(dir, "input"),
		filepath.Join(dir, "output"), filepath.Join(dir, "temp"), filepath.Join(dir, "user"))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.Default()
	}
	env := &nodes.Env{Folders: folders, Log: log}
	cfg := Config{Env: env, Engine: ExecutorEngine(executor.New(executor.Config{Env: env})), Log: log, Logs: NewLogRing(0)}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx, ln); close(done) }()
	ts := &testServer{Server: s, URL: "http://" + ln.Addr().String(), Host: ln.Addr().String(), Dir: dir}
	var once sync.Once
	ts.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(ts.stop)
	return ts
}

// do sends a request and returns status and body.
func (ts *testServer) do(t testing.TB, method, path string, body any, hdr ...string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (ts *testServer) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	code, b := ts.do(t, "GET", path, nil)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

// queue posts a prompt and returns the prompt id.
func (ts *testServer) queue(t testing.TB, body map[string]any) string {
	t.Helper()
	code, b := ts.do(t, "POST", "/prompt", body)
	if code != 200 {
		t.Fatalf("POST /prompt: %d %s", code, b)
	}
	var r struct {
		PromptID string `json:"prompt_id"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.PromptID
}

// wsMsg is one received websocket frame.
type wsMsg struct {
	Type   string
	Data   map[string]any
	Binary []byte
	Raw    []byte
}

// testWS is a test websocket client collecting frames.
type testWS struct {
	conn *websocket.Conn
	ch   chan wsMsg
	sid  string
}

func dialWS(t testing.TB, ts *testServer, clientID string) *testWS {
	t.Helper()
	u := "ws://" + ts.Host + "/ws"
	if clientID != "" {
		u += "?clientId=" + clientID
	}
	conn, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	c := &testWS{conn: conn, ch: make(chan wsMsg, 20000)}
	go func() {
		defer close(c.ch)
		for {
			typ, data, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if typ == websocket.BinaryMessage {
				c.ch <- wsMsg{Type: "binary", Binary: data}
				continue
			}
			var m struct {
				Type string         `json:"type"`
				Data map[string]any `json:"data"`
			}
			if err := json.Unmarshal(data, &m); err != nil {
				panic(fmt.Sprintf("bad ws json %s: %v", data, err))
			}
			c.ch <- wsMsg{Type: m.Type, Data: m.Data, Raw: data}
		}
	}()
	first := c.next(t, 5*time.Second)
	if first.Type != "status" {
		t.Fatalf("first message %s, want status", first.Raw)
	}
	c.sid, _ = first.Data["sid"].(string)
	t.Cleanup(func() { conn.Close() })
	return c
}

func (c *testWS) next(t testing.TB, d time.Duration) wsMsg {
	t.Helper()
	select {
	case m, ok := <-c.ch:
		if !ok {
			t.Fatal("websocket closed")
		}
		return m
	case <-time.After(d):
		t.Fatalf("no websocket message within %v", d)
	}
	return wsMsg{}
}

// until collects messages up to and including the executing{node:null} of promptID.
func (c *testWS) until(t testing.TB, promptID string, d time.Duration) []wsMsg {
	t.Helper()
	deadline := time.Now().Add(d)
	var out []wsMsg
	for {
		m := c.next(t, time.Until(deadline))
		out = append(out, m)
		if m.Type == "executing" && m.Data["node"] == nil && m.Data["prompt_id"] == promptID {
			return out
		}
	}
}

// label renders a message as "type" or "type:node" for sequence comparisons.
func label(m wsMsg) string {
	switch m.Type {
	case "executing", "executed":
		if n, ok := m.Data["node"].(string); ok {
			return m.Type + ":" + n
		}
		return m.Type + ":null"
	case "progress":
		return fmt.Sprintf("progress:%v/%v", m.Data["value"], m.Data["max"])
	case "execution_cached":
		return fmt.Sprintf("execution_cached:%v", m.Data["nodes"])
	}
	return m.Type
}

func labels(ms []wsMsg) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, label(m))
	}
	return out
}
