#!/usr/bin/env bash
# Regenerates the README's example table and figures (docs/quick_*) from the `quick` preset
# with three seeds: about 1.5 minutes on 2 CPU cores. Usage: bash docs/regenerate.sh [results-folder]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-results/quick-3seeds}
python -m bench run grid --preset quick --seeds 0,1,2 --out "$out"
python -m bench table --results "$out" > docs/quick_table.md
python -m bench stats --results "$out" > /dev/null
python -m bench plots --results "$out" > /dev/null
for name in accuracy_vs_noise_last diff_heatmap_last critical_difference_last cost_per_iteration; do
  cp "$out/plots/$name.png" "docs/quick_$name.png"
done
echo "docs/ updated from $out"
