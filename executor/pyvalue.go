package executor

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/comfygo/comfygo/graph"
)

// This file reproduces the Python value semantics validation depends on: JSON int vs float,
// int()/float()/str()/bool() conversions, equality (1 == 1.0 == True) and str()/repr() text.

// normalize turns a decoded JSON value into the Go value a node receives: json.Number becomes
// int64 (uint64 or *big.Int when larger) or float64 by its literal form; lists and objects are
// normalized recursively (a new container is made only when something changes).
func normalize(v any) any {
	n, _ := normalizeChanged(v)
	return n
}

func normalizeChanged(v any) (any, bool) {
	switch x := v.(type) {
	case json.Number:
		return numberValue(x), true
	case []any:
		var out []any
		for i, e := range x {
			n, changed := normalizeChanged(e)
			if !changed {
				if out != nil {
					out[i] = e
				}
				continue
			}
			if out == nil {
				out = make([]any, len(x))
				copy(out, x[:i])
			}
			out[i] = n
		}
		if out == nil {
			return x, false
		}
		return out, true
	case map[string]any:
		var out map[string]any
		for k, e := range x {
			n, changed := normalizeChanged(e)
			if !changed {
				continue
			}
			if out == nil {
				out = make(map[string]any, len(x))
				for k2, e2 := range x {
					out[k2] = e2
				}
			}
			out[k] = n
		}
		if out == nil {
			return x, false
		}
		return out, true
	}
	return v, false
}

// isFloatLiteral reports whether a JSON number literal is a Python float (has '.', 'e' or 'E').
func isFloatLiteral(s string) bool { return strings.ContainsAny(s, ".eE") }

// numberValue converts a JSON number to int64/uint64/*big.Int (int literal) or float64.
func numberValue(n json.Number) any {
	s := string(n)
	if isFloatLiteral(s) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			// out of range: Python gives inf
			if strings.HasPrefix(s, "-") {
				return math.Inf(-1)
			}
			return math.Inf(1)
		}
		return f
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u
	}
	b, ok := new(big.Int).SetString(s, 10)
	if ok {
		return b
	}
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// bigToValue returns b as int64, uint64 or *big.Int, the smallest that holds it.
func bigToValue(b *big.Int) any {
	if b.IsInt64() {
		return b.Int64()
	}
	if b.IsUint64() {
		return b.Uint64()
	}
	return b
}

// pyKind classifies a (normalized) value like Python's type().
func pyTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case int64, uint64, int, *big.Int:
		return "int"
	case float64, float32:
		return "float"
	case string:
		return "str"
	case []any:
		return "list"
	case map[string]any:
		return "dict"
	case graph.Link:
		return "list"
	}
	return fmt.Sprintf("%T", v)
}

// toBig returns an exact rational for a numeric value (bool counts as int), or nil.
func toRat(v any) *big.Rat {
	switch x := v.(type) {
	case bool:
		if x {
			return big.NewRat(1, 1)
		}
		return big.NewRat(0, 1)
	case int64:
		return new(big.Rat).SetInt64(x)
	case int:
		return new(big.Rat).SetInt64(int64(x))
	case uint64:
		return new(big.Rat).SetInt(new(big.Int).SetUint64(x))
	case *big.Int:
		return new(big.Rat).SetInt(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return new(big.Rat).SetFloat64(x)
	case float32:
		return toRat(float64(x))
	case json.Number:
		return toRat(numberValue(x))
	}
	return nil
}

// asFloat returns a numeric value as float64 (ok=false for non-numbers).
func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case uint64:
		return float64(x), true
	case *big.Int:
		f, _ := new(big.Float).SetInt(x).Float64()
		return f, true
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case json.Number:
		return asFloat(numberValue(x))
	}
	return 0, false
}

// pyCompare compares two numbers with Python semantics; ok=false if either is not a number.
// NaN compares false both ways (returns 0, ok=false).
func pyCompare(a, b any) (int, bool) {
	if c, ok := fastCompare(a, b); ok {
		return c, true
	}
	ra, rb := toRat(a), toRat(b)
	if ra != nil && rb != nil {
		return ra.Cmp(rb), true
	}
	fa, oka := asFloat(a)
	fb, okb := asFloat(b)
	if !oka || !okb || math.IsNaN(fa) || math.IsNaN(fb) {
		return 0, false
	}
	switch {
	case fa < fb:
		return -1, true
	case fa > fb:
		return 1, true
	}
	return 0, true
}

// fastCompare handles the common int64/int/float64 pairs exactly without big numbers.
func fastCompare(a, b any) (int, bool) {
	fa, oka := smallNum(a)
	fb, okb := smallNum(b)
	if !oka || !okb {
		return 0, false
	}
	switch {
	case fa < fb:
		return -1, true
	case fa > fb:
		return 1, true
	}
	return 0, true
}

// smallNum returns v as a float64 when that is exact (ints within ±2^53, finite floats).
func smallNum(v any) (float64, bool) {
	const lim = 1 << 53
	switch x := v.(type) {
	case int64:
		if x > -lim && x < lim {
			return float64(x), true
		}
	case int:
		if x > -lim && x < lim {
			return float64(x), true
		}
	case float64:
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			return x, true
		}
	}
	return 0, false
}

