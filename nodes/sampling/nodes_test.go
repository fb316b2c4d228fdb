package sampling

import (
	"context"
	"errors"
	"image"
	"math"
	"strings"
	"testing"

	"github.com/comfygo/comfygo/internal/models"
	isampling "github.com/comfygo/comfygo/internal/sampling"
	"github.com/comfygo/comfygo/internal/tensor"
	"github.com/comfygo/comfygo/nodes"
)

// fakeModel is an eps model returning 0.1*x; it counts calls and can cancel after n calls.
type fakeModel struct {
	fam      *models.Family
	sampling models.SamplingConfig
	calls    *int
	rows     *[]int
	cancelAt int
	cancel   context.CancelFunc
	patches  models.Patches
}

func newFake() *fakeModel {
	c, r := 0, []int{}
	return &fakeModel{fam: &models.Family{Name: "SD15", LatentChannels: 4, LatentScale: 0.18215, ContextDim: 8,
		LatentRGB: [][3]float32{{0.3, 0.2, 0.2}, {0.2, 0.3, 0.2}, {0.2, 0.2, 0.3}, {-0.2, -0.2, -0.2}}},
		sampling: models.SamplingConfig{Type: "eps"}, calls: &c, rows: &r}
}

func (f *fakeModel) Family() *models.Family          { return f.fam }
func (f *fakeModel) Sampling() models.SamplingConfig { return f.sampling }
func (f *fakeModel) WithSampling(s models.SamplingConfig) models.Model {
	c := *f
	c.sampling = s
	return &c
}
func (f *fakeModel) Keys() []string { return nil }
func (f *fakeModel) WithPatches(p models.Patches) models.Model {
	c := *f
	c.patches = p
	return &c
}
func (f *fakeModel) Apply(ctx context.Context, in models.UNetInput) (*tensor.Tensor, error) {
	*f.calls++
	*f.rows = append(*f.rows, in.X.Shape[0])
	if f.cancelAt > 0 && *f.calls == f.cancelAt {
		f.cancel()
	}
	out := tensor.New(in.X.Shape...)
	for i, v := range in.X.Data {
		out.Data[i] = 0.1 * v
	}
	return out, nil
}

func cond(v float32) nodes.Conditioning {
	c := tensor.New(1, 77, 8)
	for i := range c.Data {
		c.Data[i] = v
	}
	return nodes.Conditioning{{Cond: c, Options: map[string]any{}}}
}

type progress struct {
	n        int
	previews int
}

func (p *progress) Progress(_ string, _, _ float64, img image.Image) {
	p.n++
	if img != nil {
		p.previews++
	}
}

func ksInputs(m models.Model, extra map[string]any) nodes.Inputs {
	in := nodes.Inputs{"model": m, "seed": uint64(math.MaxUint64), "steps": int64(6), "cfg": 1.0,
		"sampler_name": "euler", "scheduler": "karras", "positive": cond(1), "negative": cond(2),
		"latent_image": &nodes.Latent{Samples: tensor.New(1, 4, 8, 8), BatchIndex: []int{0}}, "denoise": 1.0}
	for k, v := range extra {
		in[k] = v
	}
	return in
}

func TestKSamplerNodeInterrupt(t *testing.T) {
	f := newFake()
	c, cancel := context.WithCancel(context.Background())
	f.cancelAt, f.cancel = 2, cancel
	p := &progress{}
	_, err := executeKSampler(&nodes.Context{Context: c, Reporter: p}, ksInputs(f, nil))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted KSampler returned %v", err)
	}
	if *f.calls != 2 {
		t.Errorf("UNet ran %d times after an interrupt during call 2", *f.calls)
	}
}

