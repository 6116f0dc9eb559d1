# The two set-up commands of the README: `make demo` and `make test`.
# Both create the virtual environment on first use; installs follow constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUTPUT ?= output/demo
# Where the built-in datasets live (segdet reads $$SEGDET_DATASETS, default ./datasets).
DATASETS_ROOT := $(or $(SEGDET_DATASETS),datasets)

.PHONY: demo test venv clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# Train the quickstart config on the demo dataset (generated on first use under datasets/demo_fruit),
# evaluate it on demo_fruit_val and demo_fruit_test, predict the test images, draw the results and
# write the evaluation report (one HTML page).
demo: venv
	$(BIN)/python tools/train_net.py --config-file configs/demo/quickstart.yaml OUTPUT_DIR $(DEMO_OUTPUT)
	$(BIN)/python tools/predict.py --weights $(DEMO_OUTPUT)/model_final.pth \
		--input $(DATASETS_ROOT)/demo_fruit/images/test --output $(DEMO_OUTPUT)/predictions
	$(BIN)/python tools/visualize.py predictions --pred $(DEMO_OUTPUT)/predictions --dataset demo_fruit_test \
		--output $(DEMO_OUTPUT)/pictures/predictions
	$(BIN)/python tools/visualize.py evaluation --results $(DEMO_OUTPUT)/inference/demo_fruit_test/results.json \
		--output $(DEMO_OUTPUT)/pictures/evaluation
	$(BIN)/python tools/visualize.py metrics --metrics $(DEMO_OUTPUT)/metrics.json \
		--output $(DEMO_OUTPUT)/pictures/training_curves.png
	$(BIN)/python tools/report.py --results $(DEMO_OUTPUT)/inference/demo_fruit_test/results.json \
		--metrics $(DEMO_OUTPUT)/metrics.json --pred $(DEMO_OUTPUT)/predictions --dataset demo_fruit_test \
		--output $(DEMO_OUTPUT)/report.html
	@echo
	@echo "Demo done. Where things are:"
	@echo "  model                    $(DEMO_OUTPUT)/model_final.pth"
	@echo "  evaluation (JSON)        $(DEMO_OUTPUT)/inference/demo_fruit_test/results.json"
	@echo "  training metrics         $(DEMO_OUTPUT)/metrics.json"
	@echo "  predictions + overlays   $(DEMO_OUTPUT)/predictions/"
	@echo "  pictures                 $(DEMO_OUTPUT)/pictures/ (predictions/, evaluation/, training_curves.png)"
	@echo "  evaluation report        $(DEMO_OUTPUT)/report.html (open it in a browser)"

# The layer rules (.importlinter), then the tests.
test: venv
	$(BIN)/lint-imports --no-logo
	$(BIN)/python -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
