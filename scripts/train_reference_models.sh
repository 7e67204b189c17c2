#!/usr/bin/env bash
# The recipe of the shipped reference weights (vdmbench/reference/weights/): four training runs side
# by side (each is launch-bound on a GPU, so they share one well), then the quick quality check.
#
#   bash scripts/train_reference_models.sh RUNS_DIR            # on a GPU machine
#   TIME_LIMIT=600 BATCH=64 bash scripts/train_reference_models.sh runs
#
# Each run is resumable (`vdmbench train --out` the same folder). The shipped files are each run's
# final.safetensors (float16 EMA) and the ema-step<N> snapshots named in README's table
# (the -undertrained checkpoints). TRAIN overrides the command (default: python -m
# vdmbench.reference.train, which needs no install beyond torch, diffusers and safetensors).
set -euo pipefail
runs=${1:?usage: train_reference_models.sh RUNS_DIR}
limit=${TIME_LIMIT:-400}
batch=${BATCH:-64}
steps=${STEPS:-1000000}
train=${TRAIN:-python -m vdmbench.reference.train}
common=(--batch-size "$batch" --steps "$steps" --time-limit "$limit" --checkpoint-every 120 --threads 2
        --log-every 50)
mkdir -p "$runs"
$train --arch unet3d --out "$runs/unet3d" "${common[@]}" --snapshot 100 --snapshot 200 --snapshot 400 \
    >"$runs/unet3d.log" 2>&1 &
$train --arch temporal_attention --out "$runs/temporal-attention" "${common[@]}" --snapshot 100 --snapshot 200 \
    --snapshot 400 >"$runs/temporal-attention.log" 2>&1 &
$train --arch unet3d --out "$runs/cascade-base-16" --height 16 --width 16 "${common[@]}" \
    >"$runs/cascade-base-16.log" 2>&1 &
$train --arch unet3d --out "$runs/cascade-sr-32" --sr-factor 2 --net-config '{"channels": [32, 64]}' \
    "${common[@]}" >"$runs/cascade-sr-32.log" 2>&1 &
fail=0
for job in $(jobs -p); do wait "$job" || fail=1; done
tail -n 3 "$runs"/*.log
exit $fail
