package graph

import (
	"bytes"
	"errors"
	"fmt"
)

// Format names what LoadAny found.
type Format int

// Formats LoadAny detects.
const (
	FormatUnknown  Format = iota
	FormatAPI             // API prompt (possibly inside a {"prompt": ...} wrapper)
	FormatWorkflow        // UI workflow
)

// LoadAny loads whatever a user drops: a PNG or WEBP image (or safetensors/.latent file)
// with embedded metadata, a UI workflow JSON, an API prompt JSON, or a POST /prompt body /
// history entry ({"prompt": ..., "extra_data": {"extra_pnginfo": {"workflow": ...}}}).
// It follows the frontend's rules: for files the embedded workflow wins over the embedded
// prompt; for JSON an object whose every value has a string class_type and object inputs
// is an API prompt, anything with a "nodes" array is a UI workflow. A workflow is converted
// with s; when an embedded workflow cannot be converted (e.g. legacy group nodes) the
// embedded prompt is used instead. workflowJSON is the UI workflow found, if any (to embed
// into outputs).
func LoadAny(data []byte, s Schema) (p *Prompt, workflowJSON []byte, err error) {
	p, workflowJSON, _, err = LoadAnyFormat(data, s)
	return p, workflowJSON, err
}

// LoadAnyFormat is LoadAny that also tells which format was found.
func LoadAnyFormat(data []byte, s Schema) (*Prompt, []byte, Format, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\xef\xbb\xbf")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		return loadJSON(data, s)
	}
	wf, pr, err := ExtractFromImage(data)
	if err != nil {
		return nil, nil, FormatUnknown, fmt.Errorf("load: %w", err)
	}
	var wfErr error
	if wf != nil {
		if v, perr := parseJSON(wf, true); perr == nil {
			if _, ok := v.(*jobj); ok {
				w, err := ParseWorkflow(wf)
				if err == nil {
					var p *Prompt
					if p, err = ConvertWorkflow(w, s); err == nil {
						return p, wf, FormatWorkflow, nil
					}
				}
				// Fall back to the embedded prompt (e.g. a legacy group node we cannot expand).
				wfErr = fmt.Errorf("load embedded workflow: %w", err)
			} else {
				wf = nil
			}
		} else {
			wf = nil
		}
	}
	if pr != nil {
		v, err := parseJSON(pr, false)
		if err == nil {
			if o, ok := v.(*jobj); ok && isAPIPrompt(o) {
				p, err := promptFromObject(o)
				if err != nil {
					return nil, nil, FormatUnknown, fmt.Errorf("load embedded prompt: %w", err)
				}
				return p, wf, FormatAPI, nil
			}
		}
		if wfErr != nil {
			return nil, nil, FormatUnknown, wfErr
		}
		return nil, nil, FormatUnknown, errors.New("load: the embedded prompt is not a valid API prompt")
	}
	if wfErr != nil {
		return nil, nil, FormatUnknown, wfErr
	}
	return nil, nil, FormatUnknown, fmt.Errorf("load: %w", ErrNoMetadata)
}

func loadJSON(data []byte, s Schema) (*Prompt, []byte, Format, error) {
	v, err := parseJSON(data, false)
	if err != nil {
		// The frontend retries with bare NaN/Infinity replaced by null; our reader accepts
		// them already, so this is a real syntax error.
		return nil, nil, FormatUnknown, fmt.Errorf("load json: %w", err)
	}
	o, ok := v.(*jobj)
	if !ok {
		return nil, nil, FormatUnknown, fmt.Errorf("load json: top level is %s, want an object", kindOf(v))
	}
	if t, ok := o.get("templates"); ok && truthy(t) {
		return nil, nil, FormatUnknown, errors.New("load json: template packs are not supported")
	}
	if isAPIPrompt(o) {
		p, err := promptFromObject(o)
		if err != nil {
			return nil, nil, FormatUnknown, fmt.Errorf("load api prompt: %w", err)
		}
		return p, nil, FormatAPI, nil
	}
	if looseAPIPrompt(o) {
		return nil, nil, FormatUnknown, errors.New("load json: invalid API prompt (every node needs a string class_type and an inputs object)")
	}
	// {"prompt": {...}} wrapper (POST /prompt body, history entry).
	if inner, ok := promptWrapper(o); ok && isAPIPrompt(inner) {
		p, err := promptFromObject(inner)
		if err != nil {
			return nil, nil, FormatUnknown, fmt.Errorf("load api prompt: %w", err)
		}
		var wfJSON []byte
		if ed, ok := mustGet(o, "extra_data").(*jobj); ok {
			if ep, ok := mustGet(ed, "extra_pnginfo").(*jobj); ok {
				if w, ok := mustGet(ep, "workflow").(*jobj); ok {
					wfJSON, _ = MarshalCompact(w)
				}
			}
		}
		return p, wfJSON, FormatAPI, nil
	}
	if nv, ok := o.get("nodes"); ok {
		if _, isArr := nv.([]any); isArr {
			_, hasVersion := o.get("version")
			_, hasLinks := o.get("links")
			if hasVersion || hasLinks {
				w, err := ParseWorkflow(data)
				if err != nil {
					return nil, nil, FormatUnknown, err
				}
				p, err := ConvertWorkflow(w, s)
				if err != nil {
					return nil, nil, FormatUnknown, err
				}
				return p, data, FormatWorkflow, nil
			}
		}
	}
	return nil, nil, FormatUnknown, errors.New("load json: neither a UI workflow (nodes, links, version) nor an API prompt")
}

// isAPIPrompt is the frontend's strict check: a non-empty object whose every value is an
// object with a string class_type and an object inputs.
func isAPIPrompt(o *jobj) bool {
	if len(o.keys) == 0 {
		return false
	}
	for _, v := range o.vals {
		n, ok := v.(*jobj)
		if !ok {
			return false
		}
		if _, ok := mustGet(n, "class_type").(string); !ok {
			return false
		}
		if _, ok := mustGet(n, "inputs").(*jobj); !ok {
			return false
		}
	}
	return true
}

// looseAPIPrompt is the frontend's first test: every value has a truthy class_type.
func looseAPIPrompt(o *jobj) bool {
	if len(o.keys) == 0 {
		return false
	}
	for _, v := range o.vals {
		n, ok := v.(*jobj)
		if !ok || !truthy(mustGet(n, "class_type")) {
			return false
		}
	}
	return true
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case []any, *jobj:
		return true
	default:
		if f, ok := numberOf(v); ok {
			return f != 0 && f == f
		}
		return true
	}
}
