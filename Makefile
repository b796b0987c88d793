# npnet: `make train` and `make test` each set up .venv by themselves on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CONFIG ?= configs/cnn.yaml

.DEFAULT_GOAL := help
.PHONY: help venv train test lint format bench torch clean sweep classics

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_.-]+:.*?## ' $(MAKEFILE_LIST) | awk -F ':.*?## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# The stamp is rebuilt whenever pyproject.toml changes, so new dependencies get installed.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --editable '.[dev,plot,export,sweep,serve]'
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install npnet (editable) with its dev, plot, export, sweep and serve extras

train: $(STAMP)  ## train the default config (CONFIG=configs/cnn.yaml) on real MNIST
	$(BIN)/npnet train $(CONFIG)

test: lint  ## lint, then run the whole test suite
	$(BIN)/python -m pytest

sweep: $(STAMP)  ## a real Optuna sweep: the MLP's learning rate and width on MNIST (docs/sweeps.md)
	$(BIN)/npnet sweep configs/sweeps/mlp.yaml --workers 2
	$(BIN)/npnet plot $$(ls -d runs/sweeps/*-mlp-search | tail -n 1)

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)  ## npnet vs PyTorch (if installed): MLP, CNN, LeNet-5, then the CNN at batch 16-512 (LOAD=1: one core kept busy)
	$(BIN)/python benchmarks/bench.py $(if $(LOAD),--load)
	$(BIN)/python benchmarks/scaling.py $(if $(LOAD),--load)

.PHONY: photos
photos: $(STAMP)  ## npnet predict on 1,000 MNIST test digits made into photos (RUN=... or the newest cnn run)
	$(BIN)/python benchmarks/predict_photos.py $(or $(RUN),$(call last_run,cnn))

torch: $(STAMP)  ## install the CPU PyTorch the reference tests compare against
	$(BIN)/python -m pip install --quiet torch==2.13.0

clean:  ## remove the virtualenv and caches (never runs/ or data/)
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info

# --- The tutorial series, chapter by chapter (docs/chapters.md): only the npnet CLI. ------
# Training chapters write run directories under runs/; `last_run,NAME` is the newest run
# of config NAME there (run directories are named <YYYYmmdd-HHMMSS>-<name>, so the last in
# sorted order is the newest).
NPNET := $(BIN)/npnet
last_run = $$(ls -d runs/*-$(1) | tail -n 1)
CHAPTERS := ch1.1 ch1.2 ch1.3 ch2.1 ch2.2 ch2.3 ch2.4 ch3.1 ch3.2 ch3.3 ch3.4 ch4.1 ch4.2 ch4.3 ch4.4 ch4.5
.PHONY: chapters $(CHAPTERS)

chapters: $(CHAPTERS)  ## run every chapter of the series in order (about 30 minutes)

ch1.1: $(STAMP)  ## 1.1 NumPy arrays: MNIST as arrays, before and after normalization
	$(NPNET) data configs/ch11-arrays.yaml

ch1.2: $(STAMP)  ## 1.2 matrix operations: Z = X W + b, shapes, parameters and FLOPs
	$(NPNET) summary configs/ch12-matrix.yaml

ch1.3: $(STAMP)  ## 1.3 activations and their derivatives, checked numerically
	$(NPNET) activations

ch2.1: $(STAMP)  ## 2.1 loss functions: MSE, binary and categorical cross-entropy
	$(NPNET) losses

ch2.2: $(STAMP)  ## 2.2 gradient descent recovers the true weights of synthetic data
	$(NPNET) descent configs/ch22-gradient-descent.yaml

ch2.3: $(STAMP)  ## 2.3 mini-batch gradient descent: batch size vs speed and noise
	$(NPNET) descent configs/ch23-mini-batch.yaml --batch-size 1 --batch-size 10 --batch-size 100 --batch-size 1000

ch2.4: $(STAMP)  ## 2.4 numerical gradients: backprop vs central differences (1e-7)
	$(NPNET) gradcheck configs/ch24-gradcheck.yaml --tolerance 1e-7

ch3.1: $(STAMP)  ## 3.1 single-layer perceptron: softmax regression on MNIST
	$(NPNET) train configs/ch31-softmax-regression.yaml

ch3.2: $(STAMP)  ## 3.2 activation functions in a network: sigmoid, tanh, ReLU
	$(NPNET) train configs/ch32-activations.yaml --set name=ch32-sigmoid
	$(NPNET) train configs/ch32-activations.yaml --set name=ch32-tanh --set 'model.layers[2]=tanh'
	$(NPNET) train configs/ch32-activations.yaml --set name=ch32-relu --set 'model.layers[2]=relu'
	$(NPNET) plot $(call last_run,ch32-sigmoid) $(call last_run,ch32-tanh) $(call last_run,ch32-relu) --out runs/ch3.2-figures

ch3.3: $(STAMP)  ## 3.3 MLP forward propagation, layer by layer
	$(NPNET) summary configs/ch34-mlp.yaml

ch3.4: $(STAMP)  ## 3.4 backpropagation: train a 2-layer MLP on MNIST
	$(NPNET) train configs/ch34-mlp.yaml

ch4.1: $(STAMP)  ## 4.1 deeper MLPs: vanishing gradients, sigmoid vs ReLU
	$(NPNET) train configs/ch41-deep-sigmoid.yaml
	$(NPNET) train configs/ch41-deep-relu.yaml
	$(NPNET) gradnorms $(call last_run,ch41-deep-sigmoid)
	$(NPNET) gradnorms $(call last_run,ch41-deep-relu)
	$(NPNET) plot $(call last_run,ch41-deep-sigmoid)
	$(NPNET) plot $(call last_run,ch41-deep-relu)

ch4.2: $(STAMP)  ## 4.2 convolutional layers: filters and feature maps
	$(NPNET) train configs/ch42-conv.yaml
	$(NPNET) features $(call last_run,ch42-conv)
	$(NPNET) plot $(call last_run,ch42-conv)

ch4.3: $(STAMP)  ## 4.3 pooling and a full CNN on MNIST
	$(NPNET) train configs/ch43-cnn.yaml

ch4.4: $(STAMP)  ## 4.4 regularization: dropout and L2 shrink the generalization gap
	$(NPNET) train configs/ch44-baseline.yaml
	$(NPNET) train configs/ch44-regularized.yaml
	$(NPNET) runs compare $(call last_run,ch44-baseline) $(call last_run,ch44-regularized)

ch4.5: $(STAMP)  ## 4.5 advanced optimization, the capstone: the best CNN
	$(NPNET) train configs/ch45-capstone.yaml
	$(NPNET) eval $(call last_run,ch45-capstone)

# --- The published MNIST results, reproduced (docs/classics.md): one run of each recipe. ---
CLASSICS := nielsen-network1 nielsen-network2 lecun98-mlp-300 lecun98-mlp-300-100 \
	lecun98-lenet5 simard03-mlp-800 simard03-cnn-elastic

classics: $(STAMP)  ## train every recipe of configs/classics/ in turn, then list the runs
	for name in $(CLASSICS); do $(NPNET) train configs/classics/$$name.yaml || exit 1; done
	$(NPNET) runs
