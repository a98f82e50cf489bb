#!/usr/bin/env bash
# GPU measurements of the README's performance section, in one call (a lent GPU machine has no venv):
#   1. the phase-2 training-step benchmark of the paper model (HRNet-W32 + VDSR-CA 20x64, 256x128, P x K = 4 x 6)
#   2. ~300 steps of the `paper` profile's phase 2 on MLR-VIPeR (validation view of split 0; random init,
#      since no ImageNet weights can be fetched), data loading included: pairs/s and peak GPU memory per epoch
#   3. optional: scripts/tune.py variants, one per line of VARIANTS (arguments of tune.py), run in parallel
#      (2 threads each), each then re-evaluated with the other test features
# Usage: DATA_ROOT=dir OUT=dir [VARIANTS=file] scripts/gpu_check.sh
set -uo pipefail
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TQDM_DISABLE=1
DATA_ROOT=${DATA_ROOT:-../shared/data}; OUT=${OUT:-outputs/gpu_check}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
python3 -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)" | tee -a "$OUT/device.txt"
python3 scripts/bench_train.py --backbone hrnet_w32 --p 4 --k 6 --steps 10 --warmup 3 --infer-batch 64 2>&1 | tee "$OUT/bench.log"
cp outputs/bench/train_hrnet_w32.json "$OUT/" 2>/dev/null
python3 scripts/tune.py --profile paper --dataset viper --data-root "$DATA_ROOT" --name gpu_phase2_300 --quiet \
  --stages phase2 --set WEIGHTS=none PHASE1_EPOCHS=2 PHASE2_EPOCHS=14 NUM_WORKERS=12 2>&1 | tee "$OUT/phase2.log"
if [ -n "${VARIANTS:-}" ]; then
  while IFS= read -r v; do
    [ -z "$v" ] && continue
    ( export OMP_NUM_THREADS=2
      eval python3 scripts/tune.py --data-root "$DATA_ROOT" --quiet $v
      for f in feat concat_norm; do eval python3 scripts/tune.py --data-root "$DATA_ROOT" --quiet $v TEST_FEATURE=$f; done
    ) >> "$OUT/tune.log" 2>&1 &
  done < "$VARIANTS"
  wait
  cat "$OUT/tune.log"
  python3 scripts/tune.py --collect --profile cpu --dataset viper | tee "$OUT/tune_table.txt"
fi
tar czf "$OUT/runs.tgz" --exclude='*.pt' outputs/*/tuning 2>/dev/null
