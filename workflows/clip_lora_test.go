package workflows

import (
	"bytes"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/comfygo/comfygo/graph"
	"github.com/comfygo/comfygo/internal/safetensors"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

var (
	capMu  sync.Mutex
	capped = map[string]nodes.Conditioning{}
)

func init() {
	nodes.Register(&nodes.Def{Name: "XCaptureCond", OutputNode: true, Category: "testing",
		Required: []nodes.Input{{Name: "conditioning", Type: nodes.TypeCond}, {Name: "tag", Type: nodes.TypeString}},
		Execute: func(ctx *nodes.Context, in nodes.Inputs) (nodes.Result, error) {
			capMu.Lock()
			capped[in.String("tag")] = in["conditioning"].(nodes.Conditioning)
			capMu.Unlock()
			return nodes.Result{UI: map[string][]any{"text": {"ok"}}}, nil
		}})
}

// TestCLIPLoRA loads a kohya text-encoder LoRA (lora_te_ names) through LoraLoader and checks
// that it patches the text encoder and that unknown keys are reported.
func TestCLIPLoRA(t *testing.T) {
	h := newHarness(t)
	var logBuf bytes.Buffer
	h.env.Log = slog.New(slog.NewTextHandler(&logBuf, nil))
	ck, err := safetensors.Open(filepath.Join(tinyModels(t), "checkpoints", "tiny-sd15.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	info, ok := ck.Info("cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight")
	ck.Close()
	if !ok {
		t.Fatal("tiny-sd15 has no CLIP fc1 weight")
	}
	out, in := info.Shape[0], info.Shape[1]
	up, down := tensor.New(out, 2), tensor.New(2, in)
	for i := range up.Data {
		up.Data[i] = float32(math.Sin(float64(i)))
	}
	for i := range down.Data {
		down.Data[i] = float32(math.Cos(float64(i)))
	}
	loraDir := filepath.Join(tinyModels(t), "loras")
	if err := safetensors.WriteFloat32(filepath.Join(loraDir, "test-te-lora.safetensors"), map[string]*tensor.Tensor{
		"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight":   up,
		"lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": down,
		"lora_te_text_model_encoder_layers_0_mlp_fc1.alpha":            tensor.FromData([]float32{2}),
		"lora_te_text_model_encoder_layers_0_bogus.lora_up.weight":     up,
	}, safetensors.F32, nil); err != nil {
		t.Fatal(err)
	}
	prompt := func(sc string) *graph.Prompt {
		p, err := graph.ParsePrompt([]byte(`{
		"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "tiny-sd15.safetensors"}},
		"2": {"class_type": "LoraLoader", "inputs": {"model": ["1", 0], "clip": ["1", 1], "lora_name": "test-te-lora.safetensors", "strength_model": 0.0, "strength_clip": ` + sc + `}},
		"3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 1], "text": "a photo of a cat"}},
		"4": {"class_type": "XCaptureCond", "inputs": {"conditioning": ["3", 0], "tag": "s` + sc + `"}}}`))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	h.run(t, "clip0", prompt("0.0"))
	h.run(t, "clip1", prompt("1.0"))
	a, b := capped["s0.0"][0].Cond, capped["s1.0"][0].Cond
	diff := 0.0
	for i := range a.Data {
		diff = math.Max(diff, math.Abs(float64(a.Data[i]-b.Data[i])))
	}
	if diff < 1e-3 {
		t.Errorf("text-encoder LoRA changed the conditioning by only %g", diff)
	}
	logs := logBuf.String()
	if !strings.Contains(logs, "lora key not loaded: lora_te_text_model_encoder_layers_0_bogus.lora_up.weight") {
		t.Errorf("missing not-loaded warning; logs:\n%s", logs)
	}
	if !strings.Contains(logs, "clip_weights=1") {
		t.Errorf("expected one patched CLIP weight; logs:\n%s", logs)
	}
}
