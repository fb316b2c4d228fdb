package tokenizer

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/comfygo/comfygo/internal/tensor"
)

// The testdata .pt/.bin files were written in torch.save's zip format by a small Python script
// with stand-ins for the torch globals (no torch needed): an A1111 embedding (fp16, storage
// offset 5), a diffusers learned_embeds.bin (1-D float32) and a strided 2-D view.
func TestTorchEmbeddings(t *testing.T) {
	e, err := LoadEmbeddingFile("testdata/a1111emb.pt")
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.Select("clip_l")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Shape, []int{2, 48}) {
		t.Fatalf("a1111 shape %v", p.Shape)
	}
	for i, v := range p.Data {
		if want := float32((i%13)-6) / 8; v != want {
			t.Fatalf("a1111[%d] = %v, want %v", i, v, want)
		}
	}
	e, err = LoadEmbeddingFile("testdata/learned_embeds.bin")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ = e.Select("clip_l"); !reflect.DeepEqual(p.Shape, []int{48}) || p.Data[47] != 0.47 {
		t.Fatalf("diffusers: %v %v", p.Shape, p.Data[47])
	}
	e, err = LoadEmbeddingFile("testdata/strided.pt")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ = e.Select("clip_l"); !reflect.DeepEqual(p.Data, []float32{1, 4, 2, 5, 3, 6}) {
		t.Fatalf("strided: %v", p.Data)
	}
	// Through the tokenizer: two vectors at the prompt's weight.
	dir := t.TempDir()
	raw, _ := os.ReadFile("testdata/a1111emb.pt")
	if err := os.WriteFile(filepath.Join(dir, "a1111emb.pt"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	tk := &Tokenizer{Words: idWords{}, Pad: EOS, Embeddings: NewEmbeddings([]string{dir}).Lookup("clip_l")}
	c := tk.Tokenize("(embedding:a1111emb:1.1)").Chunks[0]
	if len(c[1].Embed) != 48 || len(c[2].Embed) != 48 || c[2].Weight != 1.1 || c[3].ID != EOS {
		t.Fatalf("tokenized: %v", c.IDs()[:4])
	}
}

func zipWith(t testing.TB, pkl []byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("x/data.pkl")
	w.Write(pkl)
	zw.Close()
	return buf.Bytes()
}

func TestTorchPickleRefusesCode(t *testing.T) {
	// pickle of os.system("echo pwned")
	evil := []byte("\x80\x02cos\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.")
	if _, err := loadTorchZip(zipWith(t, evil)); err == nil || !strings.Contains(err.Error(), "refusing global os.system") {
		t.Fatalf("evil pickle: %v", err)
	}
	if _, err := loadTorchZip([]byte("not a zip")); err == nil {
		t.Fatal("non-zip accepted")
	}
}

func FuzzTorchPickle(f *testing.F) {
	for _, name := range []string{"testdata/a1111emb.pt", "testdata/learned_embeds.bin", "testdata/strided.pt"} {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		zr, _ := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
		for _, zf := range zr.File {
			if strings.HasSuffix(zf.Name, "data.pkl") {
				rc, _ := zf.Open()
				var b bytes.Buffer
				b.ReadFrom(rc)
				f.Add(b.Bytes())
			}
		}
	}
	f.Fuzz(func(t *testing.T, pkl []byte) {
		u := &unpickler{code: pkl, memo: map[int]any{}, storage: func(string) ([]byte, error) {
			return make([]byte, 64), nil
		}}
		obj, err := u.run()
		if err != nil {
			return
		}
		if e, err := embeddingFromPickle(obj); err == nil {
			if t0, err := e.Select("clip_l"); err == nil && t0.Len() != tensor.Numel(t0.Shape) {
				t.Fatalf("tensor size mismatch")
			}
		}
	})
}
