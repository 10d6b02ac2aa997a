#!/usr/bin/env bash
# The grouping ablation of issue 18 on existing lakes (each HOME:DATE made by `osmf demo` or
# bench/ab_seeds.py): one bench/method_lab.py run per PAAG change; each prints the silhouette and
# the gain rule, so the K-rule row comes with the last run. Then the GRM, absolute vs residual score.
#   bench/ablation.sh .osmf:2026-01-05 bench/out/ab_seeds/seed101:2026-01-05
set -euo pipefail
PY=${PY:-.venv/bin/python}
for hd in "$@"; do
  home=${hd%%:*}; date=${hd##*:}
  echo "=== $home $date"
  for v in "epochs=6 bottleneck=0 text_encoder=hash" "epochs=6 bottleneck=0 text_encoder=none" \
           "epochs=6 bottleneck=2 text_encoder=none" "epochs=40 bottleneck=2 text_encoder=none"; do
    args=(); for kv in $v; do args+=(--paag "$kv"); done
    $PY bench/method_lab.py --home "$home" --run-date "$date" "${args[@]}" 2>&1 | grep -E "^PAAG|silhouette|gain tau=0.95"
  done
  $PY bench/grm_lab.py --home "$home" --run-date "$date" 2>&1 | grep -E "^GRM"
done
