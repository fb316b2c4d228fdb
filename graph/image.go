package graph

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"
)

// ErrNoMetadata means the file carries neither a workflow nor a prompt.
var ErrNoMetadata = errors.New("no workflow or prompt metadata in file")

// ErrUnknownFormat means the data is not a PNG, WEBP or safetensors file.
var ErrUnknownFormat = errors.New("unrecognised file format (want PNG, WEBP or JSON)")

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// maxInflate bounds decompressed text chunks (zip bombs).
const maxInflate = 64 << 20

// IsPNG and IsWEBP tell the format by magic bytes.
func IsPNG(data []byte) bool { return bytes.HasPrefix(data, pngMagic) }

// IsWEBP tells a RIFF/WEBP file by its magic bytes.
func IsWEBP(data []byte) bool {
	return len(data) >= 12 && string(data[0:4]) == "RIFF" && string(data[8:12]) == "WEBP"
}

// ExtractFromImage reads the "workflow" and "prompt" texts ComfyUI embeds in images: PNG
// tEXt / iTXt / zTXt chunks (and the APNG "comf" chunk), WEBP EXIF (IFD0 ASCII entries
// "key:json", keys also capitalised) with XMP as a fallback, and the safetensors/.latent
// header's __metadata__. Either result may be nil; both nil gives ErrNoMetadata.
func ExtractFromImage(data []byte) (workflowJSON, promptJSON []byte, err error) {
	var texts map[string]string
	switch {
	case IsPNG(data):
		texts = pngTexts(data)
	case IsWEBP(data):
		texts = webpTexts(data)
	default:
		var ok bool
		texts, ok = safetensorsTexts(data)
		if !ok {
			return nil, nil, ErrUnknownFormat
		}
	}
	wf, hasWF := texts["workflow"]
	if !hasWF {
		wf, hasWF = texts["Workflow"]
	}
	pr, hasPR := texts["prompt"]
	if !hasPR {
		pr, hasPR = texts["Prompt"]
	}
	if hasWF && strings.TrimSpace(wf) != "" {
		workflowJSON = []byte(wf)
	}
	if hasPR && strings.TrimSpace(pr) != "" {
		promptJSON = []byte(pr)
	}
	if workflowJSON == nil && promptJSON == nil {
		return nil, nil, ErrNoMetadata
	}
	return workflowJSON, promptJSON, nil
}

// pngTexts walks the PNG chunks (no CRC check; stops at IEND or the end of the data) and
// collects keyword -> text; a later chunk with the same keyword wins.
func pngTexts(data []byte) map[string]string {
	out := map[string]string{}
	for off := len(pngMagic); off+8 <= len(data); {
		n := binary.BigEndian.Uint32(data[off:])
		typ := string(data[off+4 : off+8])
		start := off + 8
		if uint64(n) > uint64(len(data)-start) {
			break
		}
		body := data[start : start+int(n)]
		switch typ {
		case "tEXt", "comf":
			if k, v, ok := splitNUL(body); ok {
				out[k] = latin1OrUTF8(v)
			}
		case "zTXt":
			if k, rest, ok := splitNUL(body); ok && len(rest) >= 1 && rest[0] == 0 {
				if t, err := inflate(rest[1:]); err == nil {
					out[k] = latin1OrUTF8(t)
				}
			}
		case "iTXt":
			if k, rest, ok := splitNUL(body); ok && len(rest) >= 2 {
				compressed := rest[0] == 1
				rest = rest[2:]
				if _, rest2, ok := splitNUL(rest); ok { // language tag
					if _, text, ok := splitNUL([]byte(rest2)); ok { // translated keyword
						if compressed {
							t, err := inflate(text)
							if err != nil {
								break
							}
							text = t
						}
						out[k] = toUTF8(text)
					}
				}
			}
		case "IEND":
			return out
		}
		off = start + int(n) + 4
	}
	return out
}

func splitNUL(b []byte) (string, []byte, bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(b[:i]), b[i+1:], true
}

func inflate(b []byte) ([]byte, error) {
	r, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, maxInflate+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxInflate {
		return nil, errors.New("text chunk too large")
	}
	return out, nil
}

// latin1OrUTF8 decodes tEXt: UTF-8 when valid (third-party writers), else Latin-1.
func latin1OrUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

func toUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string([]rune(string(b)))
}

