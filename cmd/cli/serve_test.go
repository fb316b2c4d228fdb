package cli

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

func TestCleanTemp(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := filepath.Join(t.TempDir(), "temp")
	cleanTemp(dir, log) // creates it with the marker
	os.WriteFile(filepath.Join(dir, "ComfyUI_temp_abcde_00001_.png"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	cleanTemp(dir, log)
	if ents, _ := os.ReadDir(dir); len(ents) != 1 || ents[0].Name() != tempMarker {
		t.Fatalf("temp not emptied: %v", ents)
	}
	// A folder comfygo did not create is never wiped.
	user := t.TempDir()
	os.WriteFile(filepath.Join(user, "precious.txt"), []byte("x"), 0o644)
	cleanTemp(user, log)
	if _, err := os.Stat(filepath.Join(user, "precious.txt")); err != nil {
		t.Fatal("a foreign folder was emptied")
	}
}
