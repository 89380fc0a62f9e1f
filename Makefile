# Two commands do all the set-up: `make test` and `make book` (each creates .venv if missing).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXECUTE ?= 0
export EMOLIB_DATA ?= $(abspath ../shared/data)

.PHONY: test test-hands book venv clean-book chromium mutate

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/pins.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/pins.txt -e '.[dev,book,widgets]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

test: $(STAMP) chromium
	$(PY) -m pytest -q
	$(MAKE) test-hands

# MediaPipe 0.10.21 (the extra emolib[hands]) needs numpy<2; the rest of the stack (pandas 3) needs
# numpy 2. So the MediaPipe tests run in a side venv that holds mediapipe and numpy 1.26 and sees
# everything else of .venv after its own packages (site.addsitedir in a .pth file).
HANDS_VENV := .venv-hands
HANDS_STAMP := $(HANDS_VENV)/.installed
HANDS_TESTS := tests/test_hands.py tests/test_pipeline_hands.py tests/test_shipped_gestures.py

$(HANDS_STAMP): $(STAMP)
	test -x $(HANDS_VENV)/bin/python || $(PYTHON) -m venv $(HANDS_VENV)
	$(HANDS_VENV)/bin/python -m pip install -q --upgrade pip
	$(HANDS_VENV)/bin/python -m pip install -q 'mediapipe==0.10.21'
	main=$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	  side=$$($(HANDS_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	  echo "import site; site.addsitedir('$$main')" > $$side/zz-emolib-main-venv.pth
	$(HANDS_VENV)/bin/python -c 'import mediapipe, numpy, emolib, torch; mediapipe.solutions.hands'
	touch $(HANDS_STAMP)

# mediapipe 0.10.21 has wheels for Python 3.9-3.12 only: elsewhere the MediaPipe tests are skipped
# with a message (EMOLIB_REQUIRE_HANDS=1 makes that an error; CI sets it).
test-hands:
	@if $(MAKE) $(HANDS_STAMP); then $(HANDS_VENV)/bin/python -m pytest -q $(HANDS_TESTS); \
	elif [ "$$EMOLIB_REQUIRE_HANDS" = 1 ]; then echo "MediaPipe could not be installed" >&2; exit 1; \
	else echo "MediaPipe tests skipped: mediapipe 0.10.21 could not be installed for $$($(PYTHON) --version)" \
	  "(it has wheels for Python 3.9-3.12)"; fi

# The browser tests need Debian's Chromium: install it where apt can (as root), else they skip.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } \
	  || echo "chromium is not installed: the browser tests will be skipped"

# Mutation check (not part of `make test`; hours on 2 cores for every module): mutmut's score of the
# fast suite per module and an independent set of planted one-line bugs, under results/mutation/.
# `make mutate MODULES="metrics transforms"` runs some modules only.
MODULES ?= data transforms metrics train pipeline hands
mutate: $(STAMP)
	$(PY) -c 'import mutmut' 2>/dev/null || $(PY) -m pip install -q -e '.[mutate]'
	$(PY) benchmarks/mutation.py $(MODULES)
	$(PY) benchmarks/planted_bugs.py

book: $(STAMP)
ifeq ($(EXECUTE),1)
	$(PY) -m emolib.book execute
endif
	$(VENV)/bin/jupyter-book build . --path-output . -W --keep-going

clean-book:
	rm -rf _build
