package models

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/comfygo/comfygo/internal/onnx"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

// Session is one ONNX Runtime session with static input shapes.
type Session interface {
	Run(ctx context.Context, inputs map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error)
	Close() error
}

// SessionFactory creates sessions (internal/ort.Runtime through ORTFactory, or a test double).
type SessionFactory interface {
	NewSession(m *onnx.Model) (Session, error)
	Provider() string // "cpu" or "cuda"
}

// ManagerOptions tune a Manager.
type ManagerOptions struct {
	// BudgetBytes caps the estimated memory of cached sessions; least recently used sessions are
	// closed beyond it. 0 = 75% of physical memory (or $COMFYGO_MODEL_MEMORY_MB). Estimates are
	// the fp32 weights (+20% for packing) plus an activation bound.
	BudgetBytes int64
	// Attention selects the attention implementation: "matmul", "mha" (com.microsoft
	// MultiHeadAttention) or "" for the measured default; VAEAttention the same for the VAE.
	Attention, VAEAttention string
	Log                     *slog.Logger
}

// Manager loads checkpoints and VAEs and caches their ONNX Runtime sessions (one per component
// and static input shape and patch set) within a memory budget. It is safe for concurrent use;
// share one per process (nodes get it through nodes.Env.Service).
type Manager struct {
	factory SessionFactory
	opt     ManagerOptions
	log     *slog.Logger

	mu       sync.Mutex
	files    map[string]*ckptFile
	sessions map[string]*sessEntry
	used     int64
	clock    int64
	stats    Stats

	mergeState
}

// Stats counts cache activity (for tests, logs and the bench command).
type Stats struct {
	FilesOpened, SessionsBuilt, SessionsEvicted int
	LastBuild                                   time.Duration
}

type ckptFile struct {
	path   string
	file   *safetensors.File
	header *Header
	ident  string
}

type sessEntry struct {
	key     string
	sess    Session
	bytes   int64
	lastUse int64
	inUse   int
	ready   chan struct{}
	err     error
}

// NewManager returns a Manager creating sessions with factory.
func NewManager(factory SessionFactory, opt ManagerOptions) *Manager {
	if opt.BudgetBytes <= 0 {
		opt.BudgetBytes = defaultBudget()
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Attention == "" {
		// Measured on the 2-core CPU (BENCHMARKS.md): com.microsoft MultiHeadAttention costs ~5%
		// less CPU than MatMul/Softmax for the SD1.5 UNet at 512²; on CUDA it is the fused kernel.
		opt.Attention = "mha"
	}
	if opt.VAEAttention == "" {
		// The VAE's single 512-wide head was slower through MHA on the CPU (BENCHMARKS.md).
		opt.VAEAttention = "matmul"
		if factory.Provider() == "cuda" {
			opt.VAEAttention = "mha"
		}
	}
	return &Manager{factory: factory, opt: opt, log: opt.Log, files: map[string]*ckptFile{}, sessions: map[string]*sessEntry{}}
}

func defaultBudget() int64 {
	if v, err := strconv.ParseInt(os.Getenv("COMFYGO_MODEL_MEMORY_MB"), 10, 64); err == nil && v > 0 {
		return v << 20
	}
	b, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					return kb * 1024 * 3 / 4
				}
			}
		}
	}
	return 8 << 30
}

// Stats returns a snapshot of the cache counters.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// UsedBytes is the estimated memory of the cached sessions.
func (m *Manager) UsedBytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used
}

// open returns the cached open file for path (re-opened when its size or mtime changed).
func (m *Manager) open(path string) (*ckptFile, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	ident := fmt.Sprintf("%s|%d|%d", abs, st.Size(), st.ModTime().UnixNano())
	m.mu.Lock()
	defer m.mu.Unlock()
	if f, ok := m.files[abs]; ok && f.ident == ident {
		return f, nil
	}
	sf, err := safetensors.Open(abs)
	if err != nil {
		return nil, err
	}
	f := &ckptFile{path: abs, file: sf, header: HeaderFromFile(sf), ident: ident}
	m.files[abs] = f
	m.stats.FilesOpened++
	return f, nil
}

