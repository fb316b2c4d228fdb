package tokenizer

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
)

func approxSegs(a, b []Segment) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Text != b[i].Text || math.Abs(a[i].Weight-b[i].Weight) > 1e-12 {
			return false
		}
	}
	return true
}

func TestParseWeights(t *testing.T) {
	cases := []struct {
		in   string
		want []Segment
	}{
		{"cat", []Segment{{"cat", 1}}},
		{"(cat)", []Segment{{"cat", 1.1}}},
		{"((cat))", []Segment{{"cat", 1.1 * 1.1}}},
		{"(cat:1.5)", []Segment{{"cat", 1.5}}},
		{"((cat:1.5))", []Segment{{"cat", 1.5}}},
		{"(a (b:0.5) c:1.2)", []Segment{{"a ", 1.2}, {"b", 0.5}, {" c", 1.2}}},
		{`\(cat\)`, []Segment{{"(cat)", 1}}},
		{`(embedding:foo:1.3)`, []Segment{{"embedding:foo", 1.3}}},
		{"a (b) c", []Segment{{"a ", 1}, {"b", 1.1}, {" c", 1}}},
		{"(x:-1)", []Segment{{"x", -1}}},
		{"(x:2.5e0)", []Segment{{"x", 2.5}}},
		{"(x: 1.5 )", []Segment{{"x", 1.5}}},
		{"(x:1_5)", []Segment{{"x", 15}}},
		{"(x:abc)", []Segment{{"x:abc", 1.1}}},
		{"(:1.5)", []Segment{{":1.5", 1.1}}}, // colon at position 0 is not a weight
		{"(a:b:0.5)", []Segment{{"a:b", 0.5}}},
		{"()", nil},
		{"(cat", []Segment{{"(cat", 1}}},   // unbalanced: literal, as upstream
		{"cat)", []Segment{{"cat)", 1}}},   // stray ")"
		{"a) (b", []Segment{{"a) (b", 1}}}, // level goes -1 then back to 0
		{`\\(x\\)`, []Segment{{`\(x\)`, 1}}},
		{`a\(b:2\)`, []Segment{{`a(b:2)`, 1}}},
	}
	for _, c := range cases {
		got := ParseWeights(c.in)
		if !approxSegs(got, c.want) {
			t.Errorf("ParseWeights(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

// idWords is a WordEncoder for tests: each whitespace-separated number is an id; other words
// map to 1000+len.
type idWords struct{}

func (idWords) Encode(s string) []int {
	var out []int
	for _, f := range strings.Fields(s) {
		n := 0
		for _, r := range f {
			if r < '0' || r > '9' {
				n = -1
				break
			}
			n = n*10 + int(r-'0')
		}
		if n < 0 {
			n = 1000 + len(f)
		}
		out = append(out, n)
	}
	return out
}

func TestTokenizeGoldenWeighted(t *testing.T) {
	// The golden clip_weighted prompt: (320 1125:1.2) 539 (320 2368:0.8).
	tk := &Tokenizer{Words: idWords{}, Pad: EOS}
	r := tk.Tokenize("(320 1125:1.2) 539 (320 2368:0.8)")
	if len(r.Chunks) != 1 || len(r.Chunks[0]) != ChunkLen {
		t.Fatalf("chunks %d", len(r.Chunks))
	}
	c := r.Chunks[0]
	wantIDs := []int{BOS, 320, 1125, 539, 320, 2368, EOS, EOS}
	wantW := []float64{1, 1.2, 1.2, 1, 0.8, 0.8, 1, 1}
	for i := range wantIDs {
		if c[i].ID != wantIDs[i] || c[i].Weight != wantW[i] {
			t.Errorf("pos %d: %v, want id %d w %v", i, c[i], wantIDs[i], wantW[i])
		}
	}
	if !c.Weighted() {
		t.Error("Weighted() = false")
	}
}

func ids(n, start int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = strconv.Itoa(start + i)
	}
	return strings.Join(parts, " ")
}

func TestChunking(t *testing.T) {
	tk := &Tokenizer{Words: idWords{}, Pad: 0}
	check := func(name string, r Result, wantChunks int) []Chunk {
		t.Helper()
		if len(r.Chunks) != wantChunks {
			t.Fatalf("%s: %d chunks, want %d", name, len(r.Chunks), wantChunks)
		}
		for i, c := range r.Chunks {
			if len(c) != ChunkLen || c[0].ID != BOS {
				t.Fatalf("%s: chunk %d malformed: len %d first %d", name, i, len(c), c[0].ID)
			}
		}
		return r.Chunks
	}
	// Empty prompt: BOS EOS pad*75 (pad 0 here, OpenCLIP style).
	c := check("empty", tk.Tokenize(""), 1)
	if c[0][1].ID != EOS || c[0][2].ID != 0 || c[0][76].ID != 0 {
		t.Errorf("empty chunk: %v", c[0].IDs()[:4])
	}
	if !reflect.DeepEqual(c[0], Empty(0)) {
		t.Error("Empty(0) differs from the tokenized empty prompt")
	}
	// One group of 75 ids fits exactly (whole segment is one group: large).
	c = check("75", tk.Tokenize(ids(75, 1)), 1)
	if c[0][75].ID != 75 || c[0][76].ID != EOS {
		t.Errorf("75: tail %v", c[0].IDs()[74:])
	}
	// 76 ids in one group: split 75 + 1.
	c = check("76", tk.Tokenize(ids(76, 1)), 2)
	if c[0][76].ID != EOS || c[1][1].ID != 76 || c[1][2].ID != EOS {
		t.Errorf("76: %v / %v", c[0].IDs()[74:], c[1].IDs()[:4])
	}
	// 150 -> 2 full chunks + an empty tail chunk? No: 75 + 75 then final EOS closes chunk 2.
	c = check("150", tk.Tokenize(ids(150, 1)), 2)
	if c[1][75].ID != 150 || c[1][76].ID != EOS {
		t.Errorf("150: %v", c[1].IDs()[74:])
	}
	// Small group crossing a boundary moves whole: 73 ids, then a separate 5-id group.
	// Groups are separated by weights: "(a:1.0)" syntax forms separate segments.
	r := tk.Tokenize("(" + ids(73, 1) + ":1.0)(" + ids(5, 500) + ":1.0)")
	c = check("small-move", r, 2)
	if c[0][73].ID != 73 || c[0][74].ID != EOS || c[0][75].ID != 0 || c[0][76].ID != 0 {
		t.Errorf("small-move chunk 0 tail %v", c[0].IDs()[72:])
	}
	if c[1][1].ID != 500 || c[1][5].ID != 504 || c[1][6].ID != EOS {
		t.Errorf("small-move chunk 1 %v", c[1].IDs()[:8])
	}
	// A group of 8 crossing the boundary splits.
	r = tk.Tokenize("(" + ids(73, 1) + ":1.0)(" + ids(8, 500) + ":1.0)")
	c = check("large-split", r, 2)
	if c[0][74].ID != 500 || c[0][75].ID != 501 || c[0][76].ID != EOS || c[1][1].ID != 502 || c[1][6].ID != 507 || c[1][7].ID != EOS {
		t.Errorf("large-split: %v / %v", c[0].IDs()[72:], c[1].IDs()[:9])
	}
}

func TestChunkingRealWords(t *testing.T) {
	b := vocab(t)
	tk := &Tokenizer{Words: b, Pad: EOS}
	// A 200-token prompt of one segment: split 75 + 75 + 50.
	words := strings.TrimSpace(strings.Repeat("cat ", 200))
	r := tk.Tokenize(words)
	if len(r.Chunks) != 3 {
		t.Fatalf("200 tokens: %d chunks", len(r.Chunks))
	}
	if r.Chunks[2][50].ID != 2368 || r.Chunks[2][51].ID != EOS || r.Chunks[2][76].ID != EOS {
		t.Errorf("200 tokens: last chunk %v", r.Chunks[2].IDs()[48:54])
	}
	// Weighted segment, spec example syntax.
	r = tk.Tokenize("a (photo:1.3) of a ((cat))")
	c := r.Chunks[0]
	want := []struct {
		id int
		w  float64
	}{{BOS, 1}, {320, 1}, {1125, 1.3}, {539, 1}, {320, 1}, {2368, 1.1 * 1.1}, {EOS, 1}, {EOS, 1}}
	for i, x := range want {
		if c[i].ID != x.id || math.Abs(c[i].Weight-x.w) > 1e-12 {
			t.Errorf("pos %d = %+v, want %+v", i, c[i], x)
		}
	}
}

func TestEmbeddings(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	vec := tensor.FromData([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	if err := safetensors.WriteFloat32(filepath.Join(dir, "sub", "myemb.safetensors"), map[string]*tensor.Tensor{"emb_params": vec}, safetensors.F32, nil); err != nil {
		t.Fatal(err)
	}
	sdxl := map[string]*tensor.Tensor{
		"clip_l": tensor.FromData([]float32{1, 1, 1}, 1, 3),
		"clip_g": tensor.FromData([]float32{2, 2, 2, 2, 3, 3, 3, 3}, 2, 4),
	}
	if err := safetensors.WriteFloat32(filepath.Join(dir, "xl.safetensors"), sdxl, safetensors.F16, nil); err != nil {
		t.Fatal(err)
	}
	e := NewEmbeddings([]string{dir})
	tk := &Tokenizer{Words: idWords{}, Pad: EOS, Embeddings: e.Lookup("clip_l")}
	// Found in a sub-directory, weight applies, leftover text after the name is tokenized.
	r := tk.Tokenize("5 (embedding:myemb 7:1.3) embedding:missing 9")
	c := r.Chunks[0]
	if c[1].ID != 5 || c[2].Embed == nil || c[3].Embed == nil || c[4].ID != 7 || c[5].ID != 9 || c[6].ID != EOS {
		t.Fatalf("chunk %v", c.IDs()[:8])
	}
	if !reflect.DeepEqual(c[3].Embed, []float32{4, 5, 6}) || c[2].Weight != 1.3 || c[4].Weight != 1.3 {
		t.Errorf("embedding tokens %+v %+v", c[2], c[3])
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "missing") {
		t.Errorf("warnings %v", r.Warnings)
	}
	// Trailing commas: retried without them, commas tokenized as text.
	r = tk.Tokenize("embedding:myemb,, 3")
	c = r.Chunks[0]
	if c[1].Embed == nil || c[2].Embed == nil || c[3].ID != 1002 || c[4].ID != 3 {
		t.Errorf("comma retry: %v", c.IDs()[:6])
	}
	// Per-encoder key in an SDXL embedding.
	tkg := &Tokenizer{Words: idWords{}, Pad: 0, Embeddings: e.Lookup("clip_g")}
	c = tkg.Tokenize("embedding:xl").Chunks[0]
	if !reflect.DeepEqual(c[1].Embed, []float32{2, 2, 2, 2}) || c[3].ID != EOS {
		t.Errorf("clip_g: %v", c.IDs()[:4])
	}
	// Without a lookup, the syntax is plain text; an escaping name is not found.
	if e.Find("../x") != "" {
		t.Error("escaping name resolved")
	}
	plain := &Tokenizer{Words: idWords{}, Pad: EOS}
	if c := plain.Tokenize("embedding:myemb").Chunks[0]; c[1].ID != 1000+len("embedding:myemb") {
		t.Errorf("plain: %v", c.IDs()[:3])
	}
	// A legacy (non-zip) .pt is refused with a clear error.
	if err := os.WriteFile(filepath.Join(dir, "legacy.pt"), []byte("\x80\x02legacy"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadEmbeddingFile(filepath.Join(dir, "legacy.pt")); err == nil || !strings.Contains(err.Error(), "legacy .pt files are not supported") {
		t.Errorf("legacy pt: %v", err)
	}
}

func FuzzParseWeights(f *testing.F) {
	for _, s := range []string{"(cat:1.2)", "((a)) (b:0.5) \\(c\\)", "(((", ")))(", "(a (b:x) c:1e3)", "embedding:foo (embedding:bar:1.1)", "(:)", "\x00\x01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		segs := ParseWeights(s)
		// Syntax characters disappear; the rest of the text is kept, so the segments never
		// hold more bytes than the input.
		n := 0
		for _, sg := range segs {
			n += len(sg.Text)
		}
		if n > len(s) {
			t.Fatalf("segments longer than input: %q -> %v", s, segs)
		}
		if s != "" && !strings.ContainsAny(s, "()\\\x00") {
			if len(segs) != 1 || segs[0].Text != s || segs[0].Weight != 1 {
				t.Fatalf("plain text %q parsed as %v", s, segs)
			}
		}
		tk := &Tokenizer{Words: idWords{}, Pad: EOS}
		for _, c := range tk.Tokenize(s).Chunks {
			if len(c) != ChunkLen || c[0].ID != BOS {
				t.Fatalf("bad chunk from %q", s)
			}
		}
	})
}

func FuzzEncode(f *testing.F) {
	b, err := Default()
	if err != nil {
		f.Skip("vocabulary absent")
	}
	for _, s := range []string{"a photo of a cat", "日本語 text", "ÀÉÎ 123 !!", "<|endoftext|>x", "it's"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, id := range b.Encode(s) {
			if id < 0 || id >= VocabSize {
				t.Fatalf("id %d out of range for %q", id, s)
			}
		}
	})
}
