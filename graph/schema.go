package graph

// Schema tells the UI→API converter what the backend knows of each node type: which inputs are
// widgets (and so consume widgets_values), in which order, and which carry a
// control_after_generate value. The node registry implements it (nodes.Schema).
type Schema interface {
	NodeSchema(classType string) (*NodeSchema, bool)
}

// NodeSchema is the part of a node type's definition the converter needs.
type NodeSchema struct {
	Inputs     []SchemaInput // required then optional, in declaration order
	Outputs    []string      // output types
	OutputNode bool
}

// SchemaInput is one declared input.
type SchemaInput struct {
	Name                 string
	Type                 string // "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", or a socket type
	Widget               bool   // a widget type (INT/FLOAT/STRING/BOOLEAN/COMBO) not forced to a socket
	ControlAfterGenerate bool   // the widget is followed by a control value in widgets_values
	Optional             bool
}
