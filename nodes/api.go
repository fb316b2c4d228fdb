// Package nodes is comfygo's node API — the one custom-node authors use — and its registry.
//
// A node pack registers its node types from init, the way Caddy modules register:
//
//	func init() { nodes.Register(&nodes.Def{Name: "MyNode", ...}) }
//
// and a user builds a binary that imports the pack. The registry renders ComfyUI's /object_info.
package nodes

import (
	"context"
	"fmt"
	"image"
	"log/slog"
	"sync"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/internal/tensor"
)

// Widget and common socket types.
const (
	TypeInt     = "INT"
	TypeFloat   = "FLOAT"
	TypeString  = "STRING"
	TypeBoolean = "BOOLEAN"
	TypeCombo   = "COMBO"
	TypeAny     = "*"
	TypeImage   = "IMAGE"
	TypeMask    = "MASK"
	TypeLatent  = "LATENT"
	TypeModel   = "MODEL"
	TypeClip    = "CLIP"
	TypeVAE     = "VAE"
	TypeCond    = "CONDITIONING"
)

// Def declares a node type: ComfyUI's INPUT_TYPES, RETURN_TYPES, FUNCTION and class attributes.
type Def struct {
	Name        string // registered class_type
	DisplayName string // defaults to Name
	Category    string // defaults to "sd"
	Description string
	Module      string // python_module in /object_info; defaults to "nodes" (built-ins) or the pack name

	Required []Input
	Optional []Input
	Hidden   []Hidden

	Outputs []Output

	OutputNode    bool
	InputIsList   bool // INPUT_IS_LIST: Execute receives whole lists ([]any) per input
	NotIdempotent bool // node id is part of the cache key
	Deprecated    bool
	Experimental  bool
	APINode       bool // api_node in /object_info
	// V3 renders the node in /object_info the way ComfyUI renders V3 (comfy_api io) nodes:
	// combos as ["COMBO", {"options": [...]}], hidden inputs as 1-element lists, and every
	// optional key present. Without it combos use the legacy form [[options...], {...}] of
	// ComfyUI's classic nodes.py nodes.
	V3 bool
	// Async: Execute runs on its own goroutine while the executor keeps running other ready
	// nodes (ComfyUI's async FUNCTION). Execute must then only touch its own inputs.
	Async bool

	// Execute runs one (list-mapped) call. Inputs hold the assembled values of this call.
	Execute func(ctx *Context, in Inputs) (Result, error)

	// IsChanged (optional) returns a fingerprint that becomes part of the cache key. Linked inputs
	// arrive as nil. Returning math.NaN() means "always changed".
	IsChanged func(ctx *Context, in Inputs) (any, error)

	// Validate (optional) is ComfyUI's VALIDATE_INPUTS.
	Validate *Validator

	// CheckLazy (optional) is check_lazy_status: it returns the names of lazy inputs still needed.
	// Unevaluated lazy inputs arrive as nil.
	CheckLazy func(ctx *Context, in Inputs) ([]string, error)
}

// Input declares one input: a widget (INT, FLOAT, STRING, BOOLEAN, COMBO) or a socket type.
type Input struct {
	Name string
	Type string // "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "IMAGE", "*", "IMAGE,MASK", ...

	Default any // frontend default (the backend never applies it)
	// Min, Max, Step, Round: numbers (int, int64, uint64 or float64) or nil.
	Min, Max, Step, Round any

	Multiline bool
	// Options is the COMBO list; OptionsFunc computes it on demand (e.g. files of a models folder).
	Options     []string
	OptionsFunc func(env *Env) []string
	// ControlAfterGenerate adds the seed widget's control value (and its extra widgets_values slot).
	ControlAfterGenerate bool
	Lazy                 bool
	RawLink              bool
	ForceInput           bool
	ImageUpload          bool // LoadImage's "image_upload"
	Tooltip              string
	// Extra holds any other option rendered verbatim into /object_info (display, label_on, ...).
	Extra map[string]any
}

// Hidden declares a hidden input: a kwarg name and its marker ("UNIQUE_ID", "PROMPT",
// "DYNPROMPT", "EXTRA_PNGINFO", ...; an unknown marker injects nothing).
type Hidden struct {
	Name   string
	Marker string
}

