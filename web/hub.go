package web

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/jpeg"
	"image/png"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Binary websocket frame types (ComfyUI's BinaryEventTypes).
const (
	BinaryPreviewImage             = 1
	BinaryText                     = 3
	BinaryPreviewImageWithMetadata = 4
	formatJPEG                     = 1
	formatPNG                      = 2
)

// Hub fans events out to websocket clients. Every client has its own bounded queue drained by
// its own writer goroutine, so sending never blocks the caller (the executor): a client whose
// queue is full (it stopped reading, or reads slower than events are produced for
// DefaultClientQueue frames) is disconnected and must reconnect and re-sync from /history.
type Hub struct {
	log      *slog.Logger
	maxQueue int
	flags    []byte // server feature flags JSON

	mu      sync.Mutex
	clients map[string]*wsClient
	curSID  string // client of the running prompt
	curNode string // its executing node ("" when none)

	dropped atomic.Int64 // clients disconnected for falling behind

	keepAlive  time.Duration          // see Config.KeepAlive; <= 0: off
	busy       atomic.Bool            // a prompt is running
	lastStatus atomic.Pointer[[]byte] // the last broadcast status message
}

// DefaultKeepAlive is how long a client may go without a frame while a prompt runs before it
// is re-sent the last status message.
const DefaultKeepAlive = 5 * time.Second

// SetBusy tells the hub whether a prompt is running (keepalive status messages are sent only
// then).
func (h *Hub) SetBusy(busy bool) { h.busy.Store(busy) }

// DefaultClientQueue is the number of frames a websocket client may lag behind before it is
// disconnected.
const DefaultClientQueue = 8192

type wsClient struct {
	sid       string
	conn      *websocket.Conn
	out       chan *frame
	closeOnce sync.Once
	done      chan struct{}
	metadata  atomic.Bool // announced supports_preview_metadata
	logs      atomic.Bool // subscribed to logs
	held      *frame      // legacy preview held until the next frame (guarded by Hub.mu)
}

// frame is one outgoing websocket message: JSON text, or a preview image encoded on demand.
type frame struct {
	text    []byte
	preview *previewFrame
	binary  []byte
}

// previewFrame is one preview image shared by every recipient; it is encoded once, lazily, by
// the first writer that needs it (never on the executor's goroutine).
type previewFrame struct {
	img    image.Image
	png    bool
	full   bool           // full size (SaveImageWebsocket): never downscaled
	meta   map[string]any // type-4 metadata without image_type
	once   sync.Once
	data   []byte
	format uint32
}

// PreviewSize is the largest preview side in pixels (ComfyUI's --preview-size default).
const PreviewSize = 512

// fitPreview downscales img (nearest neighbour) to fit PreviewSize, keeping the aspect ratio.
func fitPreview(img image.Image) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= PreviewSize && h <= PreviewSize || w == 0 || h == 0 {
		return img
	}
	nw, nh := PreviewSize, h*PreviewSize/w
	if h > w {
		nw, nh = w*PreviewSize/h, PreviewSize
	}
	nw, nh = max(nw, 1), max(nh, 1)
	out := image.NewRGBA(image.Rect(0, 0, nw, nh))
	for y := 0; y < nh; y++ {
		for x := 0; x < nw; x++ {
			out.Set(x, y, img.At(b.Min.X+x*w/nw, b.Min.Y+y*h/nh))
		}
	}
	return out
}

func (p *previewFrame) encode() {
	p.once.Do(func() {
		var buf bytes.Buffer
		img := p.img
		if !p.full {
			img = fitPreview(img)
		}
		if p.png {
			enc := png.Encoder{CompressionLevel: png.BestSpeed}
			_ = enc.Encode(&buf, img)
			p.format = formatPNG
		} else {
			_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
			p.format = formatJPEG
		}
		p.data = buf.Bytes()
		p.img = nil
	})
}

