#!/usr/bin/env bash
# The grouping ablation of issue 18 on existing lakes (each HOME:DATE made by `osmf demo` or
# bench/ab_seeds.py): one bench/method_lab.py run per PAAG change, in the order they landed; each
# prints the silhouette and the gain rule, so the K-rule row comes with the fourth run. Then the GRM:
# absolute score, residual at weight 1, residual at the weight chosen on validation groups.
#   bench/ablation.sh .osmf:2026-01-05 bench/out/ab_seeds/seed101:2026-01-05
set -euo pipefail
PY=${PY:-.venv/bin/python}
for hd in "$@"; do
  home=${hd%%:*}; date=${hd##*:}
  echo "=== $home $date"
  old="directions=shared themes=8"
  for v in "epochs=6 bottleneck=0 text_encoder=hash $old" "epochs=6 bottleneck=0 text_encoder=none $old" \
           "epochs=6 bottleneck=2 text_encoder=none $old" "epochs=40 bottleneck=2 text_encoder=none $old" \
           "epochs=40 bottleneck=2 text_encoder=none directions=product themes=8" \
           "epochs=40 bottleneck=2 text_encoder=none directions=product themes=0"; do
    args=(); for kv in $v; do
      case $kv in themes=*) args+=(--themes "${kv#themes=}");; *) args+=(--paag "$kv");; esac
    done
    $PY bench/method_lab.py --home "$home" --run-date "$date" "${args[@]}" 2>&1 | grep -E "^PAAG|bound|silhouette|gain tau=0.95"
  done
  $PY bench/grm_lab.py --home "$home" --run-date "$date" 2>&1 | grep -E "^GRM"
done
