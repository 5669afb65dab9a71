#!/usr/bin/env bash
# Regenerates the README's example table and figures (docs/default_*) from the `default` preset (the run
# `python -m bench run grid` makes: 99 runs, about 1.5 minutes on 2 CPU cores). Usage: bash docs/regenerate.sh [results-folder]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/default}
python -m bench run grid --preset default --out "$out"
python -m bench table --results "$out" > docs/default_table.md
python -m bench stats --results "$out" > /dev/null
python -m bench plots --results "$out" > /dev/null
for name in accuracy_vs_noise_last diff_heatmap_last critical_difference_last cost_per_iteration; do
  cp "$out/plots/$name.png" "docs/default_$name.png"
done
echo "docs/ updated from $out"
