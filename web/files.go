package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "image/gif" // decoders for /view conversions and masks

	"github.com/comfygo/comfygo/internal/fsutil"
)

// folderFor returns the directory of a /view or upload type.
func (s *Server) folderFor(typ string) (string, bool) {
	f := s.env.Folders
	switch typ {
	case "output":
		return f.Output, true
	case "input":
		return f.Input, true
	case "temp":
		return f.Temp, true
	}
	return "", false
}

// annotated strips a " [output]" / " [input]" / " [temp]" suffix, returning the type it names.
func annotated(name string) (string, string) {
	for _, t := range []string{"output", "input", "temp"} {
		if suf := " [" + t + "]"; strings.HasSuffix(name, suf) {
			return strings.TrimSuffix(name, suf), t
		}
	}
	return name, ""
}

// resolveFile applies /view's checks to (filename, type, subfolder) and returns the file path,
// or an HTTP status for the failure.
func (s *Server) resolveFile(filename, typ, subfolder string) (string, string, int) {
	name, at := annotated(filename)
	if at != "" {
		typ = at
	}
	if typ == "" {
		typ = "output"
	}
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") || strings.HasPrefix(name, `\`) {
		return "", "", http.StatusBadRequest
	}
	base, ok := s.folderFor(typ)
	if !ok {
		return "", "", http.StatusBadRequest
	}
	dir, err := within(base, subfolder)
	if err != nil {
		if errors.Is(err, errBadName) {
			return "", "", http.StatusBadRequest
		}
		return "", "", http.StatusForbidden
	}
	bn, err := sanitizeFilename(name)
	if err != nil {
		return "", "", http.StatusBadRequest
	}
	// Resolve again with the file itself so a symlinked file cannot point outside.
	rel := bn
	if subfolder != "" {
		rel = strings.TrimSuffix(filepath.ToSlash(subfolder), "/") + "/" + bn
	}
	p, err := within(base, rel)
	if err != nil || filepath.Dir(p) != filepath.Clean(dir) {
		return "", "", http.StatusForbidden
	}
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() {
		return "", "", http.StatusNotFound
	}
	return p, bn, 0
}

func (s *Server) handleView(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("filename") {
		http.NotFound(w, r)
		return
	}
	p, name, code := s.resolveFile(q.Get("filename"), q.Get("type"), q.Get("subfolder"))
	if code != 0 {
		w.WriteHeader(code)
		return
	}
	w.Header().Set("Content-Disposition", fmt.Sprintf("filename=%q", name))
	channel := q.Get("channel")
	if pv := q.Get("preview"); pv != "" {
		s.viewPreview(w, p, pv, channel)
		return
	}
	switch channel {
	case "", "rgba":
		f, err := os.Open(p)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			http.NotFound(w, r)
			return
		}
		ct := mime.TypeByExtension(strings.ToLower(filepath.Ext(name)))
		if i := strings.IndexByte(ct, ';'); i >= 0 {
			ct = ct[:i]
		}
		switch ct {
		case "", "text/html", "text/html-sandboxed", "application/xhtml+xml", "text/javascript", "application/javascript", "text/css", "image/svg+xml":
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, name, st.ModTime(), f)
	case "rgb", "a":
		img, err := decodeFile(p)
		if err != nil {
			http.Error(w, "cannot decode image", http.StatusBadRequest)
			return
		}
		var out image.Image
		if channel == "rgb" {
			out = toRGB(img)
		} else {
			out = alphaAsImage(img)
		}
		w.Header().Set("Content-Type", "image/png")
		_ = png.Encode(w, out)
	default:
		http.Error(w, "unknown channel", http.StatusBadRequest)
	}
}

