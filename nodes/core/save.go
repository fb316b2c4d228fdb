package core

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"image/png"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/internal/fsutil"
	"github.com/comfygo/comfygo/internal/imageops"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

func init() {
	hidden := []nodes.Hidden{{Name: "prompt", Marker: "PROMPT"}, {Name: "extra_pnginfo", Marker: "EXTRA_PNGINFO"}}
	nodes.Register(
		&nodes.Def{
			Name: "SaveImage", DisplayName: "Save Image", Category: "image",
			Description: "Saves the input images to your ComfyUI output directory.",
			Required: []nodes.Input{
				{Name: "images", Type: nodes.TypeImage, Tooltip: "The images to save."},
				{Name: "filename_prefix", Type: nodes.TypeString, Default: "ComfyUI",
					Tooltip: "The prefix for the file to save. This may include formatting information such as %date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes."},
			},
			Hidden:     hidden,
			OutputNode: true,
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return saveImages(ctx, in, in.String("filename_prefix"), "output", png.DefaultCompression)
			},
		},
		&nodes.Def{
			Name: "PreviewImage", DisplayName: "Preview Image", Category: "image",
			Description: "Saves the input images to your ComfyUI temp directory.",
			Required:    []nodes.Input{{Name: "images", Type: nodes.TypeImage}},
			Hidden:      hidden,
			OutputNode:  true,
			Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
				return saveImages(ctx, in, "ComfyUI_temp_"+randomLetters(5), "temp", png.BestSpeed)
			},
		},
	)
}

// randomLetters draws PreviewImage's per-node suffix from ComfyUI's alphabet.
func randomLetters(n int) string {
	const alphabet = "abcdefghijklmnopqrstupvxyz"
	b := make([]byte, n)
	for i := range b {
		k, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}

// saveImages writes one PNG per batch item into the output ("output") or temp ("temp") folder
// and returns the UI payload {"images": [{filename, subfolder, type}]}.
func saveImages(ctx *nodes.Context, in nodes.Inputs, prefix, kind string, level png.CompressionLevel) (nodes.Result, error) {
	images, err := imageInput(in, "images")
	if err != nil {
		return nodes.Result{}, err
	}
	root := ctx.Env.Folders.Output
	if kind == "temp" {
		root = ctx.Env.Folders.Temp
	}
	sp, err := SavePath(root, prefix, images.Shape[2], images.Shape[1], time.Now())
	if err != nil {
		return nodes.Result{}, err
	}
	chunks, err := pngInfo(in)
	if err != nil {
		return nodes.Result{}, err
	}
	var results []any
	counter := sp.Counter
	for b := 0; b < images.Shape[0]; b++ {
		if err := ctx.Err(); err != nil {
			return nodes.Result{}, err
		}
		name := fmt.Sprintf("%s_%05d_.png", strings.ReplaceAll(sp.Base, "%batch_num%", strconv.Itoa(b)), counter)
		if err := writePNG(filepath.Join(sp.Dir, name), images, b, chunks, level); err != nil {
			return nodes.Result{}, err
		}
		results = append(results, map[string]any{"filename": name, "subfolder": sp.Subfolder, "type": kind})
		counter++
	}
	return nodes.Result{UI: map[string][]any{"images": results}}, nil
}

// pngInfo builds the PNG text chunks: "prompt" then one per extra_pnginfo key (normally "workflow").
func pngInfo(in nodes.Inputs) ([][2]string, error) {
	var chunks [][2]string
	if p := in["prompt"]; p != nil {
		b, err := graph.MarshalPython(p)
		if err != nil {
			return nil, fmt.Errorf("encode prompt metadata: %w", err)
		}
		chunks = append(chunks, [2]string{"prompt", string(b)})
	}
	if extra, ok := in["extra_pnginfo"].(map[string]any); ok {
		for _, k := range sortedKeys(extra) {
			b, err := graph.MarshalPython(extra[k])
			if err != nil {
				return nil, fmt.Errorf("encode %s metadata: %w", k, err)
			}
			chunks = append(chunks, [2]string{k, string(b)})
		}
	}
	return chunks, nil
}

// writePNG encodes item b of images with the text chunks and writes it atomically.
func writePNG(path string, images *tensor.Tensor, b int, chunks [][2]string, level png.CompressionLevel) error {
	img, err := imageops.ToImage(images, b)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: level}
	if err := enc.Encode(&buf, img); err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	data := buf.Bytes()
	if len(chunks) > 0 {
		if data, err = graph.InsertPNGText(data, chunks); err != nil {
			return fmt.Errorf("png metadata: %w", err)
		}
	}
	return fsutil.WriteFileAtomic(path, data, 0o644)
}

// SavePathResult is where a save node writes: folder, subfolder (relative, for the UI), the file
// base name (may still contain %batch_num%) and the first counter.
type SavePathResult struct {
	Dir, Subfolder, Base string
	Counter              int
}

// SavePath applies ComfyUI's get_save_image_path rules to prefix: %width%/%height%/date tokens
// substituted, a "/" in the prefix makes a subfolder (created; it must stay inside root), and the
// counter is 1 + the highest existing "<base>_<N>_" file in that folder.
func SavePath(root, prefix string, width, height int, now time.Time) (SavePathResult, error) {
	if strings.Contains(prefix, "%") {
		r := strings.NewReplacer(
			"%width%", strconv.Itoa(width), "%height%", strconv.Itoa(height),
			"%year%", strconv.Itoa(now.Year()), "%month%", fmt.Sprintf("%02d", int(now.Month())),
			"%day%", fmt.Sprintf("%02d", now.Day()), "%hour%", fmt.Sprintf("%02d", now.Hour()),
			"%minute%", fmt.Sprintf("%02d", now.Minute()), "%second%", fmt.Sprintf("%02d", now.Second()))
		prefix = r.Replace(prefix)
	}
	norm := filepath.Clean(filepath.FromSlash(prefix))
	sub, base := filepath.Split(norm)
	sub = filepath.Clean(sub)
	if sub == "." {
		sub = ""
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return SavePathResult{}, err
	}
	dir := filepath.Join(absRoot, sub)
	if filepath.IsAbs(norm) || (dir != absRoot && !strings.HasPrefix(dir, absRoot+string(filepath.Separator))) || base == "" || base == ".." {
		return SavePathResult{}, fmt.Errorf("saving image outside the output folder is not allowed (filename_prefix %q)", prefix)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return SavePathResult{}, fmt.Errorf("create output folder: %w", err)
	}
	counter := 1
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		if len(name) <= len(base)+1 || name[:len(base)] != base || name[len(base)] != '_' {
			continue
		}
		rest := name[len(base)+1:]
		digits := rest
		if i := strings.IndexByte(rest, '_'); i >= 0 {
			digits = rest[:i]
		}
		n, err := strconv.Atoi(digits)
		if err != nil {
			n = 0
		}
		counter = max(counter, n+1)
	}
	return SavePathResult{Dir: dir, Subfolder: filepath.ToSlash(sub), Base: base, Counter: counter}, nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
