#!/usr/bin/env bash
# Regenerates the README's examples.
#   bash docs/regenerate.sh [results-folder]         the default run's table and figures (docs/default_*), from the
#                                                    `default` preset (what `python -m bench run grid` runs: 99 runs,
#                                                    about 1.5 minutes on 2 CPU cores)
#   bash docs/regenerate.sh report [results-folder]  the report "Results on Fashion-MNIST-LT with label noise": its
#                                                    grid (preset fmnist-n-lt-report, 132 runs, about 1.5-2 hours on
#                                                    2 CPU cores; resumable), its records in results/reports/fmnist-n-lt,
#                                                    its figures in docs/report and its README section.
#                                                    Without training: python -m bench report fmnist-n-lt --from-results
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "report" ]]; then
  out=${2:-results/fmnist-n-lt-report}
  python -m bench run grid --preset fmnist-n-lt-report --out "$out"
  python -m bench report fmnist-n-lt --results "$out"
  exit 0
fi
out=${1:-results/default}
python -m bench run grid --preset default --out "$out"
python -m bench table --results "$out" > docs/default_table.md
python -m bench stats --results "$out" > /dev/null
python -m bench plots --results "$out" > /dev/null
for name in accuracy_vs_noise_last diff_heatmap_last critical_difference_last cost_per_iteration; do
  cp "$out/plots/$name.png" "docs/default_$name.png"
done
echo "docs/ updated from $out"
