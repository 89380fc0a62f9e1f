# Two commands do all the set-up: `make test` and `make book` (each creates .venv if missing).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXECUTE ?= 0
export EMOLIB_DATA ?= $(abspath ../shared/data)

.PHONY: test book venv clean-book chromium

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/pins.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/pins.txt -e '.[dev,book,widgets,hands]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

test: $(STAMP) chromium
	$(PY) -m pytest -q

# The browser tests need Debian's Chromium: install it where apt can (as root), else they skip.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } \
	  || echo "chromium is not installed: the browser tests will be skipped"

book: $(STAMP)
ifeq ($(EXECUTE),1)
	$(PY) -m emolib.book execute
endif
	$(VENV)/bin/jupyter-book build . --path-output . -W --keep-going

clean-book:
	rm -rf _build
