# PathReview: `make run` starts the app on the shipped model, `make test` runs the test suite.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PATHREVIEW_DATA ?= ../shared/data/pcam-subset
export PATHREVIEW_DATA
PATHREVIEW_SLIDES ?= ../shared/slides
export PATHREVIEW_SLIDES
PORT ?= 8501

.PHONY: install compile run test test-fast lint bench train clean

$(BIN)/.installed: requirements.txt requirements-app.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

# The app's own modules are compiled once: where PYTHONDONTWRITEBYTECODE is set, every server start would
# otherwise compile them again.
compile: install
	$(BIN)/python -m compileall -q app model_training

run: compile
	$(BIN)/streamlit run app/main.py --server.port $(PORT)

test: install
	$(BIN)/python -m pytest -ra

test-fast: install
	$(BIN)/python -m pytest -ra -m "not slow"

lint: install
	$(BIN)/hadolint Dockerfile

# The app's start-up figure first: after bench_model's TensorFlow run the app's libraries are no longer in the
# page cache, and the first start then measures the disk.
bench: compile
	$(BIN)/python benchmarks/bench_app.py
	$(BIN)/python benchmarks/bench_model.py
	$(BIN)/python benchmarks/bench_slides.py
	$(BIN)/python benchmarks/bench_slides.py --engine onnx-int8
	$(BIN)/python benchmarks/bench_gate.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_quiz.py
	$(BIN)/python benchmarks/bench_deepzoom.py

# Reproduces the shipped model (assets/pathcnn-v6): the network (30 epochs of about 3 minutes on an idle 2-core
# machine), its last layer refitted with hard negatives weighted up and its int8 copy made with activation ranges
# from training tiles (6 minutes), the quality gate, the look head for the slides' second look (5 minutes), and
# the slide-level answer fitted on 1,000 case slides built from the validation split (about 6 minutes).
train: install
	$(BIN)/python -m model_training.cli.train --data $(PATHREVIEW_DATA) --epochs 30 --patience 30 --seed 7 --out runs/pathcnn-e30
	$(BIN)/python -m model_training.cli.refit_head --bundle runs/pathcnn-e30 --data $(PATHREVIEW_DATA) --out assets/pathcnn-v6
	$(BIN)/python -m model_training.cli.fit_gate assets/pathcnn-v6 --data $(PATHREVIEW_DATA) --other-organ $(PATHREVIEW_SLIDES)/CMU-1-Small-Region.svs
	$(BIN)/python -m model_training.cli.fit_look_head assets/pathcnn-v6 --data $(PATHREVIEW_DATA)
	$(BIN)/python -m model_training.cli.slide_level --data $(PATHREVIEW_DATA) --work runs/cases --model assets/pathcnn-v6 --cases 500 --write-card

clean:
	rm -rf $(VENV) .pytest_cache runs
