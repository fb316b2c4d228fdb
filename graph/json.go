package graph

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds a small JSON reader that keeps object key order and number literals
// (json.Number), which ComfyUI's semantics depend on, and never panics on bad input.

// jobj is a JSON object with its key order kept. A repeated key keeps its first position
// and takes the last value, like Python's json.loads into a dict.
type jobj struct {
	keys []string
	vals []any
	idx  map[string]int // built lazily for larger objects
}

func (o *jobj) get(k string) (any, bool) {
	if o == nil {
		return nil, false
	}
	if len(o.keys) > 8 {
		if o.idx == nil {
			o.idx = make(map[string]int, len(o.keys))
			for i, kk := range o.keys {
				o.idx[kk] = i
			}
		}
		i, ok := o.idx[k]
		if !ok {
			return nil, false
		}
		return o.vals[i], true
	}
	for i, kk := range o.keys {
		if kk == k {
			return o.vals[i], true
		}
	}
	return nil, false
}

func (o *jobj) set(k string, v any) {
	for i, kk := range o.keys {
		if kk == k {
			o.vals[i] = v
			return
		}
	}
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

// maxJSONDepth bounds nesting so hostile input cannot exhaust the stack.
const maxJSONDepth = 1000

// SyntaxError is a malformed-JSON error with the byte offset where it was found.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("json: %s at offset %d", e.Msg, e.Offset) }

type jparser struct {
	s     []byte
	i     int
	depth int
	// specialsNull decodes bare NaN / Infinity / -Infinity as null (the frontend's
	// fallback); otherwise they become json.Number("NaN") etc. (Python's json.loads).
	specialsNull bool
}

// parseJSON parses one JSON document. Values are: nil, bool, string, json.Number,
// []any, *jobj.
func parseJSON(data []byte, specialsNull bool) (any, error) {
	p := &jparser{s: data, specialsNull: specialsNull}
	// A UTF-8 byte-order mark is tolerated.
	if len(p.s) >= 3 && p.s[0] == 0xEF && p.s[1] == 0xBB && p.s[2] == 0xBF {
		p.i = 3
	}
	p.ws()
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i != len(p.s) {
		return nil, p.err("unexpected data after the top-level value")
	}
	return v, nil
}

func (p *jparser) err(msg string) error { return &SyntaxError{Offset: p.i, Msg: msg} }

func (p *jparser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jparser) lit(word string) bool {
	if len(p.s)-p.i >= len(word) && string(p.s[p.i:p.i+len(word)]) == word {
		p.i += len(word)
		return true
	}
	return false
}

func (p *jparser) special(word string) any {
	if p.specialsNull {
		return nil
	}
	return json.Number(word)
}

func (p *jparser) value() (any, error) {
	if p.i >= len(p.s) {
		return nil, p.err("unexpected end of input")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		return p.str()
	case c == 't':
		if p.lit("true") {
			return true, nil
		}
	case c == 'f':
		if p.lit("false") {
			return false, nil
		}
	case c == 'n':
		if p.lit("null") {
			return nil, nil
		}
	case c == 'N':
		if p.lit("NaN") {
			return p.special("NaN"), nil
		}
	case c == 'I':
		if p.lit("Infinity") {
			return p.special("Infinity"), nil
		}
	case c == '-' || (c >= '0' && c <= '9'):
		if c == '-' && p.i+1 < len(p.s) && p.s[p.i+1] == 'I' {
			p.i++
			if p.lit("Infinity") {
				return p.special("-Infinity"), nil
			}
			p.i--
			return nil, p.err("invalid number")
		}
		return p.number()
	}
	return nil, p.err(fmt.Sprintf("invalid character %q looking for a value", p.s[p.i]))
}

func (p *jparser) number() (any, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.i < len(p.s) && p.s[p.i] == '0' {
		p.i++
	} else if digits() == 0 {
		return nil, p.err("invalid number")
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, p.err("invalid number: digits expected after '.'")
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.err("invalid number: digits expected in exponent")
		}
	}
	return json.Number(p.s[start:p.i]), nil
}

func (p *jparser) str() (string, error) {
	p.i++ // opening quote
	start := p.i
	// Fast path: no escapes, valid UTF-8.
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == '"' {
			b := p.s[start:p.i]
			p.i++
			if utf8.Valid(b) {
				return string(b), nil
			}
			return string([]rune(string(b))), nil // invalid bytes become U+FFFD
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.err("control character in string")
		}
		p.i++
	}
	buf := append([]byte(nil), p.s[start:p.i]...)
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			if utf8.Valid(buf) {
				return string(buf), nil
			}
			return string([]rune(string(buf))), nil
		case c < 0x20:
			return "", p.err("control character in string")
		case c != '\\':
			buf = append(buf, c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.s) {
			break
		}
		e := p.s[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.err("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// Try to pair with a following \uXXXX low surrogate.
				save := p.i
				if p.i+1 < len(p.s) && p.s[p.i] == '\\' && p.s[p.i+1] == 'u' {
					p.i += 2
					if r2, ok := p.hex4(); ok {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							buf = utf8.AppendRune(buf, d)
							continue
						}
					}
				}
				p.i = save
				r = utf8.RuneError
			}
			buf = utf8.AppendRune(buf, r)
		default:
			p.i--
			return "", p.err("invalid escape character")
		}
	}
	return "", p.err("unterminated string")
}

