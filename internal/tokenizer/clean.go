package tokenizer

import (
	"strings"
	"unicode"
)

// Clean is the text normalisation of HF's CLIPTokenizer when ftfy is absent (as in ComfyUI):
// BasicTokenizer without accent stripping or punctuation splitting. It drops NUL, U+FFFD and
// control/format/unassigned characters, turns whitespace into spaces, puts spaces around CJK
// ideographs, splits on whitespace, lowercases each piece and joins them with single spaces.
//
// Known difference: Python applies NFC normalisation; Go's standard library has none, so
// decomposed input (e.g. "e" + U+0301) is not composed here.
func Clean(text string) string {
	var sb strings.Builder
	sb.Grow(len(text))
	for _, r := range text {
		switch {
		case r == 0 || r == 0xFFFD || isControl(r):
			continue
		case isWhitespace(r):
			sb.WriteByte(' ')
		case isCJK(r):
			sb.WriteByte(' ')
			sb.WriteRune(r)
			sb.WriteByte(' ')
		default:
			sb.WriteRune(r)
		}
	}
	fields := strings.Fields(sb.String())
	for i, f := range fields {
		fields[i] = pyLower(f)
	}
	return strings.Join(fields, " ")
}

func isWhitespace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || unicode.Is(unicode.Zs, r)
}

// isControl is Python's unicodedata.category(r).startswith("C") except \t \n \r.
func isControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	if unicode.IsOneOf([]*unicode.RangeTable{unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs}, r) {
		return true
	}
	// Cn (unassigned): in no category at all.
	return !unicode.IsOneOf([]*unicode.RangeTable{unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z}, r)
}

func isCJK(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) || (r >= 0x3400 && r <= 0x4DBF) || (r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) || (r >= 0x2B740 && r <= 0x2B81F) || (r >= 0x2B820 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0x2F800 && r <= 0x2FA1F)
}

// pyLower approximates Python's str.lower(): Go's simple case mapping plus the two special
// cases Python applies (U+0130 → "i̇", and final sigma).
func pyLower(s string) string {
	rs := []rune(s)
	var sb strings.Builder
	sb.Grow(len(s))
	for i, r := range rs {
		switch r {
		case 0x130:
			sb.WriteString("i\u0307")
		case 0x3A3: // Σ: final form when preceded by a cased letter and not followed by one
			prev := false
			for j := i - 1; j >= 0; j-- {
				if unicode.Is(unicode.Mn, rs[j]) {
					continue
				}
				prev = unicode.IsUpper(rs[j]) || unicode.IsLower(rs[j]) || unicode.IsTitle(rs[j])
				break
			}
			next := false
			for j := i + 1; j < len(rs); j++ {
				if unicode.Is(unicode.Mn, rs[j]) {
					continue
				}
				next = unicode.IsUpper(rs[j]) || unicode.IsLower(rs[j]) || unicode.IsTitle(rs[j])
				break
			}
			if prev && !next {
				sb.WriteRune(0x3C2)
			} else {
				sb.WriteRune(0x3C3)
			}
		default:
			sb.WriteRune(unicode.ToLower(r))
		}
	}
	return sb.String()
}