// bytesFor returns the binary frame for a client (type 4 with metadata, else legacy type 1).
func (p *previewFrame) bytesFor(withMeta bool) []byte {
	p.encode()
	if withMeta && p.meta != nil {
		m := make(map[string]any, len(p.meta)+1)
		for k, v := range p.meta {
			m[k] = v
		}
		if p.format == formatPNG {
			m["image_type"] = "image/png"
		} else {
			m["image_type"] = "image/jpeg"
		}
		mj := orderedObject(m, previewMetaOrder)
		out := make([]byte, 8, 8+len(mj)+len(p.data))
		binary.BigEndian.PutUint32(out[0:4], BinaryPreviewImageWithMetadata)
		binary.BigEndian.PutUint32(out[4:8], uint32(len(mj)))
		out = append(out, mj...)
		return append(out, p.data...)
	}
	out := make([]byte, 8, 8+len(p.data))
	binary.BigEndian.PutUint32(out[0:4], BinaryPreviewImage)
	binary.BigEndian.PutUint32(out[4:8], p.format)
	return append(out, p.data...)
}

var previewMetaOrder = []string{"node_id", "prompt_id", "display_node_id", "parent_node_id", "real_node_id", "image_type"}

// NewHub returns a hub; flags is the server feature-flags object sent in the handshake.
func NewHub(log *slog.Logger, maxQueue int, flags any) *Hub {
	if maxQueue <= 0 {
		maxQueue = DefaultClientQueue
	}
	fj, _ := json.Marshal(flags)
	return &Hub{log: log, maxQueue: maxQueue, flags: fj, clients: map[string]*wsClient{}}
}

// Clients returns the number of connected websocket clients.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// Dropped returns how many clients were disconnected for falling behind.
func (h *Hub) Dropped() int64 { return h.dropped.Load() }

