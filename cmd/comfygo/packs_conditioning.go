package main

// The text-encoding and conditioning nodes (CLIPTextEncode, CLIPLoader, ...).
import _ "github.com/comfygo/comfygo/nodes/conditioning"