// webpTexts reads the first EXIF chunk's IFD0 ASCII entries ("key:value"), and XMP
// workflow/prompt properties when EXIF has none.
func webpTexts(data []byte) map[string]string {
	out := map[string]string{}
	var xmp []byte
	exifDone := false
	for off := 12; off+8 <= len(data); {
		typ := string(data[off : off+4])
		n := binary.LittleEndian.Uint32(data[off+4:])
		start := off + 8
		if uint64(n) > uint64(len(data)-start) {
			break
		}
		body := data[start : start+int(n)]
		switch typ {
		case "EXIF":
			if !exifDone {
				exifDone = true
				for k, v := range exifTexts(body) {
					out[k] = v
				}
			}
		case "XMP ":
			if xmp == nil {
				xmp = body
			}
		}
		off = start + int(n) + int(n&1)
	}
	if xmp != nil {
		for k, v := range xmpTexts(xmp) {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	}
	return out
}

// exifTexts parses a TIFF structure (optionally after "Exif\0\0") and returns IFD0's ASCII
// entries split at their first ':'.
func exifTexts(b []byte) map[string]string {
	out := map[string]string{}
	if bytes.HasPrefix(b, []byte("Exif\x00\x00")) {
		b = b[6:]
	}
	if len(b) < 8 {
		return out
	}
	var bo binary.ByteOrder
	switch string(b[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return out
	}
	ifd := bo.Uint32(b[4:])
	if uint64(ifd)+2 > uint64(len(b)) {
		return out
	}
	cnt := int(bo.Uint16(b[ifd:]))
	p := int(ifd) + 2
	for i := 0; i < cnt && p+12 <= len(b); i, p = i+1, p+12 {
		typ := bo.Uint16(b[p+2:])
		count := bo.Uint32(b[p+4:])
		if typ != 2 && typ != 7 { // ASCII, UNDEFINED
			continue
		}
		var val []byte
		if count <= 4 {
			val = b[p+8 : p+8+int(count)]
		} else {
			o := bo.Uint32(b[p+8:])
			if uint64(o)+uint64(count) > uint64(len(b)) {
				continue
			}
			val = b[o : o+count]
		}
		val = bytes.TrimRight(val, "\x00")
		s := toUTF8(val)
		if k, v, ok := strings.Cut(s, ":"); ok {
			if _, dup := out[k]; !dup {
				out[k] = v
			}
		}
	}
	return out
}

var xmpProp = regexp.MustCompile(`(?s)(?:<(?:[A-Za-z0-9_]+:)?(workflow|prompt|Workflow|Prompt)>(.*?)</(?:[A-Za-z0-9_]+:)?(?:workflow|prompt|Workflow|Prompt)>)|(?:\s(?:[A-Za-z0-9_]+:)?(workflow|prompt|Workflow|Prompt)="([^"]*)")`)

var xmlUnescape = strings.NewReplacer("&quot;", "\"", "&apos;", "'", "&lt;", "<", "&gt;", ">", "&#34;", "\"", "&#39;", "'", "&amp;", "&")

// xmpTexts finds workflow/prompt properties (element or attribute form) in an XMP packet.
func xmpTexts(b []byte) map[string]string {
	out := map[string]string{}
	for _, m := range xmpProp.FindAllSubmatch(b, -1) {
		k, v := string(m[1]), m[2]
		if k == "" {
			k, v = string(m[3]), m[4]
		}
		k = strings.ToLower(k)
		if _, dup := out[k]; !dup {
			out[k] = xmlUnescape.Replace(toUTF8(v))
		}
	}
	return out
}

// safetensorsTexts reads __metadata__ from a safetensors/.latent header (8-byte LE length,
// then that many bytes of JSON; at most 8 MiB as in the frontend).
func safetensorsTexts(data []byte) (map[string]string, bool) {
	if len(data) < 10 {
		return nil, false
	}
	n := binary.LittleEndian.Uint64(data)
	if n > 8<<20 || n+8 > uint64(len(data)) || data[8] != '{' {
		return nil, false
	}
	v, err := parseJSON(data[8:8+n], false)
	if err != nil {
		return nil, false
	}
	o, ok := v.(*jobj)
	if !ok {
		return nil, false
	}
	out := map[string]string{}
	if mo, ok := mustGet(o, "__metadata__").(*jobj); ok {
		for i, k := range mo.keys {
			if s, ok := mo.vals[i].(string); ok {
				out[k] = s
			}
		}
	}
	return out, true
}

// InsertPNGText returns png with one text chunk per (keyword, text) pair inserted right after
// IHDR, in the given order, as ComfyUI's SaveImage (PIL) writes them: "prompt", then
// "workflow", then other extra_pnginfo keys. Text that fits Latin-1 goes into tEXt, other
// text into an uncompressed iTXt (PIL's rule). Existing text chunks with the same keywords
// are removed.
func InsertPNGText(png []byte, chunks [][2]string) ([]byte, error) {
	if !IsPNG(png) {
		return nil, errors.New("insert png text: not a PNG file")
	}
	off := len(pngMagic)
	if off+8 > len(png) || string(png[off+4:off+8]) != "IHDR" {
		return nil, errors.New("insert png text: first chunk is not IHDR")
	}
	keys := map[string]bool{}
	for _, c := range chunks {
		k := c[0]
		if len(k) == 0 || len(k) > 79 || strings.IndexByte(k, 0) >= 0 || !isLatin1(k) {
			return nil, fmt.Errorf("insert png text: invalid keyword %q", k)
		}
		keys[k] = true
	}
	ihdrLen := binary.BigEndian.Uint32(png[off:])
	ihdrEnd := off + 12 + int(ihdrLen)
	if uint64(ihdrLen)+12 > uint64(len(png)-off) {
		return nil, errors.New("insert png text: truncated IHDR")
	}
	out := make([]byte, 0, len(png)+256)
	out = append(out, png[:ihdrEnd]...)
	for _, c := range chunks {
		var body []byte
		typ := "tEXt"
		if isLatin1(c[1]) {
			body = append(append([]byte(c[0]), 0), latin1Bytes(c[1])...)
		} else {
			typ = "iTXt"
			body = append([]byte(c[0]), 0, 0, 0, 0, 0) // keyword NUL, uncompressed, method 0, empty lang NUL, empty translated NUL
			body = append(body, c[1]...)
		}
		out = appendChunk(out, typ, body)
	}
	// Copy the remaining chunks, dropping text chunks with the same keywords.
	for p := ihdrEnd; p+8 <= len(png); {
		n := binary.BigEndian.Uint32(png[p:])
		typ := string(png[p+4 : p+8])
		end := uint64(p) + 12 + uint64(n)
		if end > uint64(len(png)) {
			return nil, fmt.Errorf("insert png text: truncated %q chunk", typ)
		}
		drop := false
		if typ == "tEXt" || typ == "iTXt" || typ == "zTXt" {
			if k, _, ok := splitNUL(png[p+8 : p+8+int(n)]); ok && keys[k] {
				drop = true
			}
		}
		if !drop {
			out = append(out, png[p:end]...)
		}
		p = int(end)
		if typ == "IEND" {
			break
		}
	}
	return out, nil
}

func appendChunk(out []byte, typ string, body []byte) []byte {
	var hdr [8]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	copy(hdr[4:], typ)
	out = append(out, hdr[:]...)
	out = append(out, body...)
	crc := crc32.NewIEEE()
	crc.Write(hdr[4:])
	crc.Write(body)
	return binary.BigEndian.AppendUint32(out, crc.Sum32())
}

func isLatin1(s string) bool {
	for _, r := range s {
		if r > 0xff {
			return false
		}
	}
	return utf8.ValidString(s)
}

func latin1Bytes(s string) []byte {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return b
}

// WEBPExif builds the EXIF payload ComfyUI's savers put in a WEBP: a big-endian TIFF whose
// IFD0 holds ASCII entries "key:text", the first pair at tag 0x0110 (ComfyUI: "prompt"),
// the next ones at 0x010F, 0x010E, ... (ComfyUI: extra_pnginfo keys, "workflow" first).
func WEBPExif(pairs [][2]string) []byte {
	type ent struct {
		tag uint16
		val []byte
	}
	var ents []ent
	tag := uint16(0x0110)
	for _, p := range pairs {
		ents = append(ents, ent{tag, append([]byte(p[0]+":"+p[1]), 0)})
		if tag == 0x0110 {
			tag = 0x010F
		} else {
			tag--
		}
	}
	// TIFF requires ascending tags.
	for i := 1; i < len(ents); i++ {
		for j := i; j > 0 && ents[j].tag < ents[j-1].tag; j-- {
			ents[j], ents[j-1] = ents[j-1], ents[j]
		}
	}
	bo := binary.BigEndian
	b := []byte{'M', 'M', 0, 42, 0, 0, 0, 8}
	b = bo.AppendUint16(b, uint16(len(ents)))
	dataOff := 8 + 2 + 12*len(ents) + 4
	var data []byte
	for _, e := range ents {
		b = bo.AppendUint16(b, e.tag)
		b = bo.AppendUint16(b, 2)
		b = bo.AppendUint32(b, uint32(len(e.val)))
		if len(e.val) <= 4 {
			v := append(append([]byte(nil), e.val...), make([]byte, 4-len(e.val))...)
			b = append(b, v...)
		} else {
			b = bo.AppendUint32(b, uint32(dataOff+len(data)))
			data = append(data, e.val...)
			if len(data)%2 == 1 {
				data = append(data, 0)
			}
		}
	}
	b = bo.AppendUint32(b, 0) // no next IFD
	return append(b, data...)
}

// InsertWEBPExif returns webp with an EXIF chunk holding pairs (see WEBPExif), converting a
// simple (VP8/VP8L) file to the extended format (VP8X) as needed. An existing EXIF chunk is
// replaced.
func InsertWEBPExif(webp []byte, pairs [][2]string) ([]byte, error) {
	if !IsWEBP(webp) {
		return nil, errors.New("insert webp exif: not a WEBP file")
	}
	type chunk struct {
		typ  string
		body []byte
	}
	var chunks []chunk
	for off := 12; off+8 <= len(webp); {
		typ := string(webp[off : off+4])
		n := binary.LittleEndian.Uint32(webp[off+4:])
		start := off + 8
		if uint64(n) > uint64(len(webp)-start) {
			return nil, fmt.Errorf("insert webp exif: truncated %q chunk", typ)
		}
		if typ != "EXIF" {
			chunks = append(chunks, chunk{typ, webp[start : start+int(n)]})
		}
		off = start + int(n) + int(n&1)
	}
	if len(chunks) == 0 {
		return nil, errors.New("insert webp exif: no image chunk")
	}
	if chunks[0].typ != "VP8X" {
		w, h, alpha, err := webpSize(chunks[0].typ, chunks[0].body)
		if err != nil {
			return nil, fmt.Errorf("insert webp exif: %w", err)
		}
		x := make([]byte, 10)
		if alpha {
			x[0] |= 0x10
		}
		putU24(x[4:], uint32(w-1))
		putU24(x[7:], uint32(h-1))
		chunks = append([]chunk{{"VP8X", x}}, chunks...)
	}
	vp8x := append([]byte(nil), chunks[0].body...)
	if len(vp8x) < 10 {
		return nil, errors.New("insert webp exif: short VP8X chunk")
	}
	vp8x[0] |= 0x08 // EXIF flag
	chunks[0].body = vp8x
	// EXIF goes after the image data (before XMP when present).
	exif := chunk{"EXIF", WEBPExif(pairs)}
	pos := len(chunks)
	for i, c := range chunks {
		if c.typ == "XMP " {
			pos = i
			break
		}
	}
	chunks = append(chunks[:pos], append([]chunk{exif}, chunks[pos:]...)...)
	out := []byte("RIFF\x00\x00\x00\x00WEBP")
	for _, c := range chunks {
		out = append(out, c.typ...)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(c.body)))
		out = append(out, c.body...)
		if len(c.body)%2 == 1 {
			out = append(out, 0)
		}
	}
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out, nil
}

func putU24(b []byte, v uint32) { b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16) }

// webpSize reads the canvas size of a simple-format bitstream chunk.
func webpSize(typ string, b []byte) (w, h int, alpha bool, err error) {
	switch typ {
	case "VP8 ":
		if len(b) < 10 || b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a {
			return 0, 0, false, errors.New("bad VP8 header")
		}
		return int(binary.LittleEndian.Uint16(b[6:]) & 0x3fff), int(binary.LittleEndian.Uint16(b[8:]) & 0x3fff), false, nil
	case "VP8L":
		if len(b) < 5 || b[0] != 0x2f {
			return 0, 0, false, errors.New("bad VP8L header")
		}
		v := binary.LittleEndian.Uint32(b[1:])
		return int(v&0x3fff) + 1, int(v>>14&0x3fff) + 1, v>>28&1 == 1, nil
	}
	return 0, 0, false, fmt.Errorf("unexpected first chunk %q", typ)
}
