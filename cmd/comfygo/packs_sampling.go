package main

// The sampling nodes (KSampler, KSamplerAdvanced, ModelSamplingDiscrete, LoraLoader, ...).
import _ "github.com/comfygo/comfygo/nodes/sampling"
