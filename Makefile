# The two set-up commands of the README: `make demo` and `make test`.
# Both create the virtual environment on first use; installs follow constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUTPUT ?= output/demo

.PHONY: demo test venv clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

demo: venv
	$(BIN)/python tools/run_demo.py --output-dir $(DEMO_OUTPUT)

test: venv
	$(BIN)/python -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
