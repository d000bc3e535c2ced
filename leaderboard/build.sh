#!/usr/bin/env bash
# Rebuild a published leaderboard: train/sample/evaluate (resumable: re-run after an interruption),
# copy the result files (no weights or images) into leaderboard/runs/, and render the tables.
#   leaderboard/build.sh first cpu "replay,pixel_floor,edm,cvae,dcgan,pggan" 0,1,2 [extra radiobench run args]
set -euo pipefail
DATASET=${1:-first}; PRESET=${2:-cpu}; GENERATORS=${3:-replay,pixel_floor,edm,cvae,dcgan,pggan}; SEEDS=${4:-0,1,2}
shift $(( $# < 4 ? $# : 4 ))
cd "$(dirname "$0")/.."
RUN=${RUN:-runs/$DATASET-$PRESET}
NAME=$DATASET-$PRESET
radiobench run --generators "$GENERATORS" --dataset "$DATASET" --preset "$PRESET" --seeds "$SEEDS" --out "$RUN" "$@" || true
radiobench publish "$RUN" --to "leaderboard/runs/$NAME"
for fmt in md csv tex html; do
  radiobench leaderboard "leaderboard/runs/$NAME" --format "$fmt" -o "leaderboard/$NAME.$fmt"
done
