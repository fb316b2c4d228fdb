# comfygo — see README.md. `make run` sets up and serves; `make test` runs the tests.
GO      ?= go
MODELS  ?= models
ADDR    ?= 127.0.0.1
PORT    ?= 8188
FUZZTIME ?= 20s

export ONNXRUNTIME_LIB ?= $(CURDIR)/third_party/onnxruntime/libonnxruntime.so.1
export COMFYGO_CLIP_VOCAB ?= $(CURDIR)/third_party/clip/bpe_simple_vocab_16e6.js

.PHONY: setup build run test e2e fuzz bench clean

## setup: fetch ONNX Runtime and the CLIP vocabulary (npm), build the web page, Go modules
setup:
	./scripts/setup.sh
	$(GO) mod download

build: setup
	$(GO) build -o comfygo ./cmd/comfygo

## run: set up, generate the bundled tiny models, serve the web page on http://$(ADDR):$(PORT)/
run: build
	./comfygo gen-tiny --models-dir $(MODELS)
	./comfygo serve --listen $(ADDR) --port $(PORT) --models-dir $(MODELS)

## test: the whole test suite (tiny models; golden fixtures from ../shared/golden when present)
test: setup
	$(GO) vet ./...
	$(GO) test -count=1 ./...

## e2e: the page in real headless Chromium (Debian's chromium) against a freshly built comfygo
e2e: setup
	cd web/page && npm test

## fuzz: run every fuzz target for FUZZTIME each
fuzz: setup
	./scripts/fuzz.sh $(FUZZTIME)

bench: setup
	$(GO) test -run '^$$' -bench . -benchtime 1x ./...

clean:
	rm -rf third_party comfygo