// viewPreview re-encodes the image as JPEG (WEBP has no encoder in Go's standard library, so
// webp requests are answered as JPEG too, with the matching Content-Type).
func (s *Server) viewPreview(w http.ResponseWriter, p, pv, channel string) {
	quality := 90
	if i := strings.LastIndexByte(pv, ';'); i >= 0 {
		if n, err := strconv.Atoi(pv[i+1:]); err == nil && n > 0 && n <= 100 {
			quality = n
		}
	}
	img, err := decodeFile(p)
	if err != nil {
		http.Error(w, "cannot decode image", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg")
	_ = jpeg.Encode(w, toRGB(img), &jpeg.Options{Quality: quality})
	_ = channel
}

func decodeFile(p string) (image.Image, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	return img, err
}

func toRGB(img image.Image) image.Image {
	b := img.Bounds()
	out := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			out.SetRGBA(x, y, color.RGBA{c.R, c.G, c.B, 255})
		}
	}
	return out
}

func alphaAsImage(img image.Image) image.Image {
	b := img.Bounds()
	out := image.NewNRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			_, _, _, a := img.At(x, y).RGBA()
			out.SetNRGBA(x, y, color.NRGBA{0, 0, 0, uint8(a >> 8)})
		}
	}
	return out
}

// uploadResult is the /upload/image answer.
type uploadResult struct {
	Name      string `json:"name"`
	Subfolder string `json:"subfolder"`
	Type      string `json:"type"`
}

// parseUpload reads the multipart form and the image part; it returns the data and the target.
func (s *Server) parseUpload(w http.ResponseWriter, r *http.Request) (data []byte, filename, typ, subfolder string, overwrite bool, form *multipart.Form, code int, msg string) {
	if err := r.ParseMultipartForm(32 << 20); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, "", "", "", false, nil, http.StatusRequestEntityTooLarge, "upload too large"
		}
		return nil, "", "", "", false, nil, http.StatusBadRequest, "invalid multipart form"
	}
	form = r.MultipartForm
	fhs := form.File["image"]
	if len(fhs) == 0 || fhs[0].Filename == "" {
		return nil, "", "", "", false, form, http.StatusBadRequest, "no image"
	}
	fh := fhs[0]
	f, err := fh.Open()
	if err != nil {
		return nil, "", "", "", false, form, http.StatusBadRequest, "cannot read upload"
	}
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, s.cfg.MaxUploadSize+1))
	if err != nil || int64(len(data)) > s.cfg.MaxUploadSize {
		return nil, "", "", "", false, form, http.StatusRequestEntityTooLarge, "upload too large"
	}
	typ = r.FormValue("type")
	if typ == "" {
		typ = "input"
	}
	ov := r.FormValue("overwrite")
	return data, fh.Filename, typ, r.FormValue("subfolder"), ov == "true" || ov == "1", form, 0, ""
}

// saveUpload stores data as filename in type/subfolder following ComfyUI's naming rules:
// overwrite, or reuse an identical existing file, or pick "name (n).ext". Writes are atomic.
func (s *Server) saveUpload(data []byte, filename, typ, subfolder string, overwrite bool) (*uploadResult, int, string) {
	base, ok := s.folderFor(typ)
	if !ok {
		return nil, http.StatusBadRequest, "invalid type"
	}
	name, err := sanitizeFilename(filename)
	if err != nil || strings.Contains(name, "..") {
		return nil, http.StatusBadRequest, "invalid file name"
	}
	dir, err := within(base, subfolder)
	if err != nil {
		return nil, http.StatusBadRequest, "invalid subfolder"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, http.StatusInternalServerError, "cannot create folder"
	}
	// Re-check after creating: a symlink race must not move us outside.
	if _, err := within(base, subfolder); err != nil {
		return nil, http.StatusBadRequest, "invalid subfolder"
	}
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	target := filepath.Join(dir, name)
	if !overwrite {
		sum := sha256.Sum256(data)
		for i := 1; ; i++ {
			st, err := os.Lstat(target)
			if err != nil {
				break
			}
			if st.Mode().IsRegular() {
				if old, err := os.ReadFile(target); err == nil && sha256.Sum256(old) == sum {
					return &uploadResult{Name: filepath.Base(target), Subfolder: subfolder, Type: typ}, 0, ""
				}
			}
			target = filepath.Join(dir, fmt.Sprintf("%s (%d)%s", stem, i, ext))
			if i > 10000 {
				return nil, http.StatusConflict, "too many files with that name"
			}
		}
	}
	if err := fsutil.WriteFileAtomic(target, data, 0o644); err != nil {
		s.log.Error("upload write", "path", target, "err", err)
		return nil, http.StatusInternalServerError, "cannot write file"
	}
	return &uploadResult{Name: filepath.Base(target), Subfolder: subfolder, Type: typ}, 0, ""
}

