package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"image"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	json "github.com/goccy/go-json"

	"github.com/comfygo/comfygo/executor"
	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/nodes"
	"github.com/comfygo/comfygo/nodes/testpack"
)

// Exit codes of `comfygo run` and `comfygo convert`, for scripts.
const (
	exitOK         = 0 // the prompt ran
	exitFailed     = 1 // a node failed, or the run was interrupted
	exitUsage      = 2 // bad flags or arguments
	exitBadInput   = 3 // the file could not be read or is not a workflow/prompt
	exitValidation = 4 // the prompt did not validate (ComfyUI's 400 error)
)

func init() {
	commands["run"] = command{summary: "execute a workflow (.json or .png/.webp) headless and print where outputs went", run: runRun}
	commands["convert"] = command{summary: "print the API prompt of a workflow (.json or .png/.webp)", run: runConvert}
	commands["nodes"] = command{summary: "list the registered node types", run: runNodes}
}

// loadPrompt reads a workflow or prompt file in any format ComfyUI users have.
func loadPrompt(path string, env *nodes.Env) (*graph.Prompt, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return parsePrompt(path, data, env)
}

// parsePrompt converts a file's content (workflow, prompt or image) to an API prompt.
func parsePrompt(path string, data []byte, env *nodes.Env) (*graph.Prompt, []byte, error) {
	p, wf, err := graph.LoadAny(data, nodes.Schema(env))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, wf, nil
}

func runRun(args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var ef envFlags
	ef.register(fs)
	quiet := fs.Bool("quiet", false, "no progress output")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: comfygo run [flags] <workflow.json|prompt.json|image.png|image.webp>")
		fs.PrintDefaults()
		fmt.Fprintln(fs.Output(), "\nexit codes: 0 ran, 1 a node failed or interrupted, 2 usage, 3 unreadable input, 4 validation failed")
	}
	if err := fs.Parse(reorderArgs(fs, args)); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "comfygo run:", err)
		return exitBadInput
	}
	env, err := ef.env(slog.Default())
	if err != nil {
		fmt.Fprintln(os.Stderr, "comfygo run:", err)
		return exitFailed
	}
	p, wf, err := parsePrompt(fs.Arg(0), data, env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "comfygo run:", err)
		return exitBadInput
	}
	ex := ef.executor(env)
	outputs, _, verr := ex.Validate(p, nil)
	if verr != nil {
		printValidation(os.Stderr, p, verr)
		return exitValidation
	}
	extra := map[string]any{"client_id": "cli"}
	if len(wf) > 0 && json.Valid(wf) {
		// raw, so the workflow embedded into saved images keeps its key order
		extra["extra_pnginfo"] = map[string]any{"workflow": json.RawMessage(wf)}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sink := &cliSink{out: os.Stderr, quiet: *quiet, prompt: p, start: time.Now()}
	hist := ex.Execute(ctx, executor.Job{PromptID: "cli", Prompt: p, ExtraData: extra, Outputs: outputs, ClientID: "cli"}, sink)
	sink.finish()
	if hist.Status.StatusStr != "success" {
		for _, m := range hist.Status.Messages {
			if m.Event == "execution_error" || m.Event == "execution_interrupted" {
				fmt.Fprintln(os.Stderr, "comfygo run:", describeFailure(m))
			}
		}
		return exitFailed
	}
	printOutputs(os.Stdout, env, hist)
	return exitOK
}

