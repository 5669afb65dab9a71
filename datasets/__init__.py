"""noisytail-bench data package: base datasets, long-tail subsets, label noise, meta sets, batched augmentation.

Installed as `noisytail_datasets`, never as `datasets`. The guard below handles `import datasets`
run from the repository root (where this folder is on sys.path): it loads the real `datasets`
(Hugging Face) from the rest of sys.path in place of this folder, or fails with a clear message.
"""
import sys as _sys

if __name__ == "datasets":

    def _hand_over_to_real_datasets() -> None:
        """Replace this module in sys.modules with the first `datasets` found outside the repo root."""
        import importlib.machinery
        import importlib.util
        import os

        repo_root = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
        path = [p for p in _sys.path if os.path.realpath(p or os.curdir) != repo_root]
        spec = importlib.machinery.PathFinder.find_spec("datasets", path)
        if spec is None or spec.loader is None:
            _sys.modules.pop("datasets", None)
            raise ModuleNotFoundError(
                "No module named 'datasets' (the ./datasets folder is noisytail-bench's data package; "
                "import it as noisytail_datasets)",
                name="datasets",
            )
        module = importlib.util.module_from_spec(spec)
        _sys.modules["datasets"] = module  # the import statement returns whatever is here afterwards
        try:
            spec.loader.exec_module(module)
        except BaseException:
            _sys.modules.pop("datasets", None)
            raise

    _hand_over_to_real_datasets()

else:
    from .augment import PAD_MODES, AugmentSpec, BatchTransform
    from .base import BaseData, BaseDatasetInfo
    from .build import build_data
    from .bundle import DataBundle, describe
    from .catalog import DATASETS, load_base
    from .cifar_n import HUMAN_NOISES, is_human_noise
    from .long_tail import long_tail_counts
    from .noise import NOISE_MODELS, NOISE_SAMPLINGS, sample_exact_count_labels, sample_noisy_labels, transition_matrix
    from .normalisation import NORMALISATION_NAMES, NORMALISATIONS, normalisation_stats, normalisations_for
    from .spec import ORDERS, DataSpec

    __all__ = [
        "DATASETS",
        "HUMAN_NOISES",
        "NOISE_MODELS",
        "NOISE_SAMPLINGS",
        "NORMALISATIONS",
        "NORMALISATION_NAMES",
        "ORDERS",
        "PAD_MODES",
        "AugmentSpec",
        "BaseData",
        "BaseDatasetInfo",
        "BatchTransform",
        "DataBundle",
        "DataSpec",
        "build_data",
        "describe",
        "is_human_noise",
        "load_base",
        "long_tail_counts",
        "normalisation_stats",
        "normalisations_for",
        "sample_exact_count_labels",
        "sample_noisy_labels",
        "transition_matrix",
    ]