func (s *Server) handleUploadImage(w http.ResponseWriter, r *http.Request) {
	data, filename, typ, sub, ov, _, code, msg := s.parseUpload(w, r)
	if code != 0 {
		http.Error(w, msg, code)
		return
	}
	res, code, msg := s.saveUpload(data, filename, typ, sub, ov)
	if code != 0 {
		http.Error(w, msg, code)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// handleUploadMask applies the uploaded image's alpha to the referenced original and saves the
// result as PNG. Like ComfyUI, a failing mask step still answers 200 (nothing written).
func (s *Server) handleUploadMask(w http.ResponseWriter, r *http.Request) {
	data, filename, typ, sub, ov, _, code, msg := s.parseUpload(w, r)
	if code != 0 {
		http.Error(w, msg, code)
		return
	}
	if _, ok := s.folderFor(typ); !ok {
		http.Error(w, "invalid type", http.StatusBadRequest)
		return
	}
	res := &uploadResult{Name: filename, Subfolder: sub, Type: typ}
	var ref struct {
		Filename  string `json:"filename"`
		Subfolder string `json:"subfolder"`
		Type      string `json:"type"`
	}
	if err := json.Unmarshal([]byte(r.FormValue("original_ref")), &ref); err != nil {
		writeJSON(w, http.StatusOK, res)
		return
	}
	op, _, code := s.resolveFile(ref.Filename, ref.Type, ref.Subfolder)
	if code != 0 {
		writeJSON(w, http.StatusOK, res)
		return
	}
	orig, err := decodeFile(op)
	if err != nil {
		writeJSON(w, http.StatusOK, res)
		return
	}
	mask, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		writeJSON(w, http.StatusOK, res)
		return
	}
	b := orig.Bounds()
	out := image.NewNRGBA(b)
	draw.Draw(out, b, orig, b.Min, draw.Src)
	mb := mask.Bounds()
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			a := uint8(255)
			if x < mb.Dx() && y < mb.Dy() {
				_, _, _, ma := mask.At(mb.Min.X+x, mb.Min.Y+y).RGBA()
				a = uint8(ma >> 8)
			}
			i := out.PixOffset(b.Min.X+x, b.Min.Y+y)
			out.Pix[i+3] = a
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, out); err != nil {
		writeJSON(w, http.StatusOK, res)
		return
	}
	saved, code, msg := s.saveUpload(buf.Bytes(), filename, typ, sub, ov)
	if code != 0 {
		http.Error(w, msg, code)
		return
	}
	writeJSON(w, http.StatusOK, saved)
}

// handleInternalFiles lists the top-level files of input/output/temp, newest first.
func (s *Server) handleInternalFiles(w http.ResponseWriter, r *http.Request) {
	dir, ok := s.folderFor(r.PathValue("type"))
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Invalid directory type"})
		return
	}
	ents, _ := os.ReadDir(dir)
	type fe struct {
		name string
		t    time.Time
	}
	var list []fe
	for _, e := range ents {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		list = append(list, fe{e.Name(), info.ModTime()})
	}
	sortSlice(list, func(a, b fe) bool { return a.t.After(b.t) })
	names := make([]string, 0, len(list))
	for _, f := range list {
		names = append(names, f.name)
	}
	writeJSON(w, http.StatusOK, names)
}
