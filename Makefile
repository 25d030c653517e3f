# The two commands a new user needs:  `make demo` (install + main job)  and  `make test`.
PY := .venv/bin/python
export PYTHONUNBUFFERED := 1

.PHONY: targets demo install lint test test-unit test-integration up protos check-protos lint-protos check-breaking feast-apply compose-native clean bench-quality bench-quality-full bench-freshness bench-lifelong bench-step-cost bench-fusion bench-fusion-served bench-rank bench-reliability bench-load bench-states-ab bench-gpu gpu-wheels bench-catalogue bench-load-ablations bench-retrieval bench-drift bench-item-to-item bench-online bench-online-drift bench-traffic experiment-report results-page

targets:                      ## every make target and what it does
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):[^#]*## /\1\t/' | expand -t 26

demo: install                 ## install everything, then run the whole loop on the embedded default
	$(PY) -m devtools.demo

install: .venv/.installed     ## the project virtualenv with every dependency and generated gRPC code

.venv/.installed: pyproject.toml scripts/install.sh tools/node/package-lock.json
	scripts/install.sh
	touch $@

test: install                 ## every test (unit + integration against real processes)
	$(PY) -m pytest -q --durations=30

lint: install                 ## ruff and mypy as configured in pyproject.toml (CI runs it)
	.venv/bin/ruff check .
	.venv/bin/mypy

test-unit: install             ## unit tests only (seconds to minutes)
	$(PY) -m pytest -q tests/unit

test-integration: install      ## integration tests only (real servers)
	$(PY) -m pytest -q tests/integration

up: install                   ## keep the suite running on fixed ports for grpcurl (Ctrl-C stops it)
	$(PY) -m devtools.up

protos:                       ## regenerate gen/ from protos/
	scripts/gen_protos.sh

check-protos:                 ## fail if gen/ is not what protos/ generates (Python and TypeScript)
	@tmp=$$(mktemp -d); scripts/gen_protos.sh $$tmp && diff -r -x __pycache__ $$tmp/shoprank gen/shoprank && diff -r $$tmp/ts gen/ts && echo "generated code up to date"; rc=$$?; rm -rf $$tmp; exit $$rc

lint-protos: install          ## buf lint (STANDARD + COMMENTS, buf.yaml): per-RPC messages, everything documented
	tools/node/node_modules/.bin/buf lint

check-breaking: install       ## buf breaking: protos/ wire- and JSON-compatible with the previous commit's (AGAINST=<git ref>)
	@ref=$(or $(AGAINST),HEAD~1); \
	if ! git rev-parse -q --verify "$$ref^{commit}" >/dev/null; then echo "no $$ref to compare with (a shallow clone?): skipped"; exit 0; fi; \
	against=".git#ref=$$ref"; git cat-file -e "$$ref:buf.yaml" 2>/dev/null || against="$$against,subdir=protos"; \
	tools/node/node_modules/.bin/buf breaking --against "$$against" && echo "no breaking change against $$ref"

feast-apply: install          ## `feast apply` with the CLI, against this deployment's stores (its RECSYS_* settings; default var/)
	mkdir -p var/feast && $(PY) -m core.features yaml > var/feast/feature_store.yaml
	cd feature_repo && ../.venv/bin/feast -f $(CURDIR)/var/feast/feature_store.yaml apply

compose-native: install       ## compose.yaml validated, then every service's command run natively (local PostgreSQL/Redis), until Ctrl-C
	$(PY) -m devtools.compose_native

clean:                        ## remove var/ (every default deployment's state) and .venv
	rm -rf var .venv

bench-quality: install        ## EVAL.md protocol, sampled: SAMPLE=200 DATA=path MONTHS=auto|A..B|A,B (0 = full protocol)
	$(PY) -m evaluation.run --sample-per-month $(or $(SAMPLE),200) $(if $(DATA),--data $(DATA),) $(if $(MONTHS),--months $(MONTHS),)

bench-quality-full: install   ## every case; the baselines only (BERT on every case takes hours on 2 CPUs)
	$(PY) -m evaluation.run --sample-per-month 0 --recommenders popularity,repeat,cooccurrence

bench-freshness: install      ## ack → features visible, and fine-tune trigger → new version serving
	$(PY) -m evaluation.freshness

bench-lifelong: install       ## frozen vs lifelong (each continual-learning option) vs full monthly retrain (CPU-sized; --help)
	$(PY) -m evaluation.lifelong $(if $(DATA),--data $(DATA),) $(if $(MONTHS),--months $(MONTHS),)

bench-step-cost: install      ## seconds per training step of each continual-learning option, back to back
	$(PY) -m evaluation.step_cost

bench-fusion: install         ## the fusion ranker vs every baseline under EVAL.md: SAMPLE=0 (full protocol) or N per month
	$(PY) -m evaluation.fusion_eval --sample-per-month $(or $(SAMPLE),0) $(if $(DATA),--data $(DATA),) $(if $(MONTHS),--months $(MONTHS),)

bench-drift: install          ## frozen vs lifelong vs drift-triggered vs full retrain on a synthetic season change, through the worker's training (~25 min)
	$(PY) -m evaluation.drift_experiment

bench-retrieval: install      ## retrieval recall of the candidates at 100/200/300/500, by source (no model; MONTHS=2010-06..2010-11 TAG=validation)
	$(PY) -m evaluation.retrieval_recall $(if $(DATA),--data $(DATA),) $(if $(MONTHS),--months $(MONTHS) --warmup-months 6,) $(if $(TAG),--tag $(TAG),)

bench-fusion-served: install  ## the fusion ranker through the worker, Feast and tritonserver (served path), full protocol (~35 min); ARM=frozen (FROZEN=1): version 1 only; ARM=retrain: a full retrain every month
	$(PY) -m evaluation.fusion_served $(if $(DATA),--data $(DATA),) $(if $(MONTHS),--months $(MONTHS),) $(if $(FROZEN),--arm frozen,) $(if $(ARM),--arm $(ARM),)

bench-item-to-item: install   ## p50/p99 of Recommend (+rules), SimilarItems, FrequentlyBoughtTogether, Trending through gRPC, 5k items (~5 min)
	$(PY) -m evaluation.item_to_item_bench

bench-rank: install           ## end-to-end Rank latency, 100 candidates: fusion vs cross-encoder in one run
	$(PY) -m evaluation.rank_latency

bench-load-ablations: install ## each throughput lever off in turn (a deployment each), Rank at 1 and 16 clients; SECONDS=20 per level (~9 min)
	$(PY) -m evaluation.load_bench --ablations --seconds $(or $(SECONDS),20)

bench-catalogue: install      ## catalogue size 5k/50k/500k: upsert, popularity refresh, Feast reads, Triton model table load/memory/latency (~10 min)
	$(PY) -m evaluation.catalogue_scale

bench-gpu: install            ## the served fusion model: Triton vs bare TorchScript on this machine's device (GPU when present); see bench/gpu_run.sh for a bare GPU machine
	$(PY) bench/gpu_bench.py

gpu-wheels: install           ## the wheels a bare GPU machine lacks (Python 3.12), into .whl/ for bench/gpu_run.sh (fits the 64 MiB carry)
	$(PY) bench/gpu_wheels.py

bench-reliability: install    ## 16 clients + kills of feedback, worker, tritonserver + 10k fuzz cases; embedded and PostgreSQL+Redis (~6 min)
	$(PY) -m evaluation.reliability

bench-load: install           ## Rank/s, p50, p99 at 1/4/16 clients: a shop-like workload (3,000 shoppers, whole catalogue, events between Ranks; state backfill; the soak) and the hot one; Recommend, 10/100/500 candidates, CPU and memory per process; SECONDS=30 per level, SOAK=600 (s)
	$(PY) -m evaluation.load_bench --seconds $(or $(SECONDS),30) --soak $(or $(SOAK),600) $(if $(TAG),--tag $(TAG),) $(if $(WORKLOAD),--workload $(WORKLOAD),)

bench-states-ab: install       ## stored shopper states on vs off, alternated, on the shop-like workload: Rank at 1 and 16 clients, ingest (~16 min)
	$(PY) -m evaluation.states_ab

bench-online: install         ## online experiments through simulated shoppers: canary, degraded arm, rollback (~12 min), then bench-online-drift
	$(PY) -m evaluation.online_bench
	$(PY) -m evaluation.drift_loop $(if $(TAG),--tag $(TAG),)

bench-online-drift: install   ## lifelong vs frozen in closed loop through a sudden taste change, one deployment each (~15 min): TAG=name
	$(PY) -m evaluation.drift_loop $(if $(TAG),--tag $(TAG),)

bench-traffic: install        ## hidden relevance of the serving version as simulated traffic grows ~50x (popularity feedback loop; ~6 min): TAG=name
	$(PY) -m evaluation.traffic_loop $(if $(TAG),--tag $(TAG),)

experiment-report: install    ## Markdown + PNG of one experiment from this deployment's logs: EXPERIMENT=id
	@test -n "$(EXPERIMENT)" || { echo "usage: make experiment-report EXPERIMENT=<experiment id>" >&2; exit 2; }
	$(PY) -m devtools.experiment_report $(EXPERIMENT) --out bench/results

results-page: install         ## docs/results.md and the README's headline table, from bench/results/ (a test fails when they are stale)
	$(PY) -m evaluation.results_page