// Output declares one output slot.
type Output struct {
	Type    string
	Name    string // display name; defaults to Type
	IsList  bool   // OUTPUT_IS_LIST
	Tooltip string
}

// Validator is VALIDATE_INPUTS. The names it declares switch off the built-in min/max/combo checks
// for those inputs (AllInputs: for every input, like **kwargs); InputTypes switches off the link
// type check and fills Func's inputTypes argument.
type Validator struct {
	Inputs     []string
	AllInputs  bool
	InputTypes bool
	// Func returns nil when valid, or an error whose message is reported as custom_validation_failed.
	// Linked inputs arrive as nil.
	Func func(ctx *Context, in Inputs, inputTypes map[string]string) error
}

// Result is what one Execute call returns.
type Result struct {
	// Outputs has one value per output slot. For an IsList output the value is a []any.
	// An output value may be a Blocker, or (with Expand) a graph.Link into the expanded graph.
	Outputs []any
	// UI is the node's UI payload (ComfyUI's "ui" dict of lists), e.g. {"images": [...]}.
	UI map[string][]any
	// Expand, when non-nil, is a subgraph to run in place of this node (node expansion).
	Expand *graph.Prompt
	// Block, when non-nil, blocks every output (ExecutionBlocker returned as the whole result).
	Block *Blocker
}

// Blocker is ComfyUI's ExecutionBlocker: a value meaning "compute nothing from this".
// A non-empty Message is reported once as a non-fatal execution_error.
type Blocker struct {
	Message string
	HasMsg  bool
}

// Latent is ComfyUI's LATENT dict.
type Latent struct {
	Samples    *tensor.Tensor // [B,4,H/8,W/8]
	NoiseMask  *tensor.Tensor // optional, [B,1,H,W] or [B,H,W]
	BatchIndex []int          // optional
}

// Reporter receives progress from a running node; the executor implements it.
type Reporter interface {
	// Progress reports value out of max for node nodeID; preview may be nil.
	Progress(nodeID string, value, max float64, preview image.Image)
}

// ImageReporter is implemented by Reporters that can send a full-size image to the prompt's
// client (ComfyUI's SaveImageWebsocket): PNG, never downscaled, in the preview frame format.
type ImageReporter interface {
	// ProgressImage reports value out of max for node nodeID, like Progress, with img as a
	// full-size PNG.
	ProgressImage(nodeID string, value, max float64, img image.Image)
}

// TextReporter is implemented by Reporters that can show progress text on a node (ComfyUI's
// PromptServer.send_progress_text, binary websocket frame type 3).
type TextReporter interface {
	ProgressText(nodeID, text string)
}

// Context is what Execute and the other callbacks receive: cancellation (interrupt), progress,
// the node's identity and the shared environment.
type Context struct {
	context.Context
	PromptID  string
	NodeID    string // the (possibly ephemeral) node id
	DisplayID string
	Env       *Env
	Reporter  Reporter // may be nil
	// CallIndex is the list-mapping index of this call (0 for a single call); it is part of
	// the default GraphBuilder prefix.
	CallIndex int
	// Prompt is the live prompt (original plus expanded nodes); during validation (Validator.Func)
	// the prompt being validated.
	Prompt DynPrompt

	graphIndex int
}

// DynPrompt is ComfyUI's DynamicPrompt: the submitted prompt plus the ephemeral nodes created
// by node expansion. It is what a DYNPROMPT hidden input receives.
type DynPrompt interface {
	// Node returns a node by id, ephemeral nodes first.
	Node(id string) (*graph.Node, bool)
	// RealID follows expansion parents up to the node of the submitted prompt.
	RealID(id string) string
	// ParentID is the node whose expansion created id ("" for submitted nodes).
	ParentID(id string) string
	// DisplayID is the id the UI shows for id.
	DisplayID(id string) string
	// Original is the submitted (validated) prompt.
	Original() *graph.Prompt
	// NodeIDs lists every node id, submitted nodes first (document order), then ephemeral ones
	// in creation order.
	NodeIDs() []string
}

