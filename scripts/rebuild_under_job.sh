#!/usr/bin/env bash
# Rebuild an MLR folder (--rates 8) while `python -m lib.train` trains on it, then check the run (docs/safety.md §2).
# Usage: scripts/rebuild_under_job.sh REPO WORK   (REPO: a checkout of the workbook; WORK: a scratch folder, emptied)
# Prints the job's recorded LR Rank-1 and the same weights re-tested on the data its identity names; they must agree.
set -u
REPO=$(cd "$1" && pwd); W=$2; PY=${PY:-$REPO/.venv/bin/python}
[ -e "$W" ] && { echo "WORK $W exists: give a folder that does not exist yet" >&2; exit 2; }
mkdir -p "$W"; cd "$REPO"
export OMP_NUM_THREADS=1 TQDM_DISABLE=1 PYTHONPATH="$REPO"
$PY -c "from lib.data.synthetic import SyntheticConfig, generate_synthetic; generate_synthetic('$W/data', SyntheticConfig(num_identities=24, num_cameras=3, images_per_camera=2, height=64, width=32, seed=0), progress=False)"
MLR=$W/outputs/tiny/mlr/synthetic-seed0
$PY -m lib.mlr synthetic "$W/data/manifest.csv" "$MLR" --quiet > /dev/null
TRAIN=($PY -m lib.train --config configs/ftwa/tiny.yaml --dataset synthetic --profile tiny --output-root "$W/outputs" --no-progress --set train.epochs=8)
"${TRAIN[@]}" > "$W/job.log" 2>&1 &
JOB=$!
until ls "$W"/outputs/tiny/runs/ftwa/synthetic/stages/split0/train-*/checkpoints/last.pt >/dev/null 2>&1; do sleep 0.05; done
kill -STOP $JOB
$PY -m lib.mlr synthetic "$W/data/manifest.csv" "$MLR" --rates 8 --quiet > /dev/null && echo "rebuilt with --rates 8 while the job was stopped"
kill -CONT $JOB; wait $JOB; echo "job exit $?"; cat "$W/job.log"
$PY -m lib.mlr synthetic "$W/data/manifest.csv" "$MLR" --quiet > /dev/null && echo "restored the default rates"
echo "rerun:"; "${TRAIN[@]}" 2>&1 | tail -1
RUN=$(ls -d "$W"/outputs/tiny/runs/ftwa/synthetic/stages/split0/train-*)
$PY - "$RUN" <<'PY'
import json, sys
from lib.inference import load_run
run = load_run(sys.argv[1])
rec = json.loads(open(sys.argv[1] + "/metrics.json").read())
ds = run.dataset()
r = run.matcher("ftwa").evaluate(run.split(), protocol=ds.eval_protocol, num_repeats=run.cfg.test.num_repeats, seed=run.cfg.seed)
print(f"recorded LR Rank-1 {100*rec['metrics']['lr']['rank1']:.1f}; the same weights re-tested on the data the identity names: {100*r['rank1']:.1f}")
print("identity manifest", rec["run"]["manifest_sha256"][:12], "== tested manifest", ds.fingerprint[:12])
PY