// pyEqual is Python ==: numbers compare by value across int/float/bool, strings by content,
// lists element-wise, dicts by keys and values.
func pyEqual(a, b any) bool {
	if c, ok := pyCompare(a, b); ok {
		return c == 0
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !pyEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !pyEqual(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

// pyFloatRepr formats f like Python's repr(float).
func pyFloatRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddde±XX
	mant, expS, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expS)
	if exp < -4 || exp >= 16 {
		sign := "+"
		if exp < 0 {
			sign = "-"
			exp = -exp
		}
		return fmt.Sprintf("%se%s%02d", mant, sign, exp)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// pyStr is Python's str(v).
func pyStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	}
	return pyRepr(v)
}

// pyRepr is Python's repr(v) for JSON-like values.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case uint64:
		return strconv.FormatUint(x, 10)
	case *big.Int:
		return x.String()
	case float64:
		return pyFloatRepr(x)
	case float32:
		return pyFloatRepr(float64(x))
	case json.Number:
		return pyRepr(numberValue(x))
	case string:
		return pyStrRepr(x)
	case graph.Link:
		return "[" + pyStrRepr(x.NodeID) + ", " + strconv.Itoa(x.Slot) + "]"
	case []string:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyStrRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = pyStrRepr(k) + ": " + pyRepr(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

// pyStrRepr is repr() of a str: single quotes unless the text has ' and no ".
func pyStrRepr(s string) string {
	q := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, "\"") {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(q):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}

// coerceError is a Python conversion error message (e.g. "invalid literal for int() with base
// 10: 'abc'").
type coerceError struct{ msg string }

func (e *coerceError) Error() string { return e.msg }

// cleanNumeric strips Python-allowed whitespace and single underscores between digits.
func cleanNumeric(s string) (string, bool) {
	s = strings.TrimFunc(s, unicode.IsSpace)
	if strings.Contains(s, "_") {
		// underscores only between digits
		for i := 0; i < len(s); i++ {
			if s[i] == '_' {
				if i == 0 || i == len(s)-1 || !isDigit(s[i-1]) || !isDigit(s[i+1]) {
					return "", false
				}
			}
		}
		s = strings.ReplaceAll(s, "_", "")
	}
	return s, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// pyInt is Python's int(v).
func pyInt(v any) (any, error) {
	switch x := v.(type) {
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case int64, uint64, *big.Int:
		return x, nil
	case int:
		return int64(x), nil
	case json.Number:
		return pyInt(numberValue(x))
	case float64:
		if math.IsNaN(x) {
			return nil, &coerceError{"cannot convert float NaN to integer"}
		}
		if math.IsInf(x, 0) {
			return nil, &coerceError{"cannot convert float infinity to integer"}
		}
		t := math.Trunc(x)
		if t >= -9.2e18 && t <= 9.2e18 {
			return int64(t), nil
		}
		b, _ := new(big.Float).SetFloat64(t).Int(nil)
		return bigToValue(b), nil
	case string:
		s, ok := cleanNumeric(x)
		if ok && s != "" {
			digits := strings.TrimLeft(s, "+-")
			if len(s)-len(digits) <= 1 && digits != "" && strings.Trim(digits, "0123456789") == "" {
				b, ok := new(big.Int).SetString(strings.TrimPrefix(s, "+"), 10)
				if ok {
					return bigToValue(b), nil
				}
			}
		}
		return nil, &coerceError{"invalid literal for int() with base 10: " + pyStrRepr(x)}
	}
	return nil, &coerceError{"int() argument must be a string, a bytes-like object or a real number, not '" + pyTypeName(v) + "'"}
}

// pyFloat is Python's float(v).
func pyFloat(v any) (any, error) {
	switch x := v.(type) {
	case bool, int64, uint64, *big.Int, int, float64:
		f, _ := asFloat(x)
		return f, nil
	case json.Number:
		return pyFloat(numberValue(x))
	case string:
		s, ok := cleanNumeric(x)
		if ok && s != "" {
			low := strings.ToLower(strings.TrimLeft(s, "+-"))
			neg := strings.HasPrefix(s, "-")
			switch low {
			case "inf", "infinity":
				if neg {
					return math.Inf(-1), nil
				}
				return math.Inf(1), nil
			case "nan":
				return math.NaN(), nil
			}
			if !strings.ContainsAny(low, "xpn") { // no hex floats, no "nan"/"inf" variants
				if f, err := strconv.ParseFloat(s, 64); err == nil {
					return f, nil
				} else if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
					return f, nil
				}
			}
		}
		return nil, &coerceError{"could not convert string to float: " + pyStrRepr(x)}
	}
	return nil, &coerceError{"float() argument must be a string or a real number, not '" + pyTypeName(v) + "'"}
}

// pyBool is Python's bool(v) (truthiness).
func pyBool(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	case json.Number:
		return pyBool(numberValue(x))
	}
	if r := toRat(v); r != nil {
		return r.Sign() != 0
	}
	if f, ok := asFloat(v); ok {
		return f != 0 // NaN is truthy in Python: NaN != 0
	}
	return true
}

// coerce converts constant v to declared type typ (INT, FLOAT, STRING, BOOLEAN; anything else is
// returned normalized).
func coerce(typ string, v any) (any, error) {
	switch typ {
	case "INT":
		return pyInt(v)
	case "FLOAT":
		return pyFloat(v)
	case "STRING":
		return pyStr(normalize(v)), nil
	case "BOOLEAN":
		return pyBool(v), nil
	}
	return normalize(v), nil
}
