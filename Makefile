# fleet.rollout — every target sets up what it needs through scripts/bootstrap.sh
# (Debian packages, pinned virtualenv, dockerd, fleet image), so a fresh
# Debian 12 machine needs nothing but `make demo` or `make test` as root.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD := $(ROOT)/build
# The collection's version, from galaxy.yml alone (the tarball's name and the EE's tag follow it).
COLLECTION_VERSION := $(shell sed -n 's/^version: *//p' $(ROOT)/galaxy.yml)
ARTIFACTS := $(BUILD)/artifacts
COLLECTIONS := $(BUILD)/collections
SANITY_TREE := $(BUILD)/sanity/ansible_collections/fleet/rollout
REPORTS := $(BUILD)/reports
# Scenarios with testinfra tests must each leave a JUnit report with tests in it.
MOLECULE_TESTED := $(patsubst $(ROOT)/molecule/%/tests,%,$(wildcard $(ROOT)/molecule/*/tests))
MOLECULE_SCENARIOS := $(patsubst $(ROOT)/molecule/%/molecule.yml,%,$(wildcard $(ROOT)/molecule/*/molecule.yml))
PYTHON_VERSION := 3.11
SAMPLE_APP_VERSIONS := 1.0.0 2.0.0 2.0.1-bad

# Same defaults as scripts/env.sh; the environment may override both.
FLEET_IMAGE ?= fleet-rollout/debian12:latest
FLEET_VENV ?= $(HOME)/.cache/fleet-rollout/venv-$(shell sha256sum $(ROOT)/requirements.txt | cut -c1-12)
export FLEET_IMAGE FLEET_VENV
export PATH := $(FLEET_VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export FLEET_ARTIFACTS := $(ARTIFACTS)
export ANSIBLE_FORCE_COLOR ?= false
export PY_COLORS ?= 0
# Molecule keeps its state (e.g. "instances created") under a name made from
# the checkout's folder name alone, so a killed run in any checkout called
# "main" would make the next one skip creating the lab. Each checkout keeps
# its own, and every run starts without one.
MOLECULE_STATE := $(BUILD)/molecule
export MOLECULE_EPHEMERAL_DIRECTORY := $(MOLECULE_STATE)

BOOTSTRAP := $(ROOT)/scripts/bootstrap.sh

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# --- set-up -----------------------------------------------------------------
.PHONY: bootstrap bootstrap-nodocker image artifacts collection-links
bootstrap: ## install what is missing: Debian packages, venv, dockerd, fleet image
	@$(BOOTSTRAP)

bootstrap-nodocker:
	@$(BOOTSTRAP) --no-docker

image: bootstrap ## rebuild the fleet image even if it exists
	$(ROOT)/scripts/build_fleet_image.sh

artifacts: ## build the sample-app release tarballs and their sha256
	@python3 $(ROOT)/tools/sample_app/build_release.py --out $(ARTIFACTS) $(SAMPLE_APP_VERSIONS)

collection-links: ## make the collection importable as fleet.rollout from this checkout
	@mkdir -p $(COLLECTIONS)/ansible_collections/fleet
	@ln -sfn $(ROOT) $(COLLECTIONS)/ansible_collections/fleet/rollout

# ansible-test needs the collection at .../ansible_collections/fleet/rollout and
# resolves symlinks, so it runs in a copy of the files git would ship. The copy
# gets its own git repository: otherwise ansible-test lists files through this
# checkout's git, which ignores build/, and finds no targets.
.PHONY: sanity-tree
sanity-tree:
	@rm -rf $(BUILD)/sanity && mkdir -p $(SANITY_TREE)
	@cd $(ROOT) && git ls-files -co --exclude-standard -z | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' \
		| tar --null -T - -cf - | tar -xf - -C $(SANITY_TREE)
	@cd $(SANITY_TREE) && git init -q && git add -A && \
		git -c user.name=sanity -c user.email=sanity@localhost commit -qm tree --no-verify

# --- tests ------------------------------------------------------------------
.PHONY: test sanity units lint changelog-lint collection-build awx-check docs docs-check molecule smoke
# The static checks (CPU and downloads) run beside Molecule, whose time goes
# mostly to waiting on the fleet, at the lowest CPU priority so that the
# fleet's LBs and their loggers are not starved under the tests' traffic.
STATIC_LOG := $(BUILD)/static-checks.log
test: bootstrap artifacts collection-links ## run every test (sanity, units, lint, build check, molecule)
	@rm -rf $(REPORTS) && mkdir -p $(REPORTS)
	@start=$$(date +%s); \
	echo "make test: sanity, units, lint, changelog-lint and collection-build run beside Molecule (output: $(STATIC_LOG))"; \
	( rc=0; nice -n 19 $(MAKE) -k --no-print-directory sanity units lint changelog-lint collection-build awx-check docs-check > $(STATIC_LOG) 2>&1 || rc=$$?; \
	  echo "make test: static checks $$( [ $$rc = 0 ] && echo passed || echo FAILED ) after $$(( $$(date +%s) - start )) s"; \
	  exit $$rc ) & static=$$!; \
	molecule_rc=0; $(MAKE) --no-print-directory molecule || molecule_rc=$$?; \
	static_rc=0; wait $$static || static_rc=$$?; \
	echo "--- static checks ($(STATIC_LOG)) ---"; cat $(STATIC_LOG); echo "--- end of static checks ---"; \
	if [ $$static_rc != 0 ] || [ $$molecule_rc != 0 ]; then \
		echo "--- failed tests ---"; python3 $(ROOT)/scripts/junit_summary.py --failures $(REPORTS)/*.xml || true; \
		echo "make test: FAILED (static checks exit $$static_rc, molecule exit $$molecule_rc) after $$(( $$(date +%s) - start )) s"; exit 1; fi; \
	echo "make test: everything passed in $$(( $$(date +%s) - start )) s"; \
	python3 $(ROOT)/scripts/junit_summary.py --label tests $(REPORTS)/*.xml

sanity: bootstrap-nodocker sanity-tree ## ansible-test sanity
	cd $(SANITY_TREE) && ansible-test sanity --venv --python $(PYTHON_VERSION) --requirements --color no

units: bootstrap-nodocker sanity-tree ## ansible-test units (modules, module_utils, probe, sample app; real haproxy/nginx)
	@# The reports are kept when a test fails too: make test lists the failures at its end.
	cd $(SANITY_TREE) && rc=0; ansible-test units --venv --python $(PYTHON_VERSION) --requirements --color no || rc=$$?; \
		mkdir -p $(REPORTS) && for kind in controller modules module_utils; do \
		cp $(SANITY_TREE)/tests/output/junit/python$(PYTHON_VERSION)-$$kind-units.xml $(REPORTS)/units-$$kind.xml 2>/dev/null || true; done; \
		exit $$rc
	@python3 $(ROOT)/scripts/junit_summary.py --label units $(REPORTS)/units-*.xml

lint: bootstrap-nodocker collection-links ## ansible-lint (production profile) and yamllint
	cd $(ROOT) && ansible-lint --offline

changelog-lint: bootstrap-nodocker ## antsibull-changelog lint on the fragments
	cd $(ROOT) && antsibull-changelog lint

collection-build: bootstrap-nodocker ## build the collection tarball and check what it ships
	@rm -rf $(BUILD)/dist && mkdir -p $(BUILD)/dist
	cd $(ROOT) && ansible-galaxy collection build --force --output-path $(BUILD)/dist >/dev/null
	@# The tarball of galaxy.yml's version, whose MANIFEST.json says that version (what the EE context takes).
	python3 $(ROOT)/scripts/check_collection_tarball.py $(BUILD)/dist/fleet-rollout-$(COLLECTION_VERSION).tar.gz --version $(COLLECTION_VERSION)

docs: bootstrap-nodocker collection-links ## regenerate docs/reference from the modules' and filters' own docs
	cd $(ROOT) && python3 scripts/module_docs.py

docs-check: bootstrap-nodocker collection-links ## fail when docs/reference differs from the plugins' docs
	cd $(ROOT) && python3 scripts/module_docs.py --check

# AWX has no server here: the register playbook is syntax-checked (its
# templates are checked against the playbooks and role specs by the units),
# and the execution environment's build context is generated from the built
# collection, whose EE metadata must be read.
awx-check: bootstrap-nodocker collection-links ee-context ## AWX register playbook syntax, EE build context (ansible-builder create)
	cd $(ROOT) && ansible-playbook awx/register.yml --syntax-check
	@grep -q 'COPY _build/collections/ /tmp/fleet-rollout-collections/' $(BUILD)/ee/Dockerfile
	@grep -q 'python3.11' $(BUILD)/ee/Dockerfile
	@cmp -s $(BUILD)/ee/_build/collections/fleet-rollout.tar.gz $(BUILD)/dist/fleet-rollout-$(COLLECTION_VERSION).tar.gz \
		|| { echo "awx-check: the EE context does not carry build/dist/fleet-rollout-$(COLLECTION_VERSION).tar.gz"; exit 1; }
	@# Into a file first: grep -q stops reading at the first match, and introspect dies of the broken pipe.
	cd $(ROOT) && ansible-builder introspect $(COLLECTIONS) > $(BUILD)/ee/introspect.txt
	@grep -q 'matplotlib.*from collection fleet.rollout' $(BUILD)/ee/introspect.txt
	@echo "awx-check: register playbook, EE build context and collection EE metadata ok"

# Two lanes of scenarios, each on its own lab fleet, run at once (scripts/molecule_lanes.sh) when
# MOLECULE_LANES=2; every scenario with tests must be in one of them. Within a lane the scenarios
# run in name order. The default is 2 lanes from 4 cores up, else 1 (lane A runs every scenario):
# on 2 cores the suite is CPU-bound (the controller's playbooks and dockerd's execs take ~1.2 cores
# with two lanes, the fleet ~0.6), every scenario ran ~1.5x slower beside another, and two lanes
# took 37 min against 43.5 for one, with latency checks made noisy.
MOLECULE_LANE_A := canary faults ramped recreate release smoke
MOLECULE_LANE_B := ab_test blue_green lb_haproxy lb_nginx shadow
MOLECULE_LANES ?= $(shell [ "$$(nproc)" -ge 4 ] && echo 2 || echo 1)
molecule: bootstrap artifacts collection-links ## every Molecule scenario (MOLECULE_LANES=2: in two lanes on two lab fleets at once)
	@missing="$(filter-out default $(MOLECULE_LANE_A) $(MOLECULE_LANE_B),$(MOLECULE_SCENARIOS))"; \
		if [ -n "$$missing" ]; then echo "molecule: scenarios in no lane (MOLECULE_LANE_A/B): $$missing"; exit 1; fi
	@mkdir -p $(REPORTS) && rm -f $(REPORTS)/molecule-*.xml
	cd $(ROOT) && if [ "$(MOLECULE_LANES)" = 2 ]; then \
		scripts/molecule_lanes.sh $(MOLECULE_STATE) "$(MOLECULE_LANE_A)" "$(MOLECULE_LANE_B)"; \
	else scripts/molecule_lanes.sh $(MOLECULE_STATE) "$(sort $(MOLECULE_LANE_A) $(MOLECULE_LANE_B))"; fi
	@python3 $(ROOT)/scripts/junit_summary.py --label molecule $(foreach s,$(MOLECULE_TESTED),$(REPORTS)/molecule-$(s).xml)

smoke: bootstrap artifacts collection-links ## the smoke scenario alone
	@mkdir -p $(REPORTS)
	@rm -rf $(MOLECULE_STATE)
	cd $(ROOT) && molecule test -s smoke --shared-state
	@python3 $(ROOT)/scripts/junit_summary.py --label smoke $(REPORTS)/molecule-smoke.xml

# The EE's build context from the tarball of galaxy.yml's version (collection-build refuses one that is
# missing or says another version in its MANIFEST.json: an EE of a stale build).
.PHONY: ee-context ee
ee-context: bootstrap-nodocker collection-build
	@rm -rf $(BUILD)/ee $(BUILD)/ee-collection && mkdir -p $(BUILD)/ee-collection
	cp $(BUILD)/dist/fleet-rollout-$(COLLECTION_VERSION).tar.gz $(BUILD)/ee-collection/fleet-rollout.tar.gz
	cd $(ROOT) && ansible-builder create -f execution-environment.yml --context $(BUILD)/ee

ee: ee-context ## build the execution environment image fleet-rollout-ee:<version> (needs docker or podman and quay.io)
	cd $(ROOT) && ansible-builder build -f execution-environment.yml --context $(BUILD)/ee \
		--container-runtime $$(command -v podman >/dev/null && echo podman || echo docker) -t fleet-rollout-ee:$(COLLECTION_VERSION)

# --- benchmarks ---------------------------------------------------------------
.PHONY: bench bench-lb bench-strategies
bench: bench-lb bench-strategies ## every benchmark; the tables go to bench/results.md and docs/benchmarks.md

bench-lb: bootstrap-nodocker collection-links ## 50 servers drained+readied: haproxy_server vs community.general.haproxy
	cd $(ROOT) && python3 bench/bench_lb.py --servers 50 --out $(BUILD)/bench-lb.json

# BENCH_ARGS, e.g. "--only canary --lbs nginx --skip-scaling", runs a part; "--peer-runs 5" runs each side
# of the peer comparison five times (default 3).
bench-strategies: bootstrap artifacts collection-links lab-up ## each strategy's rollout and rollback under 100 req/s, ramped vs the plain rolling playbook (3 runs each), ramped over 4/8/16 hosts
	cd $(ROOT) && python3 bench/bench_strategies.py --out bench/results.json $(BENCH_ARGS)

# --- the lab ----------------------------------------------------------------
.PHONY: lab-up lab-down demo
lab-up: bootstrap collection-links ## create (or reuse) the lab fleet containers
	cd $(ROOT) && ansible-playbook playbooks/lab_up.yml

lab-down: bootstrap-nodocker collection-links ## remove the lab fleet
	cd $(ROOT) && ansible-playbook playbooks/lab_down.yml

demo: bootstrap artifacts collection-links lab-up ## lab fleet, sample app 1.0.0 behind two HAProxy LBs, then a canary of 2.0.0 under live traffic, then the status and the report
	cd $(ROOT) && ansible-playbook tools/lab/stack.yml -e sample_app_version=1.0.0
	@rm -rf $(BUILD)/rollout-reports
	cd $(ROOT) && ansible-playbook tools/lab/demo.yml -e rollout_report_dir=$(BUILD)/rollout-reports
	@python3 $(ROOT)/tools/probe/rollout_probe.py summarize $(BUILD)/probe/demo.jsonl
	@cd $(ROOT) && \
		ansible-playbook fleet.rollout.status -i inventories/lab -e rollout_status_json=$(BUILD)/status.json
	@echo "the rollout's report: $$(ls $(BUILD)/rollout-reports/*.md) (with its .json and .png timeline)"
	@echo "users' requests: $(BUILD)/probe/demo.jsonl   status: $(BUILD)/status.json   fleet: docker ps --filter label=org.fleet-rollout.lab"

# --- maintenance ------------------------------------------------------------
.PHONY: lock clean
lock: ## regenerate requirements.txt from requirements.in
	@tmp=$$(mktemp -d) && python3 -m venv $$tmp && $$tmp/bin/pip install -q --upgrade 'pip>=24' \
		&& $$tmp/bin/pip install -q -r $(ROOT)/requirements.in \
		&& { echo "# Full lock of requirements.in (regenerate with: make lock). Installed by scripts/bootstrap.sh."; \
		     $$tmp/bin/pip freeze --exclude pip --exclude setuptools --exclude wheel; } > $(ROOT)/requirements.txt \
		&& rm -rf $$tmp

clean: ## remove build output (not the venv, the image or the lab fleet)
	rm -rf $(BUILD) $(ROOT)/tests/output
