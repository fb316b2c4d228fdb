package graph

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"image/png"
	"strings"
	"testing"
)

func tinyPNG(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(1, 1, color.RGBA{255, 0, 0, 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func chunkTypes(t *testing.T, data []byte) []string {
	var out []string
	for off := 8; off+8 <= len(data); {
		n := int(binary.BigEndian.Uint32(data[off:]))
		out = append(out, string(data[off+4:off+8]))
		off += 12 + n
	}
	return out
}

const (
	testWorkflowJSON = `{"last_node_id": 1, "last_link_id": 0, "version": 0.4, "nodes": [{"id": 1, "type": "EmptyLatentImage", "mode": 0, "widgets_values": [64, 64, 1]}], "links": []}`
	testPromptJSON   = `{"1": {"inputs": {"width": 64, "height": 64, "batch_size": 1}, "class_type": "EmptyLatentImage"}}`
)

func TestPNGRoundTrip(t *testing.T) {
	base := tinyPNG(t)
	out, err := InsertPNGText(base, [][2]string{{"prompt", testPromptJSON}, {"workflow", testWorkflowJSON}, {"extra", "é ünïcode ✓"}})
	if err != nil {
		t.Fatal(err)
	}
	types := chunkTypes(t, out)
	if strings.Join(types[:4], ",") != "IHDR,tEXt,tEXt,iTXt" {
		t.Errorf("chunk order = %v", types)
	}
	// Still a valid PNG (CRCs right).
	if _, err := png.Decode(bytes.NewReader(out)); err != nil {
		t.Fatalf("decode: %v", err)
	}
	wf, pr, err := ExtractFromImage(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(wf) != testWorkflowJSON || string(pr) != testPromptJSON {
		t.Errorf("extract: %s / %s", wf, pr)
	}
	if got := pngTexts(out)["extra"]; got != "é ünïcode ✓" {
		t.Errorf("iTXt = %q", got)
	}
	// Re-inserting replaces the old chunks.
	out2, err := InsertPNGText(out, [][2]string{{"prompt", `{"2": {"class_type": "X", "inputs": {}}}`}})
	if err != nil {
		t.Fatal(err)
	}
	if _, pr2, _ := ExtractFromImage(out2); !strings.Contains(string(pr2), `"2"`) {
		t.Errorf("replaced prompt: %s", pr2)
	}
	if n := strings.Count(strings.Join(chunkTypes(t, out2), ","), "tEXt"); n != 2 {
		t.Errorf("tEXt chunks after replace: %d", n)
	}
	if _, err := InsertPNGText([]byte("nope"), nil); err == nil {
		t.Error("non-PNG accepted")
	}
	if _, err := InsertPNGText(base, [][2]string{{"", "x"}}); err == nil {
		t.Error("empty keyword accepted")
	}
	if _, _, err := ExtractFromImage(base); !errors.Is(err, ErrNoMetadata) {
		t.Errorf("plain PNG: %v", err)
	}
}

func TestPNGCompressedAndLatin1(t *testing.T) {
	base := tinyPNG(t)
	z := func(s string) []byte {
		var b bytes.Buffer
		w := zlib.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.Bytes()
	}
	ihdrEnd := 8 + 12 + int(binary.BigEndian.Uint32(base[8:]))
	var extra []byte
	extra = appendChunk(extra, "zTXt", append([]byte("workflow\x00\x00"), z(testWorkflowJSON)...))
	extra = appendChunk(extra, "iTXt", append([]byte("prompt\x00\x01\x00en\x00Prompt\x00"), z(testPromptJSON)...))
	extra = appendChunk(extra, "tEXt", []byte("latin\x00caf\xe9"))
	img := append(append(append([]byte(nil), base[:ihdrEnd]...), extra...), base[ihdrEnd:]...)
	wf, pr, err := ExtractFromImage(img)
	if err != nil || string(wf) != testWorkflowJSON || string(pr) != testPromptJSON {
		t.Fatalf("compressed chunks: %v %s %s", err, wf, pr)
	}
	if got := pngTexts(img)["latin"]; got != "café" {
		t.Errorf("latin-1 tEXt = %q", got)
	}
	// The APNG "comf" chunk, after the image data, wins over an earlier tEXt.
	iend := len(img) - 12
	late := appendChunk(nil, "comf", []byte("workflow\x00{\"nodes\": [], \"links\": [], \"late\": 1}"))
	img2 := append(append(append([]byte(nil), img[:iend]...), late...), img[iend:]...)
	if wf, _, _ := ExtractFromImage(img2); !strings.Contains(string(wf), "late") {
		t.Errorf("comf chunk not read: %s", wf)
	}
}

// vp8lWEBP builds a minimal simple-format WEBP (the bitstream is not decodable; the chunk
// layer is what matters here).
func vp8lWEBP(w, h int) []byte {
	body := []byte{0x2f, 0, 0, 0, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(body[1:], uint32(w-1)|uint32(h-1)<<14)
	out := []byte("RIFF\x00\x00\x00\x00WEBP")
	out = append(out, "VP8L"...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(body)))
	out = append(out, body...)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(out)-8))
	return out
}

func TestWEBPRoundTrip(t *testing.T) {
	out, err := InsertWEBPExif(vp8lWEBP(3, 5), [][2]string{{"prompt", testPromptJSON}, {"workflow", testWorkflowJSON}})
	if err != nil {
		t.Fatal(err)
	}
	if !IsWEBP(out) || binary.LittleEndian.Uint32(out[4:]) != uint32(len(out)-8) {
		t.Fatal("bad RIFF size")
	}
	if string(out[12:16]) != "VP8X" || out[20]&0x08 == 0 {
		t.Errorf("VP8X with EXIF flag expected: % x", out[12:24])
	}
	if w := int(out[24]) | int(out[25])<<8 | int(out[26])<<16; w != 2 {
		t.Errorf("canvas width-1 = %d", w)
	}
	wf, pr, err := ExtractFromImage(out)
	if err != nil || string(wf) != testWorkflowJSON || string(pr) != testPromptJSON {
		t.Fatalf("extract: %v %s %s", err, wf, pr)
	}
	tex := exifTexts(WEBPExif([][2]string{{"prompt", "p"}, {"workflow", "w"}, {"more", "m"}}))
	if tex["prompt"] != "p" || tex["workflow"] != "w" || tex["more"] != "m" {
		t.Errorf("exif texts: %v", tex)
	}
}

// A little-endian EXIF with the Exif\0\0 prefix and capitalised keys (a popular custom
// saver), plus an XMP-only file.
func TestWEBPExifVariants(t *testing.T) {
	le := binary.LittleEndian
	val1 := []byte("Workflow:" + testWorkflowJSON + "\x00")
	val2 := []byte("Prompt:" + testPromptJSON + "\x00")
	tiff := []byte{'I', 'I', 42, 0, 8, 0, 0, 0}
	tiff = le.AppendUint16(tiff, 3)
	dataOff := 8 + 2 + 3*12 + 4
	entry := func(b []byte, tag, typ uint16, count, val uint32) []byte {
		b = le.AppendUint16(b, tag)
		b = le.AppendUint16(b, typ)
		b = le.AppendUint32(b, count)
		return le.AppendUint32(b, val)
	}
	tiff = entry(tiff, 0x0100, 3, 1, 64) // ImageWidth SHORT: ignored
	tiff = entry(tiff, 0x010f, 2, uint32(len(val1)), uint32(dataOff))
	tiff = entry(tiff, 0x0110, 2, uint32(len(val2)), uint32(dataOff+len(val1)))
	tiff = le.AppendUint32(tiff, 0)
	tiff = append(append(tiff, val1...), val2...)
	exif := append([]byte("Exif\x00\x00"), tiff...)
	webp := vp8lWEBP(1, 1)
	webp = append(webp, "EXIF"...)
	webp = le.AppendUint32(webp, uint32(len(exif)))
	webp = append(webp, exif...)
	if len(exif)%2 == 1 {
		webp = append(webp, 0)
	}
	le.PutUint32(webp[4:], uint32(len(webp)-8))
	wf, pr, err := ExtractFromImage(webp)
	if err != nil || string(wf) != testWorkflowJSON || string(pr) != testPromptJSON {
		t.Fatalf("LE exif: %v %s %s", err, wf, pr)
	}

	xmp := `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description comfy:prompt="{&quot;1&quot;: {&quot;class_type&quot;: &quot;A&quot;, &quot;inputs&quot;: {}}}"><comfy:workflow>{"nodes": [], "links": [], "version": 0.4}</comfy:workflow></rdf:Description></rdf:RDF></x:xmpmeta>`
	w2 := vp8lWEBP(1, 1)
	w2 = append(w2, "XMP "...)
	w2 = le.AppendUint32(w2, uint32(len(xmp)))
	w2 = append(w2, xmp...)
	if len(xmp)%2 == 1 {
		w2 = append(w2, 0)
	}
	le.PutUint32(w2[4:], uint32(len(w2)-8))
	wf, pr, err = ExtractFromImage(w2)
	if err != nil || string(wf) != `{"nodes": [], "links": [], "version": 0.4}` || string(pr) != `{"1": {"class_type": "A", "inputs": {}}}` {
		t.Fatalf("xmp: %v %s %s", err, wf, pr)
	}
}

func TestLoadAny(t *testing.T) {
	pngData, err := InsertPNGText(tinyPNG(t), [][2]string{{"prompt", testPromptJSON}, {"workflow", testWorkflowJSON}})
	if err != nil {
		t.Fatal(err)
	}
	promptOnly, _ := InsertPNGText(tinyPNG(t), [][2]string{{"prompt", testPromptJSON}})
	groupNodeWF := `{"version": 0.4, "nodes": [{"id": 1, "type": "workflow>G", "mode": 0}], "links": [], "extra": {"groupNodes": {"G": {}}}}`
	fallback, _ := InsertPNGText(tinyPNG(t), [][2]string{{"prompt", testPromptJSON}, {"workflow", groupNodeWF}})
	groupOnly, _ := InsertPNGText(tinyPNG(t), [][2]string{{"workflow", groupNodeWF}})
	wantPrompt := canon(t, `{"1": {"inputs": {"width": 64, "height": 64, "batch_size": 1}, "class_type": "EmptyLatentImage", "_meta": {"title": "Empty Latent Image"}}}`)
	wantAPI := canon(t, testPromptJSON)
	stHeader := `{"__metadata__": {"prompt": ` + jsonQuote(testPromptJSON) + `, "workflow": ""}}`
	st := binary.LittleEndian.AppendUint64(nil, uint64(len(stHeader)))
	st = append(st, stHeader...)
	tests := []struct {
		name   string
		data   []byte
		format Format
		want   string
		wfOut  bool
	}{
		{"png_workflow_wins", pngData, FormatWorkflow, wantPrompt, true},
		{"png_prompt_only", promptOnly, FormatAPI, wantAPI, false},
		{"png_unconvertible_workflow_falls_back", fallback, FormatAPI, wantAPI, true},
		{"ui_json", []byte(testWorkflowJSON), FormatWorkflow, wantPrompt, true},
		{"api_json", []byte(testPromptJSON), FormatAPI, wantAPI, false},
		{"post_body", []byte(`{"client_id": "x", "prompt": ` + testPromptJSON + `, "extra_data": {"extra_pnginfo": {"workflow": {"nodes": []}}}}`), FormatAPI, wantAPI, true},
		{"latent_file", st, FormatAPI, wantAPI, false},
		{"nan_workflow", []byte(strings.Replace(testWorkflowJSON, `"mode": 0`, `"mode": 0, "x": NaN`, 1)), FormatWorkflow, wantPrompt, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, wf, f, err := LoadAnyFormat(tc.data, testSchema)
			if err != nil {
				t.Fatal(err)
			}
			if f != tc.format {
				t.Errorf("format = %v, want %v", f, tc.format)
			}
			got, _ := p.MarshalJSON()
			if string(got) != tc.want {
				t.Errorf("prompt\n got %s\nwant %s", got, tc.want)
			}
			if (wf != nil) != tc.wfOut {
				t.Errorf("workflow returned = %v", wf != nil)
			}
		})
	}
	if _, _, err := LoadAny(groupOnly, testSchema); err == nil || !strings.Contains(err.Error(), "group node") {
		t.Errorf("group-node-only PNG: %v", err)
	}
	for _, bad := range []string{`{"1": {"class_type": "A", "inputs": []}}`, `{"templates": [{}]}`, `{"foo": 1}`, `[]`, `{`, "GIF89a", `{}`} {
		if _, _, err := LoadAny([]byte(bad), testSchema); err == nil {
			t.Errorf("LoadAny(%q): no error", bad)
		}
	}
}

func jsonQuote(s string) string {
	b, _ := MarshalCompact(s)
	return string(b)
}

func FuzzExtractFromImage(f *testing.F) {
	base := tinyPNG(f)
	withText, _ := InsertPNGText(base, [][2]string{{"prompt", testPromptJSON}, {"workflow", testWorkflowJSON}})
	webp, _ := InsertWEBPExif(vp8lWEBP(2, 2), [][2]string{{"prompt", testPromptJSON}, {"workflow", testWorkflowJSON}})
	f.Add(base)
	f.Add(withText)
	f.Add(webp)
	f.Add([]byte("RIFF\x10\x00\x00\x00WEBPEXIF\x04\x00\x00\x00MM\x00*"))
	f.Add([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x05zTXtk\x00\x00x\x9c"))
	f.Add(append(binary.LittleEndian.AppendUint64(nil, 2), "{}"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		wf, pr, err := ExtractFromImage(data)
		if err == nil && wf == nil && pr == nil {
			t.Fatal("nil results without error")
		}
		_, _, _ = LoadAny(data, testSchema)
		if IsPNG(data) {
			_, _ = InsertPNGText(data, [][2]string{{"prompt", "{}"}})
		}
		if IsWEBP(data) {
			_, _ = InsertWEBPExif(data, [][2]string{{"prompt", "{}"}})
		}
	})
}