// reorderArgs lets flags follow the positional argument (`comfygo run wf.json --output-dir x`).
func reorderArgs(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if f := fs.Lookup(name); f != nil {
				if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
					continue
				}
				if i+1 < len(args) {
					flags = append(flags, args[i+1])
					i++
				}
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

// describeFailure renders an execution_error / execution_interrupted message for a terminal.
func describeFailure(m executor.Message) string {
	b, _ := json.Marshal(m.Data)
	var d struct {
		NodeID  string `json:"node_id"`
		Type    string `json:"node_type"`
		Message string `json:"exception_message"`
		ExcType string `json:"exception_type"`
	}
	_ = json.Unmarshal(b, &d)
	if m.Event == "execution_interrupted" {
		return fmt.Sprintf("interrupted at node %s (%s)", d.NodeID, d.Type)
	}
	return fmt.Sprintf("node %s (%s) failed: %s: %s", d.NodeID, d.Type, d.ExcType, strings.TrimSpace(d.Message))
}

// printValidation prints ComfyUI's validation error in a readable form.
func printValidation(w io.Writer, p *graph.Prompt, verr *executor.ValidationError) {
	b, _ := json.Marshal(verr)
	var body struct {
		Error struct {
			Message string `json:"message"`
			Details string `json:"details"`
		} `json:"error"`
		NodeErrors map[string]struct {
			ClassType string `json:"class_type"`
			Errors    []struct {
				Type    string `json:"type"`
				Message string `json:"message"`
				Details string `json:"details"`
			} `json:"errors"`
		} `json:"node_errors"`
	}
	_ = json.Unmarshal(b, &body)
	fmt.Fprintf(w, "comfygo run: %s", body.Error.Message)
	if body.Error.Details != "" {
		fmt.Fprintf(w, ": %s", body.Error.Details)
	}
	fmt.Fprintln(w)
	ids := make([]string, 0, len(body.NodeErrors))
	for id := range body.NodeErrors {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ne := body.NodeErrors[id]
		for _, e := range ne.Errors {
			fmt.Fprintf(w, "  node %s (%s): %s", id, ne.ClassType, e.Message)
			if e.Details != "" {
				fmt.Fprintf(w, ": %s", e.Details)
			}
			fmt.Fprintln(w)
		}
	}
}

// printOutputs prints one line per output file: its path.
func printOutputs(w io.Writer, env *nodes.Env, h *executor.History) {
	if h.Outputs == nil {
		return
	}
	for _, id := range h.Outputs.Keys {
		ui, _ := h.Outputs.Get(id)
		b, _ := json.Marshal(ui)
		var files map[string][]struct {
			Filename  string `json:"filename"`
			Subfolder string `json:"subfolder"`
			Type      string `json:"type"`
		}
		if json.Unmarshal(b, &files) != nil {
			continue
		}
		for _, key := range []string{"images", "gifs", "videos", "audio"} {
			for _, f := range files[key] {
				root := env.Folders.Output
				switch f.Type {
				case "temp":
					root = env.Folders.Temp
				case "input":
					root = env.Folders.Input
				}
				fmt.Fprintln(w, filepath.Join(root, filepath.FromSlash(f.Subfolder), f.Filename))
			}
		}
	}
}

// cliSink renders executor events as a progress display on a terminal.
type cliSink struct {
	mu     sync.Mutex
	out    io.Writer
	quiet  bool
	prompt *graph.Prompt
	start  time.Time
	node   string
	line   bool
}

func (s *cliSink) Event(name string, data any, _ string) {
	if s.quiet {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, _ := data.(map[string]any)
	if m == nil {
		b, _ := json.Marshal(data)
		_ = json.Unmarshal(b, &m)
	}
	switch name {
	case "execution_cached":
		if ns, ok := m["nodes"].([]any); ok && len(ns) > 0 {
			s.println(fmt.Sprintf("cached: %d node(s)", len(ns)))
		}
	case "executing":
		id, _ := m["node"].(string)
		if id == "" {
			return
		}
		s.node = id
		s.println(fmt.Sprintf("[%6.2fs] %s", time.Since(s.start).Seconds(), s.title(id)))
	case "progress":
		v, _ := m["value"].(float64)
		mx, _ := m["max"].(float64)
		if mx <= 0 {
			return
		}
		const width = 30
		done := int(width * v / mx)
		done = min(max(done, 0), width)
		fmt.Fprintf(s.out, "\r  [%s%s] %3.0f%% %v/%v", strings.Repeat("#", done), strings.Repeat(".", width-done), 100*v/mx, v, mx)
		s.line = true
	}
}

func (s *cliSink) Preview(string, executor.PreviewMeta, image.Image) {}

func (s *cliSink) title(id string) string {
	if n, ok := s.prompt.Nodes[id]; ok {
		if t, ok := n.Meta["title"].(string); ok && t != "" && t != n.ClassType {
			return fmt.Sprintf("%s %s (%s)", id, t, n.ClassType)
		}
		return fmt.Sprintf("%s %s", id, n.ClassType)
	}
	return id
}

func (s *cliSink) println(msg string) {
	if s.line {
		fmt.Fprintln(s.out)
		s.line = false
	}
	fmt.Fprintln(s.out, msg)
}

func (s *cliSink) finish() {
	if s.quiet {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.println(fmt.Sprintf("done in %.2fs", time.Since(s.start).Seconds()))
}

func runConvert(args []string) int {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	var ef envFlags
	ef.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: comfygo convert [flags] <workflow.json|image.png|image.webp>  (prints the API prompt)")
		fs.PrintDefaults()
	}
	if err := fs.Parse(reorderArgs(fs, args)); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	if ef.testNodes {
		testpack.Register()
	}
	env := &nodes.Env{Folders: nodes.NewFolders(ef.modelsDir, ef.inputDir, ef.outputDir, ef.tempDir, ef.userDir)}
	p, _, err := loadPrompt(fs.Arg(0), env)
	if err != nil {
		fmt.Fprintln(os.Stderr, "comfygo convert:", err)
		return exitBadInput
	}
	b, err := graph.MarshalPython(p)
	if err == nil {
		b, err = indentJSON(b)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "comfygo convert:", err)
		return exitFailed
	}
	os.Stdout.Write(append(b, '\n'))
	return exitOK
}

func indentJSON(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func runNodes(args []string) int {
	fs := flag.NewFlagSet("nodes", flag.ContinueOnError)
	testNodes := fs.Bool("enable-test-nodes", false, "include ComfyUI's execution-test node pack")
	asJSON := fs.Bool("json", false, "print /object_info's JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *testNodes {
		testpack.Register()
	}
	env := &nodes.Env{Folders: nodes.NewFolders("models", "input", "output", "temp", "user")}
	if *asJSON {
		b, err := json.Marshal(nodes.ObjectInfoAll(env))
		if err != nil {
			fmt.Fprintln(os.Stderr, "comfygo nodes:", err)
			return exitFailed
		}
		os.Stdout.Write(append(b, '\n'))
		return exitOK
	}
	for _, d := range nodes.All() {
		cat := d.Category
		if cat == "" {
			cat = "sd"
		}
		fmt.Printf("%-32s %-28s %s\n", d.Name, cat, displayName(d))
	}
	return exitOK
}

func displayName(d *nodes.Def) string {
	if d.DisplayName != "" {
		return d.DisplayName
	}
	return d.Name
}
