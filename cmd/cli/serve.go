package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/comfygo/comfygo/web"
	"github.com/comfygo/comfygo/web/page"
)

func init() {
	commands["serve"] = command{summary: "serve ComfyUI's HTTP + websocket API and the web page", run: runServe}
}

func runServe(args []string) int {
	fl := flag.NewFlagSet("serve", flag.ContinueOnError)
	listen := fl.String("listen", "127.0.0.1", "address to listen on (loopback only by default; 0.0.0.0 exposes the server: use --auth-token)")
	port := fl.Int("port", 8188, "port to listen on")
	var ef envFlags
	ef.register(fl)
	frontEnd := fl.String("front-end-root", "", "serve an official ComfyUI frontend build (its dist folder) instead of the built-in page")
	templates := fl.String("templates-root", "", "serve this folder at /templates/ (workflow template gallery)")
	authToken := fl.String("auth-token", os.Getenv("COMFYGO_AUTH_TOKEN"), "require this token (Authorization: Bearer, or visit /?token=...); default $COMFYGO_AUTH_TOKEN")
	cors := fl.String("enable-cors-header", "", "allow cross-origin browser requests from this origin ('*' for any) instead of the origin check")
	maxUpload := fl.Float64("max-upload-size", 100, "maximum request body / upload size in MB")
	verbose := fl.Bool("verbose", false, "debug logging")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "serve: unexpected arguments %v\n", fl.Args())
		return 2
	}

	ring := web.NewLogRing(300)
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(os.Stderr, ring), &slog.HandlerOptions{Level: level}))

	env, err := ef.env(log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	cleanTemp(env.Folders.Temp, log)
	ex := ef.executor(env)

	if !web.IsLoopback(*listen) && *authToken == "" {
		log.Warn("listening on a non-loopback address without --auth-token: anyone who can reach this port can run prompts and read your outputs", "listen", *listen)
	}
	srv, err := web.New(web.Config{
		Env:           env,
		Engine:        web.ExecutorEngine(ex),
		Page:          page.FS(),
		FrontEndRoot:  *frontEnd,
		TemplatesRoot: *templates,
		AuthToken:     *authToken,
		CORSOrigin:    *cors,
		LoopbackOnly:  web.IsLoopback(*listen),
		MaxUploadSize: int64(*maxUpload * (1 << 20)),
		Argv:          append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...),
		Log:           log,
		Logs:          ring,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	addr := net.JoinHostPort(*listen, strconv.Itoa(*port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		srv.Close()
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	host := *listen
	if host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	log.Info("comfygo serving", "url", "http://"+net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))+"/")
	if err := srv.Serve(ctx, ln); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	log.Info("comfygo stopped")
	return 0
}

// tempMarker marks a temp folder comfygo created, so that emptying it at start (as ComfyUI does
// for PreviewImage files) can never wipe a folder the user pointed --temp-dir at by mistake.
const tempMarker = ".comfygo-temp"

// cleanTemp empties the temp folder if comfygo created it, and (re)creates it with its marker.
func cleanTemp(dir string, log *slog.Logger) {
	ents, err := os.ReadDir(dir)
	if err == nil && len(ents) > 0 {
		if _, err := os.Stat(filepath.Join(dir, tempMarker)); err != nil {
			log.Warn("not emptying the temp folder: comfygo did not create it", "dir", dir)
			return
		}
		for _, e := range ents {
			if e.Name() != tempMarker {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					log.Warn("cannot empty temp folder", "dir", dir, "err", err)
				}
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Warn("cannot create temp folder", "dir", dir, "err", err)
		return
	}
	_ = os.WriteFile(filepath.Join(dir, tempMarker), nil, 0o644)
}
