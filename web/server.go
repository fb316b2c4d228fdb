// Package web is comfygo's ComfyUI-compatible server: the HTTP API, the /ws websocket, a durable
// queue and history (bbolt), and the built-in page or an official ComfyUI frontend build.
//
// Every API route answers at its path and under /api (ComfyUI's aliasing); /internal/* and
// static files are not aliased. See routes.go for the list.
//
// Durability: the queue and the history live in <user dir>/comfygo.db (bbolt, one fsync per
// change). After a crash or kill -9 every queued prompt is restored and runs; a prompt that was
// running is re-run once (twice found running → recorded as an error, so a prompt that crashes
// the process cannot crash-loop it). A graceful stop (SIGINT/SIGTERM) requeues the running prompt
// without counting the attempt. Sensitive extra_data keys (comfy.org API keys) are never written.
//
// Websocket clients: each has a bounded queue (Config.ClientQueue frames) drained by its own
// writer goroutine; producing an event never blocks the executor. A client whose queue is full
// is disconnected (it reconnects with the same clientId and re-syncs from /history or
// /api/jobs, as the ComfyUI frontend does). Binary frames are ComfyUI's: previews (type 1 JPEG
// downscaled to 512, or type 4 with metadata for clients that announced
// supports_preview_metadata), SaveImageWebsocket's full-size PNGs in the same framing, and
// progress text (type 3, broadcast). While a prompt runs, a client that got nothing for
// Config.KeepAlive (5 s) is re-sent the last status message, so that SDKs with an inactivity
// timeout do not take a long silent node for a dropped connection.
//
// Client compatibility tests: testdata/*.py run ComfyUI's script_examples flows (Python
// websocket-client), and sdktest/ drives `comfygo serve` with Node SDKs from npm.
//
// Safety: loopback-only by default with a loopback-Host check (DNS rebinding), ComfyUI's
// Host-vs-Origin check (plus Sec-Fetch-Site), optional bearer/cookie token, request body limit,
// and every client-supplied path confined to its folder with symlinks resolved.
package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/comfygo/comfygo/nodes"
)

// Version is the ComfyUI version comfygo's API follows (reported in /system_stats).
const Version = "0.8.0"

// Config configures a Server.
type Config struct {
	// Env gives the node folders (input, output, temp, user, models) and shared services.
	Env *nodes.Env
	// Engine runs prompts (ExecutorEngine adapts the executor package); required.
	Engine Engine
	// Page is the built-in web page (must contain index.html), served at / when FrontEndRoot is "".
	Page fs.FS
	// FrontEndRoot, when set, is a directory holding an official ComfyUI frontend build (dist),
	// served at / instead of Page.
	FrontEndRoot string
	// TemplatesRoot, when set, is served at /templates/ (the workflow template gallery).
	TemplatesRoot string
	// AuthToken, when set, is required on every request: "Authorization: Bearer <token>", the
	// comfygo_token cookie, or ?token=<token> (which sets the cookie).
	AuthToken string
	// CORSOrigin, when set, replaces the origin check by CORS headers allowing that origin.
	CORSOrigin string
	// LoopbackOnly (set when listening on a loopback address) refuses requests whose Host is not
	// a loopback name or address: a DNS-rebinding page cannot reach the server.
	LoopbackOnly bool
	// MaxUploadSize limits request bodies in bytes (default 100 MiB).
	MaxUploadSize int64
	// MaxHistory caps the history (default 10000, like ComfyUI).
	MaxHistory int
	// ClientQueue is the number of frames a websocket client may lag behind before it is
	// disconnected (default DefaultClientQueue).
	ClientQueue int
	// KeepAlive: while a prompt runs, a websocket client that received nothing for this long is
	// re-sent the last status message (default DefaultKeepAlive; negative disables it). SDKs
	// such as @saintno/comfyui-sdk treat 10 s without a message as a lost connection, and CPU
	// nodes (model loading, a large VAE decode, one SDXL step) can be silent for longer.
	KeepAlive time.Duration
	// MaxClients caps concurrent websocket connections (default 1000); more are refused with 503.
	MaxClients int
	// DBPath is the queue/history database (default <user dir>/comfygo.db).
	DBPath string
	// Argv is reported in /system_stats.
	Argv []string
	// Log receives the server's log; nil means slog.Default().
	Log *slog.Logger
	// Logs, when set, backs /internal/logs and the logs websocket messages.
	Logs *LogRing
}

