package main

// The Stable Diffusion model nodes (CheckpointLoaderSimple, VAELoader, VAEDecode, ...).
import _ "github.com/comfygo/comfygo/nodes/sd"
