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
	// DisplayName is the default node title (display_name); "" means the class name.
	DisplayName string
}

// SchemaInput is one declared input.
type SchemaInput struct {
	Name                 string
	Type                 string // "INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", or a socket type
	Widget               bool   // a widget type (INT/FLOAT/STRING/BOOLEAN/COMBO) not forced to a socket
	ControlAfterGenerate bool   // the widget is followed by a control value in widgets_values
	Optional             bool

	// NoControlAfterGenerate records an explicit control_after_generate: false. Without it an
	// INT widget named "seed" or "noise_seed" gets a control value (the frontend's legacy rule).
	NoControlAfterGenerate bool
	// ForceInput: a widget type shown as a socket only (forceInput); it takes no
	// widgets_values slot (pre-1.16 files had a dummy value for it, which is dropped).
	ForceInput bool
	// ImageUpload: the input has image_upload (or video/animated-image upload); the frontend
	// adds an "upload" widget after the last required input, which takes a widgets_values slot.
	ImageUpload bool
	// Default is the widget default used when widgets_values is short (nil: the type's zero
	// value; for COMBO the first option).
	Default any
	// Options are the COMBO choices (the first is the default when Default is nil).
	Options []string
	// DynamicPrompts: a STRING widget whose {a|b} groups and comments the frontend resolves
	// when it builds the prompt.
	DynamicPrompts bool
}

// SchemaMap is a Schema backed by a map (tests, tools).
type SchemaMap map[string]*NodeSchema

// NodeSchema implements Schema.
func (m SchemaMap) NodeSchema(classType string) (*NodeSchema, bool) {
	ns, ok := m[classType]
	return ns, ok && ns != nil
}
