# monalisa — two commands do everything from a fresh clone: `make demo` and `make test`
# (`make check`: the fast part of `make test`).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
MPVENV := .venv-mp
BIN := $(VENV)/bin
# Debian packages the test suite drives for real (sshd, systemd's analyzers, debootstrap, Xvfb,
# cec-ctl from v4l-utils).
SYSDEPS := openssh-server openssh-client debootstrap systemd xvfb \
           xauth strace v4l-utils
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo check test test-arm64 test-arm64-single lint typecheck unit docs docs-check bench soak soak-hang \
        frames sysdeps clean clip

$(VENV)/.stamp: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# MediaPipe 0.10.21 (needs numpy<2) in its own venv: the reference the detector is tested against.
$(MPVENV)/.stamp:
	test -x $(MPVENV)/bin/python || $(PYTHON) -m venv $(MPVENV)
	$(MPVENV)/bin/pip install -q 'mediapipe==0.10.21' 'numpy<2' 'scikit-image<0.25'
	touch $@

# Install missing Debian packages (CI runs as root on a clean machine).
sysdeps:
	@missing=""; for p in $(SYSDEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(VENV)/.stamp-test: $(VENV)/.stamp sysdeps
	touch $@

demo: $(VENV)/.stamp
	$(BIN)/monalisa demo

lint: $(VENV)/.stamp
	$(BIN)/ruff check appliance tests benchmarks
	$(BIN)/ruff format --check appliance tests benchmarks

typecheck: $(VENV)/.stamp
	$(BIN)/mypy

unit: $(VENV)/.stamp-test $(MPVENV)/.stamp
	MONALISA_MP_PYTHON=$(abspath $(MPVENV))/bin/python $(BIN)/pytest -q --ignore=tests/test_arm64.py

test: lint typecheck docs-check unit test-arm64-single

# The fast part while working: lint, types and every test but the system tests (pytest marker
# `system`: debootstrapped roots, Ansible deploys, a real sshd, the soak, a minute under strace,
# emulated arm64), on CHECK_WORKERS pytest-xdist workers. `make test` runs everything, as CI does.
CHECK_WORKERS ?= 2
check: lint typecheck $(VENV)/.stamp-test $(MPVENV)/.stamp
	MONALISA_MP_PYTHON=$(abspath $(MPVENV))/bin/python $(BIN)/pytest -q -m 'not system' \
		--ignore=tests/test_arm64.py -n $(CHECK_WORKERS) --durations=10

# The documentation site (mkdocs.yml, docs/). The strict build fails on a broken link or anchor
# or a page left out of the nav; tests/test_configref.py fails on a stale configuration page.
export NO_MKDOCS_2_WARNING := 1
docs-check: $(VENV)/.stamp
	$(BIN)/mkdocs build --strict --quiet

# Serve the site at http://$(DOCS_ADDR), rebuilt on every change.
DOCS_ADDR ?= 127.0.0.1:8000
docs: $(VENV)/.stamp
	$(BIN)/mkdocs serve --dev-addr $(DOCS_ADDR)

# The Pi's platform under qemu: arm64 bookworm and trixie roots provisioned by deploy.yml and
# run (root only; registers qemu-aarch64 with binfmt_misc). Prints each step's time. Up to
# 1.5 h a release: the first deploy under emulation took 12 min (bookworm) to 59 min (trixie).
test-arm64: $(VENV)/.stamp-test
	$(BIN)/pytest -q -s -rA tests/test_arm64.py

# The same roots at the single-process level (no binfmt, no deploy): the release's Python and
# apt's numpy, the appliance run under qemu until health says OK, detection agreeing with x86,
# SDL's KMSDRM. About 5-10 min; part of `make test`.
test-arm64-single: $(VENV)/.stamp-test
	MONALISA_ARM64_LEVEL=single $(BIN)/pytest -q -s -rA tests/test_arm64.py

bench: $(VENV)/.stamp $(MPVENV)/.stamp
	MONALISA_MP_PYTHON=$(abspath $(MPVENV))/bin/python $(BIN)/python benchmarks/detect.py
	$(BIN)/python benchmarks/display.py
	$(BIN)/python benchmarks/framebuild.py
	$(BIN)/python benchmarks/gaze.py
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/render_loop.py
	$(BIN)/python benchmarks/budget.py
	$(BIN)/python benchmarks/schedule.py
	$(BIN)/python benchmarks/startup.py

# Hours of camera frames through the real appliance (about 40 min here): table, plot, JSON in out/soak.
SOAK_FRAMES ?= 500000
soak: $(VENV)/.stamp
	SDL_VIDEODRIVER=dummy $(BIN)/python benchmarks/soak.py --frames $(SOAK_FRAMES) --out out/soak

# The soak's fault mode: the camera's read hangs for 10 s every 3 minutes for 32 minutes; every
# hang must be recovered in the process, with fd/thread/RSS flat (out/soak-hang).
soak-hang: $(VENV)/.stamp
	SDL_VIDEODRIVER=dummy $(BIN)/python benchmarks/soak.py --frames 10000000 --timeout 1920 \
		--every 10000 --warmup 50000 --hang-every 180 --hang-for 10 --out out/soak-hang

# The default frame set: the appliance's portrait is scikit-image's astronaut (NASA, public
# domain). Eye points are given so the build does not depend on the detector's float
# rounding on this CPU: `make frames` reproduces frames/ byte for byte (format version 2, as
# the builder writes it).
FRAMES_COUNT ?= 33
frames: $(VENV)/.stamp
	mkdir -p build
	$(BIN)/python -c "import numpy, skimage.data, PIL.Image; \
	  PIL.Image.fromarray(numpy.ascontiguousarray(skimage.data.astronaut())).save( \
	  'build/astronaut.png', compress_level=6)"
	$(BIN)/monalisa frames build build/astronaut.png --out frames --mode synthesize \
	  --count $(FRAMES_COUNT) --eyes 203,101,246,103 --force
	$(BIN)/monalisa frames check frames

clean:
	rm -rf $(VENV) $(MPVENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache

clip: $(VENV)/.stamp
	$(BIN)/python tests/data/make_demo_clip.py appliance/data/demo