// Exception is implemented by errors that name their exception_type (ComfyUI reports the
// Python exception class, e.g. "RuntimeError"); other errors report "RuntimeError".
type Exception interface {
	error
	ExceptionType() string
}

// NodeError is an error with an explicit exception_type.
type NodeError struct {
	Type string
	Msg  string
}

func (e *NodeError) Error() string         { return e.Msg }
func (e *NodeError) ExceptionType() string { return e.Type }

// Errorf returns a *NodeError of exception type typ.
func Errorf(typ, format string, args ...any) error {
	return &NodeError{Type: typ, Msg: fmt.Sprintf(format, args...)}
}

// Progress reports progress of the running node (ComfyUI's ProgressBar.update_absolute).
// It returns ctx.Err() so loops can stop on interrupt.
func (c *Context) Progress(value, max float64, preview image.Image) error {
	if c.Reporter != nil {
		c.Reporter.Progress(c.NodeID, value, max, preview)
	}
	return c.Err()
}

// SendImage reports progress value/max with img sent full size as PNG (ComfyUI's
// ProgressBar.update_absolute(value, max, ("PNG", img, None)), as SaveImageWebsocket does).
// A Reporter without ImageReporter gets img as an ordinary preview. It returns ctx.Err().
func (c *Context) SendImage(value, max float64, img image.Image) error {
	switch r := c.Reporter.(type) {
	case nil:
	case ImageReporter:
		r.ProgressImage(c.NodeID, value, max, img)
	default:
		r.Progress(c.NodeID, value, max, img)
	}
	return c.Err()
}

// ProgressText shows text on the running node in the UI (ComfyUI's send_progress_text); it is
// dropped when the Reporter has no TextReporter.
func (c *Context) ProgressText(text string) {
	if r, ok := c.Reporter.(TextReporter); ok {
		r.ProgressText(c.NodeID, text)
	}
}

// Env is the environment shared by every node of one executor: folders, logging, and
// lazily-created shared services (e.g. the ONNX Runtime and the loaded-model cache).
type Env struct {
	Folders *Folders
	Log     *slog.Logger
	// Options are read-only start-up settings from flags, e.g. "provider" (cpu|cuda|auto),
	// "onnxruntime-lib", "device-id", "threads". Model nodes read them when creating the ORT runtime.
	Options map[string]string

	mu       sync.Mutex
	services map[string]any
}

// Service returns the shared service named key, creating it with create on first use.
func (e *Env) Service(key string, create func() (any, error)) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if v, ok := e.services[key]; ok {
		return v, nil
	}
	v, err := create()
	if err != nil {
		return nil, err
	}
	if e.services == nil {
		e.services = map[string]any{}
	}
	e.services[key] = v
	return v, nil
}

// UnloadAll calls UnloadAll on every service that has one (POST /free "unload_models": model
// managers and caches drop what they hold).
func (e *Env) UnloadAll() {
	e.mu.Lock()
	var us []interface{ UnloadAll() }
	for _, v := range e.services {
		if u, ok := v.(interface{ UnloadAll() }); ok {
			us = append(us, u)
		}
	}
	e.mu.Unlock()
	for _, u := range us {
		u.UnloadAll()
	}
}

// Logger returns Env's logger, or slog's default.
func (e *Env) Logger() *slog.Logger {
	if e == nil || e.Log == nil {
		return slog.Default()
	}
	return e.Log
}

// Conditioning is ComfyUI's CONDITIONING: a list of entries, each a cross-attention tensor with
// options (pooled_output, area, strength, SDXL size conditioning, ...).
type Conditioning []CondEntry

// CondEntry is one conditioning entry.
type CondEntry struct {
	Cond   *tensor.Tensor // [1,T,D]
	Pooled *tensor.Tensor // [1,P] or nil
	// Options holds ComfyUI's per-entry dict values: "strength" (float64), "area"
	// ([4]int{h,w,y,x} in latent pixels), "set_area_to_bounds", "mask", "width", "height",
	// "crop_w", "crop_h", "target_width", "target_height", "aesthetic_score", ...
	Options map[string]any
}
