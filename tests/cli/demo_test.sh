#!/usr/bin/env bash
# `pixel3dmm demo` end to end on a short schedule: every output file appears, the report holds the errors, and
# bad settings fail with exit code 3 before anything is written.
#   demo_test.sh PIXEL3DMM_BINARY WORK_DIR
set -euo pipefail
bin=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
short=(--set iters=20 --set camera.steps=20 --set camera.landmark_steps=10)

"$bin" demo "${short[@]}" --out "$work/out" > "$work/log.txt"
for f in mesh.ply mesh.obj mesh_world.ply canonical.ply truth.ply params.json params.safetensors overlay.png \
         maps.png loss.png loss.csv input.png report.json; do
  [[ -s "$work/out/$f" ]] || { echo "missing output $f"; exit 1; }
done
/usr/bin/python3 - "$work/out/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["iterations"] == 40, r["iterations"]
for k in ("start_error_mm", "posed_error_mm", "face_region_error_mm", "neutral_error_mm", "ms_per_iteration"):
    assert r[k] > 0, (k, r[k])
assert "embedded demo networks" in r["predictions"], r["predictions"]
for side in ("start", "landmarks_only"):
    for k in ("posed_error_mm", "face_region_error_mm", "neutral_error_mm"):
        assert r[side][k] > 0, (side, k, r[side][k])
# The landmark-only baseline is a fit of its own: it moves away from the start.
assert r["landmarks_only"]["posed_error_mm"] != r["start"]["posed_error_mm"], r
assert r["landmarks_only_seconds"] > 0, r
PY
grep -q "landmarks only" "$work/log.txt"
grep -q "neutral shape (identity)" "$work/log.txt"

# A bad setting: exit code 3 (bad input), the key named, no output folder.
set +e
"$bin" demo --set iters=abc --out "$work/bad" 2> "$work/err.txt"
rc=$?
set -e
[[ $rc -eq 3 ]] || { echo "expected exit code 3, got $rc"; exit 1; }
grep -q "iters" "$work/err.txt"
[[ ! -e "$work/bad" ]] || { echo "a failed demo left $work/bad behind"; exit 1; }
set +e
"$bin" demo --maps guess --out "$work/bad" 2> "$work/err.txt"
rc=$?
set -e
[[ $rc -eq 3 ]] || { echo "--maps guess: expected exit code 3, got $rc"; exit 1; }
grep -q "'network' or 'exact'" "$work/err.txt"
echo "demo ok"
