// Package onnx builds ONNX models (ModelProto, IR 8, ai.onnx opset 17 + com.microsoft opset 1)
// in pure Go, with a hand-written protobuf encoder. Network code reads like the network:
//
//	g := onnx.NewGraph("unet")
//	x := g.Input("x", onnx.Float, onnx.Dim("batch"), 4, onnx.Dim("h"), onnx.Dim("w"))
//	w := g.Weight(ckpt, "model.diffusion_model.input_blocks.0.0.weight") // external data, fp32
//	b := g.Weight(ckpt, "model.diffusion_model.input_blocks.0.0.bias")
//	h := g.Conv(x, w, b, onnx.Attrs{"pads": []int64{1, 1, 1, 1}})
//	h = g.SiLU(g.GroupNorm(h, 32, gamma, beta, 1e-5))
//	g.Output(h, "out")
//	m, err := g.Model()        // first builder error, if any, surfaces here
//	m.SetDims(map[string]int64{"batch": 2, "h": 128, "w": 128}) // optional static shapes
//	data, err := m.Bytes()     // or ort.Runtime.NewSession(m)
//
// Weights. InitializerFromSafetensors adds a tensor as an EXTERNAL-data initializer pointing
// into the original .safetensors file (location relative to Model.ExternalDir, offset = the
// tensor's absolute file offset, length = its size): nothing is copied into the proto. Weight
// does the same and, when the stored dtype differs from the graph's compute type (SetComputeType,
// Float by default), adds a Cast; ORT constant-folds the Cast once at session creation, so an
// F16/BF16 checkpoint runs as fp32 on CPU (the CPU EP has no fast fp16 kernels). The external
// folder defaults to the folder of the first file used; with files in several folders (a
// checkpoint plus a LoRA) call SetExternalDir with a common parent — ORT 1.30 accepts locations
// in subfolders of that folder, but none outside it.
//
// Linear layers: use Linear (com.microsoft FusedMatMul with transB=1, CPU and CUDA kernels) or
// Gemm(transB=1) on 2-D input, never MatMul(x, Transpose(W)): ORT folds that Transpose into a
// second full-size copy at load. Measured with 1 GiB of fp32 weights read from an F16 file
// (BenchmarkOpenSession1GB; 2-core AMD EPYC shared with other jobs, load average 6–9, ORT 1.30
// CPU; times vary ±2×): FusedMatMul 2.0–2.2 s session open, peak RSS 1.10× the weights;
// MatMul+Transpose 4.2–13.2 s, 2.10×.
//
// Derived weights (LoRA merges): AddLowRank(W, up, down, scale, shape) writes W + scale·up·down as
// one Gemm over constant initializers; ORT folds it once at session creation into a single merged
// fp32 tensor (steady state = the plain model's memory). Measured on the same 1 GiB model with a
// rank-64 LoRA on every layer: open 3.7–7.2 s (vs ~2 s without LoRA), transient peak 2.14× (ORT
// keeps the folded Casts until the folding pass ends), steady RSS 1.0×. Alternatives measured:
// Add(W, MatMul(Mul(up,s), down)) 5.0–7.5 s, 3.22×; merging in Go (plain loops, 10 s) and passing
// the merged weights as raw data in the proto (InitializerFromTensor): +7 s open, 6.9–7.6× —
// don't, for big models; merging in Go into a temporary F32 safetensors used as external data:
// 12 s merge+write, 1.0 s open, 2.9× as written in the benchmark (≈1.1× if streamed layer by
// layer). Choice: AddLowRank in-graph. InitializerFromTensor / InitializerRaw (data inside the
// proto, copied; the proto must stay below 2 GiB) are for small tensors.
//
// Ops: Add Sub Mul Div Pow MatMul Neg Exp Sin Cos Sqrt Erf Tanh Sigmoid Identity Shape Softmax
// Cast Reshape ReshapeTo Transpose Concat Split Slice Unsqueeze Squeeze Gather ReduceMean Conv
// Gemm Linear LayerNorm GroupNorm GroupNormRank Gelu GeluTanh QuickGelu SiLU ResizeNearest
// Resize MultiHeadAttention (com.microsoft; float only on CPU) AttentionPlain; anything else via
// Op / Op1 / OpDomain. Constants: ConstInt64, ConstFloat, Scalar, ScalarFloat, Const.
//
// Builder methods do not return errors; the first one is kept and returned by Model (and Err).
// Value names are made unique automatically; Input/Output names must be unique.
package onnx
