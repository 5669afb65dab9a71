import os
import sys
from pathlib import Path

import pytest

# tests import their shared builders as `helpers`
sys.path.insert(0, str(Path(__file__).parent))
# Ray: no token file in $HOME for the local test cluster (raytune.md §0.5)
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(autouse=True)
def _no_weight_downloads(monkeypatch, tmp_path_factory):
    """Tests never download pretrained weights (nor touch the user's cache), even when a check they rely on
    is broken."""
    import torch.hub

    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def refuse(url, *args, **kwargs):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
