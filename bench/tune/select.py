"""Choosing a trial: by its noisy-validation score only, never by any test accuracy.

A trial is one run of a `bench tune` search (a row of `runs.csv` whose `tune_trial` is set). Per
method and cell, the chosen trial is the finished one (status "done") with the highest
`selected_val`, the validation score at the epoch its own validation curve picks; ties go to the
lower trial number (trial 0 holds the method's defaults, so a tie keeps the defaults). Trials
stopped early by the scheduler ("stopped") count in the budget and the spread, but are never
chosen: their score is from fewer epochs than the budget.
"""
from __future__ import annotations

import pandas as pd

#: columns that identify one search: a method on one cell of one preset
GROUP_KEYS = ("preset", "method", "dataset", "imbalance", "noise", "noise_rate")


def is_trial(runs: pd.DataFrame) -> pd.Series:
    """Which rows of a runs table are tuning trials (a non-empty `tune_trial`; read back as NaN when empty)."""
    if "tune_trial" not in runs.columns:
        return pd.Series(False, index=runs.index)
    marked = runs["tune_trial"].fillna("").astype(str).str.strip()
    return marked.ne("") & marked.ne("nan")


def trials(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows of `runs` that are tuning trials, with `trial` as an integer."""
    out = runs[is_trial(runs)].copy()
    out["trial"] = pd.to_numeric(out["tune_trial"]).astype(int) if len(out) else pd.Series(dtype=int)
    return out


def chosen_trials(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per search (`GROUP_KEYS`): its chosen trial (see the module doc). Searches without a
    finished trial are left out."""
    done = trials(runs)
    done = done[done["status"] == "done"].copy()
    done["selected_val"] = pd.to_numeric(done["selected_val"], errors="coerce")
    done = done[done["selected_val"].notna()]
    if done.empty:
        return done
    ordered = done.sort_values(["selected_val", "trial"], ascending=[False, True], kind="mergesort")
    return ordered.drop_duplicates(list(GROUP_KEYS), keep="first").sort_values(list(GROUP_KEYS)).reset_index(
        drop=True)
