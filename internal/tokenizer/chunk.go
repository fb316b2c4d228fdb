package tokenizer

import (
	"fmt"
	"regexp"
	"strings"
)

// ChunkLen is the length of one CLIP window: BOS + 75 tokens + EOS.
const ChunkLen = 77

// maxWordLength is upstream's max_word_length: groups this long may be split across chunks.
const maxWordLength = 8

// Token is one position of a chunk: a token id, or a textual-inversion vector that replaces the
// token embedding at that position.
type Token struct {
	ID     int
	Embed  []float32 // non-nil for an embedding vector (its length may not match the encoder: then it is dropped at encode time)
	Weight float64
}

// Chunk is one 77-token window.
type Chunk []Token

// IDs returns the token ids of the chunk (embedding positions report -1).
func (c Chunk) IDs() []int {
	out := make([]int, len(c))
	for i, t := range c {
		if t.Embed != nil {
			out[i] = -1
		} else {
			out[i] = t.ID
		}
	}
	return out
}

// Weighted reports whether some position has a weight other than 1.
func (c Chunk) Weighted() bool {
	for _, t := range c {
		if t.Weight != 1 {
			return true
		}
	}
	return false
}

// EmbeddingLookup resolves a textual-inversion name ("embedding:NAME") to its vectors for one
// encoder: a [n,D] or [D] tensor's data and shape. found=false means no such embedding; an
// error means it exists but could not be read (both are reported as warnings, the word dropped).
type EmbeddingLookup func(name string) (data []float32, shape []int, found bool, err error)

// WordEncoder turns a piece of text into token ids without BOS/EOS (the BPE's Encode).
type WordEncoder interface {
	Encode(text string) []int
}

// Tokenizer is one encoder's prompt tokenizer (upstream SDTokenizer): the BPE, the encoder's pad
// id and its embedding lookup.
type Tokenizer struct {
	Words WordEncoder
	// Pad is the padding id: EOS for CLIP-L (SD1, SDXL "l"), 0 for OpenCLIP ViT-H and bigG.
	Pad int
	// Embeddings resolves "embedding:NAME"; nil means the syntax is plain text (as upstream
	// without an embeddings directory).
	Embeddings EmbeddingLookup
}

// Result is a tokenized prompt: its chunks and any warnings (missing embeddings, ...).
type Result struct {
	Chunks   []Chunk
	Warnings []string
}

const embeddingPrefix = "embedding:"

var embedSplit = regexp.MustCompile(` embedding:|\nembedding:`)

// Tokenize parses text with ComfyUI's weight syntax, resolves embeddings, and packs the tokens
// into 77-token chunks (upstream tokenize_with_weights).
func (tk *Tokenizer) Tokenize(text string) Result {
	var res Result
	var groups [][]Token
	for _, seg := range ParseWeights(text) {
		parts := embedSplit.Split(seg.Text, -1)
		for i := 1; i < len(parts); i++ {
			parts[i] = embeddingPrefix + parts[i]
		}
		for _, word := range parts {
			if word == "" {
				continue
			}
			if strings.HasPrefix(word, embeddingPrefix) && tk.Embeddings != nil {
				name := strings.Trim(word[len(embeddingPrefix):], "\n")
				if g, leftover, ok := tk.embedding(name, seg.Weight, &res); ok {
					if g != nil {
						groups = append(groups, g)
					}
					if leftover == "" {
						continue
					}
					word = leftover
				}
			}
			ids := tk.Words.Encode(word)
			g := make([]Token, len(ids))
			for i, id := range ids {
				g[i] = Token{ID: id, Weight: seg.Weight}
			}
			groups = append(groups, g)
		}
	}
	res.Chunks = tk.pack(groups)
	return res
}

// embedding handles one "embedding:NAME rest" word: it returns the vectors' group (nil if not
// found) and the leftover text to tokenize. ok=false means the word is not an embedding
// reference at all (an empty name) and is tokenized as text.
func (tk *Tokenizer) embedding(name string, weight float64, res *Result) (group []Token, leftover string, ok bool) {
	fields := strings.Fields(name)
	if len(fields) == 0 {
		return nil, "", false
	}
	ename := fields[0]
	leftover = strings.Join(fields[1:], " ")
	data, shape, found, err := tk.Embeddings(ename)
	if err != nil || !found {
		if stripped := strings.Trim(ename, ","); len(stripped) < len(ename) {
			data, shape, found, err = tk.Embeddings(stripped)
			leftover = ename[len(stripped):] + " " + leftover
		}
	}
	switch {
	case err != nil:
		res.Warnings = append(res.Warnings, fmt.Sprintf("embedding:%s could not be loaded, ignoring: %v", ename, err))
		return nil, leftover, true
	case !found:
		res.Warnings = append(res.Warnings, fmt.Sprintf("embedding:%s does not exist, ignoring", ename))
		return nil, leftover, true
	}
	switch len(shape) {
	case 0:
		return nil, leftover, true
	case 1:
		return []Token{{Embed: append([]float32(nil), data...), Weight: weight}}, leftover, true
	default:
		n := shape[0]
		if n == 0 {
			return nil, leftover, true
		}
		per := len(data) / n
		for i := 0; i < n; i++ {
			v := append([]float32(nil), data[i*per:(i+1)*per]...)
			if len(shape) > 2 {
				// Upstream keeps such rows but drops them at encode time (not a vector):
				// an empty vector never matches an encoder width.
				v = []float32{}
			}
			group = append(group, Token{Embed: v, Weight: weight})
		}
		return group, leftover, true
	}
}

// pack places groups into chunks: [BOS] + up to 75 elements + [EOS], padded to 77. A group
// that does not fit moves whole to the next chunk, except groups of 8 or more elements, which
// are split.
func (tk *Tokenizer) pack(groups [][]Token) []Chunk {
	bos := Token{ID: BOS, Weight: 1}
	eos := Token{ID: EOS, Weight: 1}
	pad := Token{ID: tk.Pad, Weight: 1}
	var chunks []Chunk
	batch := Chunk{bos}
	for _, g := range groups {
		large := len(g) >= maxWordLength
		for len(g) > 0 {
			if len(g)+len(batch) > ChunkLen-1 {
				room := ChunkLen - len(batch) - 1
				if large {
					batch = append(batch, g[:room]...)
					batch = append(batch, eos)
					g = g[room:]
				} else {
					batch = append(batch, eos)
					for i := 0; i < room; i++ {
						batch = append(batch, pad)
					}
				}
				chunks = append(chunks, batch)
				batch = Chunk{bos}
			} else {
				batch = append(batch, g...)
				g = nil
			}
		}
	}
	batch = append(batch, eos)
	for len(batch) < ChunkLen {
		batch = append(batch, pad)
	}
	return append(chunks, batch)
}

// Empty is the empty prompt's chunk: [BOS, EOS, pad…] (upstream gen_empty_tokens).
func Empty(pad int) Chunk {
	c := make(Chunk, ChunkLen)
	for i := range c {
		c[i] = Token{ID: pad, Weight: 1}
	}
	c[0].ID, c[1].ID = BOS, EOS
	return c
}
