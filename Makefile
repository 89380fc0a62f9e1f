# Two commands do all the set-up: `make test` and `make book` (each creates .venv if missing).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXECUTE ?= 0
export EMOLIB_DATA ?= $(abspath ../shared/data)

.PHONY: test book venv clean-book chromium web-deps mutate

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/pins.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/pins.txt -e '.[dev,book,widgets,hands]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

test: $(STAMP) chromium web-deps
	$(PY) -m pytest -q

# The browser tests need Debian's Chromium: install it where apt can (as root), else they skip.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } \
	  || echo "chromium is not installed: the browser tests will be skipped"

# Mutation check (not part of `make test`; hours on 2 cores for every module): mutmut's score of the
# fast suite per module and an independent set of planted one-line bugs, under results/mutation/.
# `make mutate MODULES="metrics transforms"` runs some modules only; MUTATE_TESTS=own runs each module
# against its own test files (benchmarks/mutation.py TESTS: a lower bound, minutes a module), fast against
# the whole fast suite. Run at the lowest priority, so that it stays out of other timings.
# `make mutate SAMPLE=40` runs 40 mutants of each module drawn at random (seed SEED, default 17) instead of
# all of them: a sampled estimate with a 95 % interval, in results/mutation/sample/ (about an hour on 2 cores).
MODULES ?= metrics labels transforms data fileio video faces pipeline train hands
MUTATE_TESTS ?= own
SEED ?= 17
mutate: $(STAMP)
	$(PY) -c 'import mutmut' 2>/dev/null || $(PY) -m pip install -q -e '.[mutate]'
	nice -n 19 $(PY) benchmarks/mutation.py --tests $(MUTATE_TESTS) $(if $(SAMPLE),--sample $(SAMPLE) --seed $(SEED)) \
	  $(MODULES)
	$(PY) benchmarks/planted_bugs.py

book: $(STAMP) web/node_modules/.package-lock.json
ifeq ($(EXECUTE),1)
	$(PY) -m emolib.book execute
endif
	$(VENV)/bin/jupyter-book build . --path-output . -W --keep-going
	$(PY) -m emolib.livepage stage _build/html/_static/live

# The live page's runtime (onnxruntime-web, pinned by web/package-lock.json); the book's build copies its
# WebAssembly files into _build/html/_static/live/ort (python -m emolib.livepage stage).
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund

# For make test: the live page's browser test skips (saying why) where npm is missing.
web-deps:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) -s web/node_modules/.package-lock.json; \
	else echo "npm is not installed: the live page's browser test will be skipped"; fi

clean-book:
	rm -rf _build
