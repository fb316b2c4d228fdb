package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.png")
	if err := WriteFileAtomic(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("got %q", b)
	}
	// A symlink at the target is replaced, not followed.
	outside := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(outside, []byte("keep"), 0o644)
	l := filepath.Join(dir, "l.png")
	os.Symlink(outside, l)
	if err := WriteFileAtomic(l, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Fatalf("symlink followed: %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("temp files left: %v", ents)
	}
	if err := CreateExclusiveAtomic(p, []byte("x"), 0o644); !errors.Is(err, os.ErrExist) {
		t.Fatalf("exclusive over existing: %v", err)
	}
	if err := CreateExclusiveAtomic(filepath.Join(dir, "b.png"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}