func TestKSamplerNodeCFGBatchAndProgress(t *testing.T) {
	f := newFake()
	p := &progress{}
	res, err := executeKSampler(&nodes.Context{Context: context.Background(), Reporter: p}, ksInputs(f, map[string]any{"cfg": 7.5}))
	if err != nil {
		t.Fatal(err)
	}
	if *f.calls != 6 || (*f.rows)[0] != 2 {
		t.Errorf("cfg 7.5: %d calls, rows %v (want 6 calls of 2 rows)", *f.calls, *f.rows)
	}
	if p.n != 6 || p.previews != 6 {
		t.Errorf("progress events %d, previews %d; want 6 and 6", p.n, p.previews)
	}
	out := res.Outputs[0].(*nodes.Latent)
	if len(out.BatchIndex) != 1 || out.Samples.Shape[2] != 8 {
		t.Errorf("output latent %+v", out)
	}
	// cfg 1 skips the negative pass
	g := newFake()
	executeKSampler(&nodes.Context{Context: context.Background()}, ksInputs(g, nil))
	if (*g.rows)[0] != 1 {
		t.Errorf("cfg 1: rows %v, want 1 per call", *g.rows)
	}
	// CFG++ samplers evaluate the uncond pass even at cfg 1
	pp := newFake()
	if _, err := executeKSampler(&nodes.Context{Context: context.Background()}, ksInputs(pp, map[string]any{"sampler_name": "euler_cfg_pp"})); err != nil || (*pp.rows)[0] != 2 {
		t.Errorf("euler_cfg_pp at cfg 1: err %v, rows %v (want 2 per call)", err, *pp.rows)
	}
	// unknown sampler: a clear error
	_, err = executeKSampler(&nodes.Context{Context: context.Background()}, ksInputs(newFake(), map[string]any{"sampler_name": "no_such_sampler"}))
	if err == nil || !strings.Contains(err.Error(), "unknown sampler") {
		t.Errorf("unknown sampler: %v", err)
	}
	// wrong conditioning width
	bad := nodes.Conditioning{{Cond: tensor.New(1, 77, 16), Options: map[string]any{}}}
	if _, err := executeKSampler(&nodes.Context{Context: context.Background()}, ksInputs(newFake(), map[string]any{"positive": bad})); err == nil {
		t.Error("mismatched conditioning width accepted")
	}
}

func TestKSamplerAdvancedNode(t *testing.T) {
	f := newFake()
	lat := tensor.New(1, 4, 8, 8)
	for i := range lat.Data {
		lat.Data[i] = 0.5
	}
	in := ksInputs(f, map[string]any{"add_noise": "disable", "noise_seed": uint64(3), "start_at_step": int64(2),
		"end_at_step": int64(4), "return_with_leftover_noise": "enable", "latent_image": &nodes.Latent{Samples: lat}})
	res, err := executeKSamplerAdvanced(&nodes.Context{Context: context.Background()}, in)
	if err != nil {
		t.Fatal(err)
	}
	if *f.calls != 2 {
		t.Errorf("steps 2..4 ran %d UNet calls", *f.calls)
	}
	// start beyond the end returns the input latent unchanged
	in["start_at_step"] = int64(6)
	res, _ = executeKSamplerAdvanced(&nodes.Context{Context: context.Background()}, in)
	if res.Outputs[0].(*nodes.Latent).Samples.Data[0] != 0.5 {
		t.Error("start_at_step >= steps changed the latent")
	}
}

