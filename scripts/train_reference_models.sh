#!/usr/bin/env bash
# The recipe of the shipped reference weights (vdmbench/reference/weights/): four training runs side
# by side (each is launch-bound on a GPU, so they share one well), then the quick quality check.
#
#   bash scripts/train_reference_models.sh RUNS_DIR            # on a GPU machine
#   TIME_LIMIT=600 BATCH=64 bash scripts/train_reference_models.sh runs
#
# Each run is resumable (`vdmbench train --out` the same folder). TRAIN overrides the command
# (default: python -m vdmbench.reference.train, which needs no install beyond torch, diffusers and
# safetensors). The shipped weights came from (steps are in each file's "train" metadata):
#   stage 1: TIME_LIMIT=400 BATCH=64 bash scripts/train_reference_models.sh runs1     (H100)
#            -> cascade-base-16, cascade-sr-32 (final.safetensors), the -undertrained files
#               (ema-step400.safetensors of unet3d and temporal-attention)
#   stage 2: fresh data (seed 1) from stage 1's EMA, for the two main models:
#            python -m vdmbench.reference.train --arch unet3d --out runs2/unet3d \
#                --init runs1/unet3d/final.safetensors --seed 1 --batch-size 64 --warmup 50 --steps 2324
#            (temporal_attention likewise, --steps 2240) -> unet3d, temporal-attention
# A step costs ~0.1 s with four runs sharing an H100 and ~3 s on 2 CPU cores.
set -euo pipefail
runs=${1:?usage: train_reference_models.sh RUNS_DIR}
limit=${TIME_LIMIT:-400}
batch=${BATCH:-64}
steps=${STEPS:-1000000}
train=${TRAIN:-python -m vdmbench.reference.train}
common=(--batch-size "$batch" --steps "$steps" --time-limit "$limit" --checkpoint-every 120 --threads 2
        --log-every 50)
mkdir -p "$runs"
$train --arch unet3d --out "$runs/unet3d" "${common[@]}" --snapshot 400 \
    >"$runs/unet3d.log" 2>&1 &
$train --arch temporal_attention --out "$runs/temporal-attention" "${common[@]}" --snapshot 400 \
    >"$runs/temporal-attention.log" 2>&1 &
$train --arch unet3d --out "$runs/cascade-base-16" --height 16 --width 16 "${common[@]}" \
    >"$runs/cascade-base-16.log" 2>&1 &
$train --arch unet3d --out "$runs/cascade-sr-32" --sr-factor 2 --net-config '{"channels": [32, 64]}' \
    "${common[@]}" >"$runs/cascade-sr-32.log" 2>&1 &
fail=0
for job in $(jobs -p); do wait "$job" || fail=1; done
tail -n 3 "$runs"/*.log
exit $fail
