import os
import sys
from pathlib import Path

# tests import their shared builders as `helpers`
sys.path.insert(0, str(Path(__file__).parent))
# Ray: no token file in $HOME for the local test cluster (raytune.md §0.5)
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
