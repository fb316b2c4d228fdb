package web

import (
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// routes registers every route. API routes are served at their path and under /api (ComfyUI's
// aliasing); /internal/* and static files are not aliased.
func (s *Server) routes() {
	mux := http.NewServeMux()
	api := func(method, p string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+p, h)
		mux.HandleFunc(method+" /api"+p, h)
	}
	api("GET", "/ws", s.handleWS)
	api("GET", "/prompt", s.handleGetPrompt)
	api("POST", "/prompt", s.handlePostPrompt)
	api("GET", "/queue", s.handleGetQueue)
	api("POST", "/queue", s.handlePostQueue)
	api("POST", "/interrupt", s.handleInterrupt)
	api("POST", "/free", s.handleFree)
	api("GET", "/history", s.handleGetHistory)
	api("GET", "/history/{id}", s.handleGetHistoryID)
	api("POST", "/history", s.handlePostHistory)
	api("GET", "/jobs", s.handleJobs) // /jobs, /api/jobs (and /api/api/jobs below)
	api("GET", "/jobs/{id}", s.handleJob)
	mux.HandleFunc("GET /api/api/jobs", s.handleJobs)
	mux.HandleFunc("GET /api/api/jobs/{id}", s.handleJob)
	api("GET", "/object_info", s.handleObjectInfo)
	api("GET", "/object_info/{class}", s.handleObjectInfoClass)
	api("GET", "/view", s.handleView)
	api("GET", "/view_metadata/{folder}", s.handleViewMetadata)
	api("POST", "/upload/image", s.handleUploadImage)
	api("POST", "/upload/mask", s.handleUploadMask)
	api("GET", "/system_stats", s.handleSystemStats)
	api("GET", "/features", s.handleFeatures)
	api("GET", "/embeddings", s.handleEmbeddings)
	api("GET", "/extensions", s.handleExtensions)
	api("GET", "/models", s.handleModels)
	api("GET", "/models/{folder}", s.handleModelFolder)
	api("GET", "/experiment/models", s.handleExperimentModels)
	api("GET", "/experiment/models/{folder}", s.handleExperimentModelFolder)
	api("GET", "/experiment/models/preview/{folder}/{index}/{file...}", http.NotFound)
	api("GET", "/users", s.handleGetUsers)
	api("POST", "/users", s.handlePostUsers)
	api("GET", "/settings", s.handleGetSettings)
	api("POST", "/settings", s.handlePostSettings)
	api("GET", "/settings/{id}", s.handleGetSetting)
	api("POST", "/settings/{id}", s.handlePostSetting)
	api("GET", "/userdata", s.handleListUserdata)
	api("GET", "/v2/userdata", s.handleListUserdataV2)
	api("GET", "/userdata/{file}", s.handleGetUserdata)
	api("POST", "/userdata/{file}", s.handlePostUserdata)
	api("DELETE", "/userdata/{file}", s.handleDeleteUserdata)
	api("POST", "/userdata/{file}/move/{dest}", s.handleMoveUserdata)
	api("GET", "/i18n", emptyObject)
	api("GET", "/workflow_templates", emptyObject)
	api("GET", "/global_subgraphs", emptyObject)
	api("GET", "/global_subgraphs/{id}", s.handleGlobalSubgraph)
	mux.HandleFunc("GET /internal/logs", s.handleLogs)
	mux.HandleFunc("GET /internal/logs/raw", s.handleLogsRaw)
	mux.HandleFunc("PATCH /internal/logs/subscribe", s.handleLogsSubscribe)
	mux.HandleFunc("GET /internal/folder_paths", s.handleFolderPaths)
	mux.HandleFunc("GET /internal/files/{type}", s.handleInternalFiles)

	if s.cfg.TemplatesRoot != "" {
		mux.Handle("GET /templates/", http.StripPrefix("/templates/", noListing(http.Dir(s.cfg.TemplatesRoot))))
	}
	var root fs.FS
	switch {
	case s.cfg.FrontEndRoot != "":
		root = os.DirFS(s.cfg.FrontEndRoot)
	case s.cfg.Page != nil:
		root = s.cfg.Page
	}
	mux.Handle("GET /", s.static(root))
	s.mux = mux
	s.h = s.recoverer(s.guard(mux))
}

// static serves the web root: / is index.html (never cached), other files as they are, no
// directory listings.
func (s *Server) static(root fs.FS) http.Handler {
	if root == nil {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/" || r.URL.Path == "/api/" {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				_, _ = w.Write([]byte("comfygo is running. No web page is bundled in this build; use --front-end-root DIR to serve a ComfyUI frontend.\n"))
				return
			}
			http.NotFound(w, r)
		})
	}
	files := noListing(http.FS(root))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/" || p == "/api/" || p == "/index.html" {
			b, err := fs.ReadFile(root, "index.html")
			if err != nil {
				http.NotFound(w, r)
				return
			}
			h := w.Header()
			h.Set("Cache-Control", "no-cache")
			h.Set("Pragma", "no-cache")
			h.Set("Expires", "0")
			h.Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(b)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// noListing serves files from fsys but answers 404 for directories.
func noListing(fsys http.FileSystem) http.Handler {
	fsrv := http.FileServer(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := path.Clean("/" + r.URL.Path)
		if strings.HasSuffix(r.URL.Path, "/") && p != "/" {
			http.NotFound(w, r)
			return
		}
		f, err := fsys.Open(p)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		st, err := f.Stat()
		f.Close()
		if err != nil || st.IsDir() {
			http.NotFound(w, r)
			return
		}
		fsrv.ServeHTTP(w, r)
	})
}

// handleWS upgrades to the websocket and runs the client.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	sid := r.URL.Query().Get("clientId")
	if sid == "" || len(sid) > 256 {
		sid = newSID()
	}
	if s.hub.Clients() >= s.cfg.MaxClients {
		http.Error(w, "too many websocket clients", http.StatusServiceUnavailable)
		return
	}
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader already answered
	}
	s.hub.serve(conn, sid, map[string]any{"status": s.statusData(), "sid": sid})
}