// Checkpoint is a loaded single-file checkpoint: its family, MODEL and VAE. The text
// encoders are built from File by internal/textenc.
type Checkpoint struct {
	Path   string
	File   *safetensors.File
	Family *Family
	Model  Model
	VAE    VAE // nil when the file has no VAE
}

// LoadCheckpoint opens a .safetensors checkpoint and detects its family. No session is built
// until the model is first run. Repeated loads of an unchanged file return the cached file.
func (m *Manager) LoadCheckpoint(path string, opt DetectOptions) (*Checkpoint, error) {
	if ext := strings.ToLower(filepath.Ext(path)); ext != ".safetensors" && ext != ".sft" {
		return nil, fmt.Errorf("load checkpoint %q: only .safetensors files are supported (pickled %s files are not loaded for safety; convert it to safetensors)", filepath.Base(path), ext)
	}
	f, err := m.open(path)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %q: %w", filepath.Base(path), err)
	}
	if opt.Family == "" && opt.NumHeads == 0 && opt.NumHeadChannels == 0 {
		sc, found, err := SidecarOptions(path)
		if err != nil {
			return nil, fmt.Errorf("load checkpoint %q: %w", filepath.Base(path), err)
		}
		if found {
			opt = sc
		}
	}
	fam, err := Detect(f.header, opt)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint %q: %w", filepath.Base(path), err)
	}
	ck := &Checkpoint{Path: f.path, File: f.file, Family: fam}
	ck.Model = &unetModel{m: m, f: f, fam: fam, sampling: fam.Sampling, detect: opt}
	if fam.VAE != nil {
		ck.VAE = &vaeModel{m: m, f: f, prefix: VAEPrefix, cfg: fam.VAE}
	}
	return ck, nil
}

// LoadVAE opens a standalone VAE file (keys at the root, or under first_stage_model.).
func (m *Manager) LoadVAE(path string) (VAE, error) {
	f, err := m.open(path)
	if err != nil {
		return nil, fmt.Errorf("load VAE %q: %w", filepath.Base(path), err)
	}
	prefix := ""
	if _, ok := f.header.Tensors["encoder.conv_in.weight"]; !ok && hasPrefix(f.header.Tensors, VAEPrefix) {
		prefix = VAEPrefix
	}
	if _, ok := f.header.Tensors[prefix+"encoder.conv_in.weight"]; !ok {
		return nil, fmt.Errorf("load VAE %q: no VAE weights (expected encoder.conv_in.weight at the root or under %s; found e.g. %s)", filepath.Base(path), VAEPrefix, sampleKeys(f.header.Tensors, 3))
	}
	cfg, err := DetectVAE(f.header.Tensors, prefix)
	if err != nil {
		return nil, fmt.Errorf("load VAE %q: %w", filepath.Base(path), err)
	}
	return &vaeModel{m: m, f: f, prefix: prefix, cfg: cfg}, nil
}

// session returns the cached session for key, building it with build on a miss.
func (m *Manager) session(ctx context.Context, key string, estimate int64, build func() (*onnx.Model, error)) (*sessEntry, error) {
	m.mu.Lock()
	m.clock++
	if e, ok := m.sessions[key]; ok {
		e.inUse++
		e.lastUse = m.clock
		m.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			m.release(e)
			return nil, ctx.Err()
		}
		if e.err != nil {
			m.release(e)
			return nil, e.err
		}
		return e, nil
	}
	e := &sessEntry{key: key, bytes: estimate, lastUse: m.clock, inUse: 1, ready: make(chan struct{})}
	m.sessions[key] = e
	m.used += estimate
	m.evictLocked()
	m.mu.Unlock()

	start := time.Now()
	model, err := build()
	var sess Session
	if err == nil {
		sess, err = m.factory.NewSession(model)
	}
	m.mu.Lock()
	if err != nil {
		e.err = err
		delete(m.sessions, key)
		m.used -= estimate
	} else {
		e.sess = sess
		m.stats.SessionsBuilt++
		m.stats.LastBuild = time.Since(start)
	}
	m.mu.Unlock()
	close(e.ready)
	if err != nil {
		m.release(e)
		return nil, err
	}
	m.log.Debug("session built", "key", key, "seconds", time.Since(start).Seconds(), "estimate_mb", estimate>>20)
	return e, nil
}