// message renders {"type": name, "data": data} with data's keys in ComfyUI's order.
func message(name string, data any) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"type": `)
	nj, _ := json.Marshal(name)
	buf.Write(nj)
	buf.WriteString(`, "data": `)
	buf.Write(orderedData(name, data))
	buf.WriteByte('}')
	return buf.Bytes()
}

// eventOrder is ComfyUI's key order of each message's data.
var eventOrder = map[string][]string{
	"status":                {"status", "sid"},
	"execution_start":       {"prompt_id", "timestamp"},
	"execution_cached":      {"nodes", "prompt_id", "timestamp"},
	"executing":             {"node", "display_node", "prompt_id"},
	"progress":              {"value", "max", "prompt_id", "node"},
	"progress_state":        {"prompt_id", "nodes"},
	"executed":              {"node", "display_node", "output", "prompt_id"},
	"execution_success":     {"prompt_id", "timestamp"},
	"execution_error":       {"prompt_id", "node_id", "node_type", "executed", "exception_message", "exception_type", "traceback", "current_inputs", "current_outputs", "timestamp"},
	"execution_interrupted": {"prompt_id", "node_id", "node_type", "executed", "timestamp"},
	"logs":                  {"entries", "size"},
}

// orderedData marshals data; if it is a JSON object and the event has a known key order, the
// keys are re-emitted in that order (the rest after, sorted).
func orderedData(name string, data any) []byte {
	raw, err := json.Marshal(data)
	if err != nil {
		return []byte("null")
	}
	order, ok := eventOrder[name]
	if !ok || len(raw) == 0 || raw[0] != '{' {
		return raw
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return raw
	}
	return orderedRaw(m, order)
}

// orderedObject marshals m with the keys in order first.
func orderedObject(m map[string]any, order []string) []byte {
	rm := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		b, err := json.Marshal(v)
		if err != nil {
			b = []byte("null")
		}
		rm[k] = b
	}
	return orderedRaw(rm, order)
}

func orderedRaw(m map[string]json.RawMessage, order []string) []byte {
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	put := func(k string, v json.RawMessage) {
		if !first {
			buf.WriteString(", ")
		}
		first = false
		kj, _ := json.Marshal(k)
		buf.Write(kj)
		buf.WriteString(": ")
		buf.Write(v)
	}
	seen := make(map[string]bool, len(order))
	for _, k := range order {
		if v, ok := m[k]; ok {
			put(k, v)
			seen[k] = true
		}
	}
	var rest []string
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		put(k, m[k])
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// Send delivers event name to client sid, or to every client when sid is "".
func (h *Hub) Send(name string, data any, sid string) {
	msg := message(name, data)
	h.mu.Lock()
	defer h.mu.Unlock()
	if name == "executing" {
		h.trackExecuting(data, sid)
	}
	if name == "status" && sid == "" {
		h.lastStatus.Store(&msg)
	}
	h.deliverLocked(&frame{text: msg}, sid)
}

// trackExecuting remembers which node of which client runs, for the reconnect message.
func (h *Hub) trackExecuting(data any, sid string) {
	raw, _ := json.Marshal(data)
	var d struct {
		Node        *string `json:"node"`
		DisplayNode *string `json:"display_node"`
	}
	_ = json.Unmarshal(raw, &d)
	if d.Node == nil {
		h.curSID, h.curNode = "", ""
		return
	}
	h.curSID, h.curNode = sid, *d.Node
	if d.DisplayNode != nil && *d.DisplayNode != "" {
		h.curNode = *d.DisplayNode
	}
}

// Preview delivers a preview image to client sid (every client when sid is ""). meta is the
// type-4 metadata (node_id, prompt_id, display_node_id, parent_node_id, real_node_id); png
// selects PNG instead of JPEG.
func (h *Hub) Preview(img image.Image, png bool, meta map[string]any, sid string) {
	p := &previewFrame{img: img, png: png, meta: meta}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deliverLocked(&frame{preview: p}, sid)
}

// Image delivers a full-size image (SaveImageWebsocket) to client sid (every client when sid
// is ""): PNG, not downscaled, framed and ordered like a preview (type 1 with format 2, or type
// 4 with image/png for clients that announced preview metadata).
func (h *Hub) Image(img image.Image, meta map[string]any, sid string) {
	p := &previewFrame{img: img, png: true, full: true, meta: meta}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deliverLocked(&frame{preview: p}, sid)
}

// Text delivers a type-3 progress-text frame to every client.
func (h *Hub) Text(nodeID, text string) { h.TextTo(nodeID, text, "") }

// TextTo delivers a type-3 progress-text frame ([node id length][node id][text]) to client sid
// (every client when sid is "").
func (h *Hub) TextTo(nodeID, text, sid string) {
	b := make([]byte, 8, 8+len(nodeID)+len(text))
	binary.BigEndian.PutUint32(b[0:4], BinaryText)
	binary.BigEndian.PutUint32(b[4:8], uint32(len(nodeID)))
	b = append(b, nodeID...)
	b = append(b, text...)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.deliverLocked(&frame{binary: b}, sid)
}

// SendLogs delivers a logs message to the subscribed clients.
func (h *Hub) SendLogs(data any) {
	msg := message("logs", data)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.clients {
		if c.logs.Load() {
			h.enqueueLocked(c, &frame{text: msg})
		}
	}
}

// Subscribe toggles log messages for client sid.
func (h *Hub) Subscribe(sid string, on bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.clients[sid]; c != nil {
		c.logs.Store(on)
	}
}

func (h *Hub) deliverLocked(f *frame, sid string) {
	if sid == "" {
		for _, c := range h.clients {
			h.enqueueLocked(c, f)
		}
		return
	}
	if c := h.clients[sid]; c != nil {
		h.enqueueLocked(c, f)
	}
}

// enqueueLocked queues f for c without blocking; a full queue disconnects c. A preview for a
// client without preview metadata is held back until the next frame: ComfyUI sends legacy
// (type 1) previews after the progress message, metadata (type 4) previews before it.
func (h *Hub) enqueueLocked(c *wsClient, f *frame) {
	if f.preview != nil && !c.metadata.Load() {
		if c.held != nil {
			h.pushLocked(c, c.held)
		}
		c.held = f
		return
	}
	h.pushLocked(c, f)
	if c.held != nil {
		held := c.held
		c.held = nil
		h.pushLocked(c, held)
	}
}

func (h *Hub) pushLocked(c *wsClient, f *frame) {
	select {
	case <-c.done:
		return // already disconnected
	default:
	}
	select {
	case c.out <- f:
	default:
		h.dropped.Add(1)
		// Log asynchronously: the log output may itself feed the hub (LogRing).
		go h.log.Warn("websocket client too slow, disconnecting", "sid", c.sid, "queue", cap(c.out))
		if h.clients[c.sid] == c {
			delete(h.clients, c.sid)
		}
		c.close()
	}
}

func (c *wsClient) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		_ = c.conn.Close()
	})
}

// serve registers conn under sid, sends the connect status (statusData) and runs the client
// until it disconnects.
func (h *Hub) serve(conn *websocket.Conn, sid string, statusData any) {
	c := &wsClient{sid: sid, conn: conn, out: make(chan *frame, h.maxQueue), done: make(chan struct{})}
	h.mu.Lock()
	if old := h.clients[sid]; old != nil {
		old.close()
	}
	h.clients[sid] = c
	h.enqueueLocked(c, &frame{text: message("status", statusData)})
	if h.curSID == sid && h.curNode != "" {
		h.enqueueLocked(c, &frame{text: message("executing", map[string]any{"node": h.curNode})})
	}
	h.mu.Unlock()

	go h.reader(c)
	h.writer(c)
	h.mu.Lock()
	if h.clients[sid] == c { // a reconnect may already have replaced us
		delete(h.clients, sid)
	}
	h.mu.Unlock()
}

func (h *Hub) writer(c *wsClient) {
	defer c.close()
	ping := time.NewTicker(30 * time.Second)
	defer ping.Stop()
	var keep <-chan time.Time
	if h.keepAlive > 0 {
		t := time.NewTicker(h.keepAlive / 10)
		defer t.Stop()
		keep = t.C
	}
	last := time.Now() // last frame written
	for {
		var f *frame
		select {
		case f = <-c.out:
		case <-c.done:
			return
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second)); err != nil {
				return
			}
			continue
		case <-keep:
			st := h.lastStatus.Load()
			if st == nil || !h.busy.Load() || time.Since(last) < h.keepAlive {
				continue
			}
			f = &frame{text: *st}
		}
		last = time.Now()
		_ = c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		var err error
		switch {
		case f.text != nil:
			err = c.conn.WriteMessage(websocket.TextMessage, f.text)
		case f.preview != nil:
			err = c.conn.WriteMessage(websocket.BinaryMessage, f.preview.bytesFor(c.metadata.Load()))
		default:
			err = c.conn.WriteMessage(websocket.BinaryMessage, f.binary)
		}
		if err != nil {
			return
		}
	}
}

// reader handles the feature-flags handshake (the first text message) and ignores the rest.
func (h *Hub) reader(c *wsClient) {
	defer c.close()
	c.conn.SetReadLimit(1 << 20)
	first := true
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		if typ != websocket.TextMessage || !first {
			continue
		}
		first = false
		var m struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if json.Unmarshal(data, &m) != nil || m.Type != "feature_flags" {
			continue
		}
		if v, _ := m.Data["supports_preview_metadata"].(bool); v {
			c.metadata.Store(true)
		}
		h.mu.Lock()
		h.enqueueLocked(c, &frame{text: []byte(`{"type": "feature_flags", "data": ` + string(h.flags) + `}`)})
		h.mu.Unlock()
	}
}

// closeAll disconnects every client.
func (h *Hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sid, c := range h.clients {
		_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
		c.close()
		delete(h.clients, sid)
	}
}