func (p *jparser) hex4() (rune, bool) {
	if len(p.s)-p.i < 4 {
		return 0, false
	}
	var r rune
	for k := 0; k < 4; k++ {
		c := p.s[p.i+k]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	p.i += 4
	return r, true
}

func (p *jparser) enter() error {
	p.depth++
	if p.depth > maxJSONDepth {
		return p.err("nesting too deep")
	}
	return nil
}

func (p *jparser) object() (any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.i++
	o := &jobj{}
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return o, nil
	}
	for {
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return nil, p.err("object key (a string) expected")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return nil, p.err("':' expected after object key")
		}
		p.i++
		p.ws()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		if len(o.keys) < 16 {
			o.set(k, v)
		} else {
			if o.idx == nil {
				o.idx = make(map[string]int, 32)
				for i, kk := range o.keys {
					o.idx[kk] = i
				}
			}
			if i, dup := o.idx[k]; dup {
				o.vals[i] = v
			} else {
				o.idx[k] = len(o.keys)
				o.keys = append(o.keys, k)
				o.vals = append(o.vals, v)
			}
		}
		p.ws()
		if p.i >= len(p.s) {
			return nil, p.err("unterminated object")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return o, nil
		default:
			return nil, p.err("',' or '}' expected in object")
		}
	}
}

func (p *jparser) array() (any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	p.i++
	a := []any{}
	p.ws()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return a, nil
	}
	for {
		p.ws()
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.ws()
		if p.i >= len(p.s) {
			return nil, p.err("unterminated array")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return a, nil
		default:
			return nil, p.err("',' or ']' expected in array")
		}
	}
}

// plain converts parser output into the value forms used in prompts: *jobj becomes
// map[string]any (recursively); other values are kept.
func plain(v any) any {
	switch x := v.(type) {
	case *jobj:
		m := make(map[string]any, len(x.keys))
		for i, k := range x.keys {
			m[k] = plain(x.vals[i])
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

// ---------------------------------------------------------------------------------------
// Encoding

// jsonStyle selects the output form: compact Go style or Python json.dumps defaults.
type jsonStyle struct {
	python bool // ", " / ": " separators and ASCII-only strings (\uXXXX), as ComfyUI writes metadata
}

var errBadNumber = errors.New("invalid json.Number")

func (st jsonStyle) comma(b []byte) []byte {
	if st.python {
		return append(b, ',', ' ')
	}
	return append(b, ',')
}

func (st jsonStyle) colon(b []byte) []byte {
	if st.python {
		return append(b, ':', ' ')
	}
	return append(b, ':')
}

const hexDigits = "0123456789abcdef"

func (st jsonStyle) appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				b = append(b, '\\', '"')
			case '\\':
				b = append(b, '\\', '\\')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				if c < 0x20 || (st.python && c == 0x7f) {
					b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
				} else {
					b = append(b, c)
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if !st.python {
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\ufffd"...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		appendU := func(b []byte, r rune) []byte {
			return append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
		}
		if r > 0xFFFF {
			r1, r2 := utf16.EncodeRune(r)
			b = appendU(appendU(b, r1), r2)
		} else {
			b = appendU(b, r)
		}
		i += size
	}
	return append(b, '"')
}

// validNumber reports whether s is a JSON number literal or one of Python's NaN forms.
func validNumber(s string) bool {
	switch s {
	case "NaN", "Infinity", "-Infinity":
		return true
	}
	p := &jparser{s: []byte(s)}
	if len(s) == 0 {
		return false
	}
	if _, err := p.number(); err != nil {
		return false
	}
	return p.i == len(s)
}

func appendFloat(b []byte, f float64) []byte {
	switch {
	case f != f:
		return append(b, "NaN"...)
	case f > 1.7976931348623157e308:
		return append(b, "Infinity"...)
	case f < -1.7976931348623157e308:
		return append(b, "-Infinity"...)
	}
	// Python's float repr: shortest digits, fixed notation for exponents -4..15, else
	// d.ddde+XX; a fixed-notation integer keeps ".0" (the float literal form).
	exp := 0
	if f != 0 {
		e := strconv.FormatFloat(f, 'e', -1, 64)
		if i := strings.LastIndexByte(e, 'e'); i >= 0 {
			exp, _ = strconv.Atoi(e[i+1:])
		}
	}
	if exp < -4 || exp >= 16 {
		return strconv.AppendFloat(b, f, 'e', -1, 64)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'f', -1, 64)
	for _, c := range b[start:] {
		if c == '.' {
			return b
		}
	}
	return append(b, '.', '0')
}

func (st jsonStyle) appendValue(b []byte, v any) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		if x {
			return append(b, "true"...), nil
		}
		return append(b, "false"...), nil
	case string:
		return st.appendString(b, x), nil
	case json.Number:
		if !validNumber(string(x)) {
			return b, fmt.Errorf("%w %q", errBadNumber, string(x))
		}
		return append(b, x...), nil
	case Link:
		b = append(b, '[')
		b = st.appendString(b, x.NodeID)
		b = st.comma(b)
		b = strconv.AppendInt(b, int64(x.Slot), 10)
		return append(b, ']'), nil
	case *Link:
		if x == nil {
			return append(b, "null"...), nil
		}
		return st.appendValue(b, *x)
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case float64:
		return appendFloat(b, x), nil
	case float32:
		return appendFloat(b, float64(x)), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = st.comma(b)
			}
			if b, err = st.appendValue(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case []string:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = st.comma(b)
			}
			b = st.appendString(b, e)
		}
		return append(b, ']'), nil
	case map[string]any:
		return st.appendMap(b, x)
	case *jobj:
		b = append(b, '{')
		for i, k := range x.keys {
			if i > 0 {
				b = st.comma(b)
			}
			b = st.colon(st.appendString(b, k))
			if b, err = st.appendValue(b, x.vals[i]); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case Inputs:
		return st.appendInputs(b, &x)
	case *Inputs:
		return st.appendInputs(b, x)
	case *Prompt:
		return st.appendPrompt(b, x)
	case json.RawMessage:
		pv, perr := parseJSON(x, false)
		if perr != nil {
			return b, perr
		}
		return st.appendValue(b, pv)
	}
	// Anything else goes through the standard encoder, then is re-read so the style applies.
	raw, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	pv, err := parseJSON(raw, false)
	if err != nil {
		return b, err
	}
	return st.appendValue(b, pv)
}

