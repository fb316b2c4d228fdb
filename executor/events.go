package executor

import (
	"bytes"
	"encoding/json"
)

// NodeStates is progress_state's nodes object, kept as a list; it marshals as
// {node_id: NodeState, ...} in order.
type NodeStates []NodeState

// MarshalJSON writes the states as an object keyed by node id.
func (s NodeStates) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(s[i].NodeID)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(&s[i])
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Event payloads, in ComfyUI's key order. Timestamps are epoch milliseconds.

// ExecutionStart is execution_start.
type ExecutionStart struct {
	PromptID  string `json:"prompt_id"`
	Timestamp int64  `json:"timestamp"`
}

// ExecutionCached is execution_cached.
type ExecutionCached struct {
	Nodes     []string `json:"nodes"`
	PromptID  string   `json:"prompt_id"`
	Timestamp int64    `json:"timestamp"`
}

// Executing is executing (Node nil = the end-of-prompt message the server sends).
type Executing struct {
	Node        *string `json:"node"`
	DisplayNode *string `json:"display_node,omitempty"`
	PromptID    string  `json:"prompt_id"`
}

// Executed is executed.
type Executed struct {
	Node        string           `json:"node"`
	DisplayNode string           `json:"display_node"`
	Output      map[string][]any `json:"output"`
	PromptID    string           `json:"prompt_id"`
}

// Progress is the legacy progress event.
type Progress struct {
	Value    float64 `json:"value"`
	Max      float64 `json:"max"`
	PromptID string  `json:"prompt_id"`
	Node     string  `json:"node"`
}

// ProgressState is progress_state.
type ProgressState struct {
	PromptID string     `json:"prompt_id"`
	Nodes    NodeStates `json:"nodes"` // marshals as {node_id: state}
}

// NodeState is one node's entry in progress_state.
type NodeState struct {
	Value         float64 `json:"value"`
	Max           float64 `json:"max"`
	State         string  `json:"state"` // running, finished
	NodeID        string  `json:"node_id"`
	PromptID      string  `json:"prompt_id"`
	DisplayNodeID string  `json:"display_node_id"`
	ParentNodeID  *string `json:"parent_node_id"`
	RealNodeID    string  `json:"real_node_id"`
}

// ExecutionSuccess is execution_success.
type ExecutionSuccess struct {
	PromptID  string `json:"prompt_id"`
	Timestamp int64  `json:"timestamp"`
}

// ExecutionError is execution_error (Timestamp 0 = the non-fatal blocker message, which has
// none).
type ExecutionError struct {
	PromptID         string   `json:"prompt_id"`
	NodeID           string   `json:"node_id"`
	NodeType         string   `json:"node_type"`
	Executed         []string `json:"executed"`
	ExceptionMessage string   `json:"exception_message"`
	ExceptionType    string   `json:"exception_type"`
	Traceback        []string `json:"traceback"`
	CurrentInputs    any      `json:"current_inputs"`
	CurrentOutputs   []string `json:"current_outputs"`
	Timestamp        int64    `json:"timestamp,omitempty"`
}

// ExecutionInterrupted is execution_interrupted.
type ExecutionInterrupted struct {
	PromptID  string   `json:"prompt_id"`
	NodeID    string   `json:"node_id"`
	NodeType  string   `json:"node_type"`
	Executed  []string `json:"executed"`
	Timestamp int64    `json:"timestamp"`
}
