#!/usr/bin/env bash
# `make seeds`: train every headline method with three seeds on the default profile and write reports/seeds.md.
# The extra seeds run as a DVC experiment in the workspace (stage `seeds`); afterwards params.yaml goes back to one
# seed and `dvc repro` restores the default outputs, so only reports/seeds.md (and the run records) change.
set -euo pipefail
SEEDS=${SEEDS:-[0,1,2]}
STAGES=${SEED_STAGES:-[baseline,st_pruning,attention_pruning]}
if ! git diff --quiet -- params.yaml; then
  echo "make seeds: params.yaml has uncommitted changes; commit or revert them first" >&2
  exit 1
fi
restore() { git checkout -- params.yaml; }
trap restore EXIT
dvc exp run -S "seeds=${SEEDS}" -S "seed_runs.stages=${STAGES}"
python -m experiments.seeds_report
restore
trap - EXIT
dvc repro