func (m *Manager) release(e *sessEntry) {
	m.mu.Lock()
	e.inUse--
	m.evictLocked()
	m.mu.Unlock()
}

// evictLocked closes least recently used idle sessions while over budget.
func (m *Manager) evictLocked() {
	for m.used > m.opt.BudgetBytes {
		var victim *sessEntry
		for _, e := range m.sessions {
			if e.inUse > 0 || e.sess == nil {
				continue
			}
			if victim == nil || e.lastUse < victim.lastUse {
				victim = e
			}
		}
		if victim == nil {
			return
		}
		delete(m.sessions, victim.key)
		m.used -= victim.bytes
		m.stats.SessionsEvicted++
		if err := victim.sess.Close(); err != nil {
			m.log.Warn("closing session", "key", victim.key, "err", err)
		}
	}
}

// Evict closes every idle session whose key starts with prefix ("" = all).
func (m *Manager) Evict(prefix string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, e := range m.sessions {
		if e.inUse == 0 && e.sess != nil && strings.HasPrefix(k, prefix) {
			delete(m.sessions, k)
			m.used -= e.bytes
			m.stats.SessionsEvicted++
			e.sess.Close()
		}
	}
}

// UnloadAll closes every idle session (the executor's /free unload_models).
func (m *Manager) UnloadAll() { m.Evict("") }

// Close closes every session and file and removes the merged-weights folder.
func (m *Manager) Close() error {
	m.Evict("")
	m.closeMerged()
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, f := range m.files {
		f.file.Close()
		delete(m.files, k)
	}
	return nil
}

func (m *Manager) run(ctx context.Context, key string, estimate int64, build func() (*onnx.Model, error), inputs map[string]*tensor.Tensor) (*tensor.Tensor, error) {
	e, err := m.session(ctx, key, estimate, build)
	if err != nil {
		return nil, err
	}
	defer m.release(e)
	out, err := e.sess.Run(ctx, inputs)
	if err != nil {
		return nil, err
	}
	o, ok := out["out"]
	if !ok {
		return nil, fmt.Errorf("session %s returned no output", key)
	}
	return o, nil
}

// weightBytes estimates the fp32 size of the tensors under prefix.
func weightBytes(h *Header, prefix string) int64 {
	var n int64
	for k, ti := range h.Tensors {
		if strings.HasPrefix(k, prefix) {
			n += int64(numel(ti.Shape)) * 4
		}
	}
	return n
}

// unetModel implements Model.
type unetModel struct {
	m        *Manager
	f        *ckptFile
	fam      *Family
	sampling SamplingConfig
	patches  Patches
	detect   DetectOptions
}

func (u *unetModel) Family() *Family          { return u.fam }
func (u *unetModel) Sampling() SamplingConfig { return u.sampling }

func (u *unetModel) WithSampling(s SamplingConfig) Model {
	c := *u
	c.sampling = s
	return &c
}