func (st jsonStyle) appendMap(b []byte, m map[string]any) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			b = st.comma(b)
		}
		b = st.colon(st.appendString(b, k))
		if b, err = st.appendValue(b, m[k]); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func (st jsonStyle) appendInputs(b []byte, in *Inputs) ([]byte, error) {
	b = append(b, '{')
	var err error
	n := 0
	for _, k := range in.Keys {
		v, ok := in.Values[k]
		if !ok {
			continue
		}
		if n > 0 {
			b = st.comma(b)
		}
		n++
		b = st.colon(st.appendString(b, k))
		if b, err = st.appendValue(b, v); err != nil {
			return b, fmt.Errorf("input %q: %w", k, err)
		}
	}
	return append(b, '}'), nil
}

func (st jsonStyle) appendPrompt(b []byte, p *Prompt) ([]byte, error) {
	if p == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '{')
	var err error
	n := 0
	for _, id := range p.IDs {
		node, ok := p.Nodes[id]
		if !ok || node == nil {
			continue
		}
		if n > 0 {
			b = st.comma(b)
		}
		n++
		b = st.colon(st.appendString(b, id))
		b = append(b, '{')
		b = st.colon(st.appendString(b, "inputs"))
		if b, err = st.appendInputs(b, &node.Inputs); err != nil {
			return b, fmt.Errorf("node %q: %w", id, err)
		}
		b = st.comma(b)
		b = st.colon(st.appendString(b, "class_type"))
		b = st.appendString(b, node.ClassType)
		if node.Meta != nil {
			b = st.comma(b)
			b = st.colon(st.appendString(b, "_meta"))
			if b, err = st.appendMap(b, node.Meta); err != nil {
				return b, fmt.Errorf("node %q _meta: %w", id, err)
			}
		}
		if node.HasIsChanged {
			b = st.comma(b)
			b = st.colon(st.appendString(b, "is_changed"))
			if b, err = st.appendValue(b, node.IsChanged); err != nil {
				return b, fmt.Errorf("node %q is_changed: %w", id, err)
			}
		}
		if node.OverrideDisplayID != "" {
			b = st.comma(b)
			b = st.colon(st.appendString(b, "override_display_id"))
			b = st.appendString(b, node.OverrideDisplayID)
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// MarshalPython encodes v the way Python's json.dumps does by default — ", " and ": "
// separators, ASCII only (\uXXXX escapes), NaN/Infinity as bare tokens — which is how
// ComfyUI writes the prompt and workflow into image metadata. Maps are written with
// sorted keys; *Prompt and Inputs keep their order.
func MarshalPython(v any) ([]byte, error) {
	return jsonStyle{python: true}.appendValue(nil, v)
}

// MarshalCompact encodes v as compact JSON with the value forms used by this package
// (Link, json.Number, Inputs, *Prompt, ...), keeping UTF-8 as is.
func MarshalCompact(v any) ([]byte, error) {
	return jsonStyle{}.appendValue(nil, v)
}
