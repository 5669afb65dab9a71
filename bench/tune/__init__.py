"""`bench tune`: equal-budget hyperparameter search under Ray Tune, selected on noisy validation data.

- `space`: a method's search space (`Method.search_space`) as Ray Tune domains, and how a sampled
  point becomes a run configuration;
- `select`: the selection rule (validation only, never test) over a store's trials;
- `run`: planning, launching and the chosen-hyperparameters file that `run grid --hparams-from` applies.
"""