func (u *unetModel) Keys() []string {
	var ks []string
	for k := range u.f.header.Tensors {
		if strings.HasPrefix(k, UNetPrefix) {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

func (u *unetModel) WithPatches(p Patches) Model {
	c := *u
	c.patches = make(Patches, len(u.patches)+len(p))
	for k, v := range u.patches {
		c.patches[k] = append([]WeightPatch(nil), v...)
	}
	for k, v := range p {
		if strings.HasPrefix(k, UNetPrefix) {
			c.patches[k] = append(c.patches[k], v...)
		}
	}
	return &c
}

// patchKey identifies a patch set for the session cache.
func patchKey(p Patches) string {
	if len(p) == 0 {
		return "none"
	}
	var b strings.Builder
	for _, k := range sortedKeys(p) {
		for _, wp := range p[k] {
			fmt.Fprintf(&b, "%s|%s|%g|%p;", k, wp.Source, wp.Strength, wp.Patch)
		}
	}
	return fmt.Sprintf("%x", fnvHash(b.String()))
}

// Apply runs the UNet on one batch (spec §3.1): x [B,C,H,W], timesteps [B], context [B,T,D],
// y [B,adm] for SDXL.
func (u *unetModel) Apply(ctx context.Context, in UNetInput) (*tensor.Tensor, error) {
	c := u.fam.UNet
	if in.X == nil || len(in.X.Shape) != 4 || in.X.Shape[1] != c.InChannels {
		return nil, fmt.Errorf("unet: x must be [B,%d,H,W], got %v", c.InChannels, shapeOf(in.X))
	}
	b, h, w := in.X.Shape[0], in.X.Shape[2], in.X.Shape[3]
	if len(in.Timesteps) != b {
		return nil, fmt.Errorf("unet: %d timesteps for batch %d", len(in.Timesteps), b)
	}
	if in.Context == nil || len(in.Context.Shape) != 3 || in.Context.Shape[0] != b || in.Context.Shape[2] != c.ContextDim {
		return nil, fmt.Errorf("unet: context must be [%d,T,%d], got %v", b, c.ContextDim, shapeOf(in.Context))
	}
	inputs := map[string]*tensor.Tensor{
		"x":       in.X,
		"temb":    tensor.FromData(TimestepEmbedding(in.Timesteps, c.ModelChannels), b, c.ModelChannels),
		"context": in.Context,
	}
	if c.AdmInChannels > 0 {
		if in.Y == nil || len(in.Y.Shape) != 2 || in.Y.Shape[0] != b || in.Y.Shape[1] != c.AdmInChannels {
			return nil, fmt.Errorf("unet: %s needs y [%d,%d] (pooled output + size conditioning), got %v", u.fam.Name, b, c.AdmInChannels, shapeOf(in.Y))
		}
		inputs["y"] = in.Y
	}
	s := UNetShape{Batch: b, Height: h, Width: w, Tokens: in.Context.Shape[1]}
	key := fmt.Sprintf("unet|%s|%d,%d,%d,%d|%s", u.f.ident, b, h, w, s.Tokens, patchKey(u.patches))
	est := weightBytes(u.f.header, UNetPrefix)*6/5 + activationEstimate(c, s)
	return u.m.run(ctx, key, est, func() (*onnx.Model, error) {
		g, err := BuildUNet(c, s, resolver(u.f.header, UNetPrefix), u.m.opt.Attention == "mha")
		if err != nil {
			return nil, err
		}
		if len(u.patches) == 0 {
			return g.Lower("unet", u.f.file)
		}
		mw, err := u.m.mergedFor(ctx, u.f, u.patches, patchKey(u.patches))
		if err != nil {
			return nil, err
		}
		return g.LowerFrom("unet", mw.source, mw.dir)
	}, inputs)
}

// activationEstimate is a rough upper bound of the activation arena for one UNet run: the
// largest attention matrix (levels with transformers only) plus feature maps.
func activationEstimate(c *UNetConfig, s UNetShape) int64 {
	var attn int64
	h, w, ti := s.Height, s.Width, 0
	for lvl, mult := range c.ChannelMult {
		depth := 0
		for r := 0; r < c.NumResBlocks[lvl] && ti < len(c.TransformerDepth); r++ {
			depth = max(depth, c.TransformerDepth[ti])
			ti++
		}
		if depth > 0 {
			tok := int64(h * w)
			heads, _ := c.Heads(mult * c.ModelChannels)
			attn = max(attn, int64(s.Batch)*int64(heads)*tok*tok*4*2)
		}
		h, w = (h+1)/2, (w+1)/2
	}
	feat := int64(s.Batch) * int64(s.Height*s.Width) * int64(c.ModelChannels) * 4 * 40
	return attn + feat
}

func resolver(h *Header, prefix string) func(string) (string, []int, error) {
	return func(k string) (string, []int, error) {
		ti, ok := h.Tensors[prefix+k]
		if !ok {
			return "", nil, fmt.Errorf("checkpoint has no tensor %q", prefix+k)
		}
		return prefix + k, ti.Shape, nil
	}
}

func shapeOf(t *tensor.Tensor) any {
	if t == nil {
		return "nil"
	}
	return t.Shape
}

func fnvHash(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// vaeModel implements VAE.
type vaeModel struct {
	m      *Manager
	f      *ckptFile
	prefix string
	cfg    *VAEConfig
}

func (v *vaeModel) LatentChannels() int { return v.cfg.EmbedDim }
func (v *vaeModel) Downscale() int      { return v.cfg.Downscale() }

// Config is the VAE's structural config.
func (v *vaeModel) Config() *VAEConfig { return v.cfg }

// Decode maps first-stage latents [B,C,h,w] to images [B,8h,8w,3] in [0,1]; batch items run
// one at a time (one session per latent size).
func (v *vaeModel) Decode(ctx context.Context, latent *tensor.Tensor) (*tensor.Tensor, error) {
	if latent == nil || len(latent.Shape) != 4 || latent.Shape[1] != v.cfg.EmbedDim {
		return nil, fmt.Errorf("vae decode: latent must be [B,%d,h,w], got %v", v.cfg.EmbedDim, shapeOf(latent))
	}
	b, c, h, w := latent.Shape[0], latent.Shape[1], latent.Shape[2], latent.Shape[3]
	f := v.cfg.Downscale()
	H, W := h*f, w*f
	out := tensor.New(b, H, W, 3)
	for i := 0; i < b; i++ {
		z := tensor.FromData(latent.Data[i*c*h*w:(i+1)*c*h*w], 1, c, h, w)
		raw, err := v.decodeRaw(ctx, z)
		if err != nil {
			return nil, fmt.Errorf("vae decode: %w", err)
		}
		oc := raw.Shape[1]
		dst := out.Data[i*H*W*3:]
		for ch := 0; ch < 3 && ch < oc; ch++ {
			src := raw.Data[ch*H*W:]
			for p := 0; p < H*W; p++ {
				x := (src[p] + 1) / 2
				dst[p*3+ch] = min(max(x, 0), 1)
			}
		}
	}
	return out, nil
}

// Encode maps images [B,H,W,C] (C ≥ 3, values in [0,1]) to first-stage latents (the posterior
// mean), center-cropping H and W down to multiples of 8 as ComfyUI does.
func (v *vaeModel) Encode(ctx context.Context, image *tensor.Tensor) (*tensor.Tensor, error) {
	if image == nil || len(image.Shape) != 4 || image.Shape[3] < 3 {
		return nil, fmt.Errorf("vae encode: image must be [B,H,W,3], got %v", shapeOf(image))
	}
	b, H, W, C := image.Shape[0], image.Shape[1], image.Shape[2], image.Shape[3]
	f := v.cfg.Downscale()
	h, w := H/f*f, W/f*f
	if h == 0 || w == 0 {
		return nil, fmt.Errorf("vae encode: image %dx%d is smaller than %d pixels", W, H, f)
	}
	oy, ox := (H%f)/2, (W%f)/2
	lh, lw := h/f, w/f
	e := v.cfg.EmbedDim
	out := tensor.New(b, e, lh, lw)
	key := fmt.Sprintf("vaeenc|%s|%s|%d,%d", v.f.ident, v.prefix, h, w)
	est := weightBytes(v.f.header, v.prefix+"encoder.")*6/5 + int64(h*w)*int64(v.cfg.Ch)*4*12 + int64(lh*lw)*int64(lh*lw)*4*2
	for i := 0; i < b; i++ {
		x := tensor.New(1, 3, h, w)
		for y := 0; y < h; y++ {
			row := image.Data[((i*H+y+oy)*W+ox)*C:]
			for xx := 0; xx < w; xx++ {
				for ch := 0; ch < 3; ch++ {
					x.Data[(ch*h+y)*w+xx] = 2*row[xx*C+ch] - 1
				}
			}
		}
		mom, err := v.m.run(ctx, key, est, func() (*onnx.Model, error) {
			g, err := BuildVAEEncoder(v.cfg, 1, h, w, vaeResolver(v.f.header, v.prefix, len(v.cfg.ChMult)), v.m.opt.VAEAttention == "mha")
			if err != nil {
				return nil, err
			}
			return g.Lower("vae_encoder", v.f.file)
		}, map[string]*tensor.Tensor{"x": x})
		if err != nil {
			return nil, fmt.Errorf("vae encode: %w", err)
		}
		copy(out.Data[i*e*lh*lw:(i+1)*e*lh*lw], mom.Data[:e*lh*lw])
	}
	return out, nil
}