// Server is a running comfygo server. Create it with New, serve Handler (or ListenAndServe),
// then Close.
type Server struct {
	cfg    Config
	log    *slog.Logger
	env    *nodes.Env
	engine Engine
	store  *Store
	hub    *Hub
	q      *queue
	mux    *http.ServeMux
	h      http.Handler

	upgrader websocket.Upgrader
	cancel   context.CancelFunc
	workerWG sync.WaitGroup
	closeMu  sync.Once

	jobsMu    sync.Mutex
	jobsCache map[uint64]*job // /api/jobs rows of history entries, by store sequence

	freeMu                 sync.Mutex
	freeUnload, freeMemory bool // POST /free flags, applied by the worker between prompts
}

// New opens the database, restores the queue (a prompt that was running when the previous
// process died is re-run once) and starts the worker.
func New(cfg Config) (*Server, error) {
	if cfg.Env == nil || cfg.Env.Folders == nil {
		return nil, errors.New("web: Config.Env with Folders is required")
	}
	if cfg.Engine == nil {
		return nil, errors.New("web: Config.Engine is required")
	}
	if cfg.MaxUploadSize <= 0 {
		cfg.MaxUploadSize = 100 << 20
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 1000
	}
	if cfg.MaxHistory <= 0 {
		cfg.MaxHistory = 10000
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	f := cfg.Env.Folders
	for _, d := range []string{f.Input, f.Output, f.Temp, f.User} {
		if d == "" {
			return nil, errors.New("web: input, output, temp and user folders must be set")
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("create folder %s: %w", d, err)
		}
	}
	if cfg.FrontEndRoot != "" {
		if _, err := os.Stat(filepath.Join(cfg.FrontEndRoot, "index.html")); err != nil {
			return nil, fmt.Errorf("--front-end-root %s: no index.html (point it at the frontend's dist folder): %w", cfg.FrontEndRoot, err)
		}
	}
	if cfg.DBPath == "" {
		cfg.DBPath = filepath.Join(f.User, "comfygo.db")
	}
	st, err := OpenStore(cfg.DBPath)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, env: cfg.Env, store: st, engine: cfg.Engine}
	s.hub = NewHub(log, cfg.ClientQueue, s.features())
	s.hub.keepAlive = cfg.KeepAlive
	if cfg.KeepAlive == 0 {
		s.hub.keepAlive = DefaultKeepAlive
	}
	s.q, err = newQueue(st, cfg.MaxHistory, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	s.upgrader = websocket.Upgrader{
		ReadBufferSize: 4096, WriteBufferSize: 16384,
		// The origin check already ran in guard (or CORS is enabled on purpose).
		CheckOrigin: func(*http.Request) bool { return true },
	}
	if cfg.Logs != nil {
		cfg.Logs.setHub(s.hub)
	}
	s.routes()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.workerWG.Add(1)
	go s.worker(ctx)
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.h }

// Hub returns the websocket hub (for statistics).
func (s *Server) Hub() *Hub { return s.hub }

// Close stops the worker (interrupting the running prompt, which stays queued and re-runs at
// the next start), disconnects websocket clients and closes the database.
func (s *Server) Close() error {
	var err error
	s.closeMu.Do(func() {
		s.cancel()
		s.q.close()
		s.engine.Interrupt("")
		s.workerWG.Wait()
		s.hub.closeAll()
		err = s.store.Close()
	})
	return err
}

// ListenAndServe serves on addr until ctx is cancelled, then shuts down gracefully: it stops
// accepting requests, waits up to 10 s for running requests, and closes the server.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is ListenAndServe on an existing listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.h, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.hub.closeAll()
	err := hs.Shutdown(sctx)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// newSID returns 32 lowercase hex characters (a UUID4 without dashes, as ComfyUI's sid).
func newSID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}

// newUUID returns a UUID4 string with dashes.
func newUUID() string {
	h := newSID()
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// features is the server feature-flags object (/features and the ws handshake).
func (s *Server) features() map[string]any {
	return map[string]any{"supports_preview_metadata": true, "max_upload_size": s.cfg.MaxUploadSize}
}
