#!/usr/bin/env bash
# Rebuild leaderboard/alma_sim-<preset> (reconstruction track): the classical rows and ddpm_recon (median of
# draws) in one run, then ddpm_recon's other two aggregations (mean, detect) in runs that reuse its checkpoints
# (aggregate is a sampling option: they only draw again). Resumable: re-run after an interruption.
#   RADIOBENCH_ANTENNA_DIR=../shared/data/antenna-configs leaderboard/build_alma_sim.sh cpu 0,1,2
set -euo pipefail
PRESET=${1:-cpu}; SEEDS=${2:-0,1,2}
cd "$(dirname "$0")/.."
NAME=alma_sim-$PRESET
RUN=${RUN:-runs/$NAME}
radiobench run --generators truth,clean,pybdsf_dirty --dataset alma_sim --preset "$PRESET" --seeds 0 --out "$RUN" || true
radiobench run --generators ddpm_recon --dataset alma_sim --preset "$PRESET" --seeds "$SEEDS" --out "$RUN" || true
dirs=("leaderboard/runs/$NAME")
radiobench publish "$RUN" --to "leaderboard/runs/$NAME"
for agg in mean detect; do
  for seed in ${SEEDS//,/ }; do  # the trained model and its loss curve, not its samples
    mkdir -p "$RUN-$agg/ddpm_recon/seed-$seed"
    for part in checkpoint train; do
      [ -e "$RUN-$agg/ddpm_recon/seed-$seed/$part" ] || cp -r "$RUN/ddpm_recon/seed-$seed/$part" "$RUN-$agg/ddpm_recon/seed-$seed/"
    done
  done
  radiobench run --generators ddpm_recon --dataset alma_sim --preset "$PRESET" --seeds "$SEEDS" --out "$RUN-$agg" \
    --generator-option "ddpm_recon.aggregate=$agg" || true
  radiobench publish "$RUN-$agg" --to "leaderboard/runs/$NAME-$agg"
  dirs+=("leaderboard/runs/$NAME-$agg")
done
for fmt in md csv tex html; do
  radiobench leaderboard "${dirs[@]}" --format "$fmt" -o "leaderboard/$NAME.$fmt"
done