func TestModelSamplingDiscreteNode(t *testing.T) {
	f := newFake()
	res, err := executeModelSamplingDiscrete(&nodes.Context{Context: context.Background()}, nodes.Inputs{"model": f, "sampling": "v_prediction", "zsnr": true})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Outputs[0].(models.Model).Sampling()
	if s.Type != "v_prediction" || !s.ZSNR {
		t.Errorf("sampling %+v", s)
	}
	if f.Sampling().Type != "eps" {
		t.Error("input model was modified")
	}
	if _, err := executeModelSamplingDiscrete(&nodes.Context{Context: context.Background()}, nodes.Inputs{"model": f, "sampling": "bogus"}); err == nil {
		t.Error("unknown sampling accepted")
	}
	// every parameterization runs through the KSampler
	for _, typ := range isampling.Parameterizations {
		r, _ := executeModelSamplingDiscrete(&nodes.Context{Context: context.Background()}, nodes.Inputs{"model": f, "sampling": typ, "zsnr": false})
		if _, err := executeKSampler(&nodes.Context{Context: context.Background()}, ksInputs(r.Outputs[0].(models.Model), nil)); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}

func TestSDXLAdmVector(t *testing.T) {
	fam := &models.Family{Name: "SDXL", AdmChannels: 4 + 6*256}
	pooled := tensor.FromData([]float32{1, 2, 3, 4}, 1, 4)
	y, err := admVector(fam, nodes.CondEntry{Pooled: pooled, Options: map[string]any{"width": int64(1024)}}, 128, 96, "positive")
	if err != nil {
		t.Fatal(err)
	}
	if y.Shape[1] != fam.AdmChannels || y.Data[3] != 4 {
		t.Fatalf("y shape %v", y.Shape)
	}
	// height defaults to latent H*8 = 1024: embedding of 1024 starts at cos(1024*1) for freq 0
	if math.Abs(float64(y.Data[4])-math.Cos(1024)) > 1e-4 {
		t.Errorf("height embedding[0] = %v, want cos(1024) = %v", y.Data[4], math.Cos(1024))
	}
	// width from the options (1024), target_width defaults to width
	if y.Data[4+256] != y.Data[4+5*256] {
		t.Errorf("target_width should default to width")
	}
	if _, err := admVector(fam, nodes.CondEntry{}, 8, 8, "negative"); err == nil {
		t.Error("missing pooled output accepted")
	}
}

// Every sampler and scheduler of the KSampler combos runs through the node.
func TestKSamplerEveryCombo(t *testing.T) {
	for _, smp := range isampling.SamplerNames {
		for _, sch := range isampling.SchedulerNames {
			f := newFake()
			_, err := executeKSampler(&nodes.Context{Context: context.Background()},
				ksInputs(f, map[string]any{"sampler_name": smp, "scheduler": sch, "steps": int64(3), "cfg": 2.0}))
			if err != nil {
				t.Errorf("%s/%s: %v", smp, sch, err)
			}
			if *f.calls == 0 {
				t.Errorf("%s/%s: no UNet call", smp, sch)
			}
		}
	}
}

func TestMaskBounds(t *testing.T) {
	m := tensor.New(1, 32, 32)
	for y := 10; y < 20; y++ {
		for x := 4; x < 6; x++ {
			m.Data[y*32+x] = 0.5
		}
	}
	if got := maskBounds(m); got != [4]int{10, 8, 10, 4} {
		t.Errorf("bounds %v, want [10 8 10 4]", got)
	}
	if got := maskBounds(tensor.New(1, 16, 16)); got != [4]int{8, 8, 0, 0} {
		t.Errorf("empty mask bounds %v", got)
	}
	// through the node: a masked entry with set_area_to_bounds
	f := newFake()
	pos := cond(1)
	pos[0].Options["mask"] = tensor.New(1, 8, 8)
	pos[0].Options["set_area_to_bounds"] = true
	if _, err := executeKSampler(&nodes.Context{Context: context.Background()}, ksInputs(f, map[string]any{"positive": pos})); err != nil {
		t.Fatal(err)
	}
}

func TestPercentageArea(t *testing.T) {
	ms, _ := isampling.NewModelSampling(isampling.Config{})
	fam := &models.Family{Name: "SD15"}
	c := cond(1)
	c[0].Options["area"] = []any{"percentage", 0.5, 0.25, 0.5, 0.0}
	out, err := convertConds(c, fam, []int{1, 4, 64, 32}, ms, "positive")
	if err != nil {
		t.Fatal(err)
	}
	if a := out[0].Area; a == nil || *a != [4]int{32, 8, 32, 0} {
		t.Errorf("percentage area = %v, want [32 8 32 0]", a)
	}
}
