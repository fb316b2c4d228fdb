package tokenizer

import (
	"regexp"
	"strconv"
	"strings"
)

// Segment is a run of prompt text with its weight.
type Segment struct {
	Text   string
	Weight float64
}

// ParseWeights splits a prompt into weighted segments with ComfyUI's syntax (upstream
// token_weights): "(x)" multiplies the enclosing weight by 1.1, "(x:1.5)" sets it to 1.5 (the
// last colon; absolute, not multiplied), nesting recurses, "\(" and "\)" are literal
// parentheses. Unbalanced parentheses behave as upstream's parser does.
func ParseWeights(text string) []Segment {
	text = escapeImportant(text)
	segs := tokenWeights(text, 1.0)
	for i := range segs {
		segs[i].Text = unescapeImportant(segs[i].Text)
	}
	return segs
}

func escapeImportant(s string) string {
	s = strings.ReplaceAll(s, `\)`, "\x00\x01")
	return strings.ReplaceAll(s, `\(`, "\x00\x02")
}

func unescapeImportant(s string) string {
	s = strings.ReplaceAll(s, "\x00\x01", ")")
	return strings.ReplaceAll(s, "\x00\x02", "(")
}

// parseParentheses splits s at top level into plain runs and "( … )" items, counting nesting as
// upstream parse_parentheses does (including its handling of stray ")").
func parseParentheses(s string) []string {
	var out []string
	var cur strings.Builder
	level := 0
	for i := 0; i < len(s); i++ { // bytes: the syntax is ASCII, other bytes pass through unchanged
		switch r := s[i]; r {
		case '(':
			if level == 0 {
				if cur.Len() > 0 {
					out = append(out, cur.String())
				}
				cur.Reset()
				cur.WriteByte('(')
			} else {
				cur.WriteByte(r)
			}
			level++
		case ')':
			level--
			if level == 0 {
				cur.WriteByte(')')
				out = append(out, cur.String())
				cur.Reset()
			} else {
				cur.WriteByte(r)
			}
		default:
			cur.WriteByte(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// maxDepth bounds recursion on adversarial input; deeper items are taken as plain text.
const maxDepth = 256

func tokenWeights(s string, weight float64) []Segment {
	return tokenWeightsDepth(s, weight, 0)
}

func tokenWeightsDepth(s string, weight float64, depth int) []Segment {
	var out []Segment
	for _, x := range parseParentheses(s) {
		if len(x) >= 2 && x[0] == '(' && x[len(x)-1] == ')' && depth < maxDepth {
			x = x[1 : len(x)-1]
			w := weight * 1.1
			if i := strings.LastIndex(x, ":"); i > 0 {
				if f, ok := pyFloat(x[i+1:]); ok {
					w = f
					x = x[:i]
				}
			}
			out = append(out, tokenWeightsDepth(x, w, depth+1)...)
		} else {
			out = append(out, Segment{Text: x, Weight: weight})
		}
	}
	return out
}

var pyFloatRe = regexp.MustCompile(`^[+-]?(?:(?i:inf|infinity|nan)|(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?)$`)

// pyFloat parses s as Python's float() does (surrounding whitespace, underscores between
// digits, inf/nan spellings; no hex).
func pyFloat(s string) (float64, bool) {
	s = strings.TrimFunc(s, isPySpace)
	if !pyFloatRe.MatchString(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil {
		// Out of range: Python gives ±inf for overflow and 0 for underflow; ParseFloat returns
		// those values with ErrRange.
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f, true
		}
		return 0, false
	}
	return f, true
}

func isPySpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f, 0x85, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200a
}
