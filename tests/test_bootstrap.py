"""The A/B intervals (``osmf.evaluation.bootstrap``): pure numpy, no world needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from osmf.evaluation.bootstrap import derived, intervals

ARMS = ("one_size", "best_historical", "one_size_oracle", "osmf", "group_best_historical", "group_ceiling", "oracle")


def _per_user(n_users: int, seed: int = 1) -> pd.DataFrame:
    """Each user in the audience of two products, with the same click propensity in both; osmf
    about 10% above one-size."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        base = rng.uniform(0.02, 0.08)
        for p in ("p1", "p2"):
            rows.append({"user_id": f"u{u:05d}", "product_id": p, "one_size": base, "best_historical": base * 0.98,
                         "one_size_oracle": base * 1.02, "osmf": base * 1.10 + rng.normal(0, 0.005),
                         "group_best_historical": base * 1.12, "group_ceiling": base * 1.15, "oracle": base * 1.4})
    return pd.DataFrame(rows)


def test_derived_figures_follow_their_definitions():
    c = {"one_size": 0.05, "best_historical": 0.04, "one_size_oracle": 0.06, "osmf": 0.07,
         "group_best_historical": 0.075, "group_ceiling": 0.08, "oracle": 0.10}
    d = derived(c)
    assert d["lift_vs_one_size"] == pytest.approx(0.4)
    assert d["oracle_fraction"] == pytest.approx(0.02 / 0.05)
    assert d["ceiling_share"] == pytest.approx(0.02 / 0.04)
    assert d["osmf_reach"] == pytest.approx(0.01 / 0.02)
    assert d["osmf_reach_historical"] == pytest.approx(0.01 / 0.015)
    assert np.isnan(derived({**c, "group_ceiling": 0.06})["osmf_reach"])  # no ceiling above the one-size oracle


def test_intervals_contain_the_figures_shrink_with_users_and_are_reproducible():
    small, large = _per_user(100), _per_user(1600)
    ci_small, ci_large = intervals(small, ARMS, replicates=400), intervals(large, ARMS, replicates=400)
    for df, ci in ((small, ci_small), (large, ci_large)):
        ctr = {a: df[a].mean() for a in ARMS}
        for a in ARMS:
            lo, hi = ci[f"ctr_{a}"]
            assert lo < ctr[a] < hi, a
        lo, hi = ci["lift_vs_one_size"]
        assert lo < derived(ctr)["lift_vs_one_size"] < hi
    width = lambda ci, k: ci[k][1] - ci[k][0]  # noqa: E731
    assert width(ci_large, "ctr_osmf") < 0.5 * width(ci_small, "ctr_osmf")  # ~ 1/sqrt(16) of it
    assert intervals(small, ARMS, replicates=400) == ci_small  # a fixed seed: the same report twice


def test_a_user_is_resampled_with_all_of_their_rows():
    """Two rows per user that always move together: the interval of their mean is that of the user
    means, not of independent rows (which would be narrower by about sqrt(2))."""
    df = _per_user(400)
    by_user = intervals(df, ARMS, replicates=800)["ctr_one_size"]
    rows_as_users = df.assign(user_id=[f"r{i}" for i in range(len(df))])
    by_row = intervals(rows_as_users, ARMS, replicates=800)["ctr_one_size"]
    assert (by_user[1] - by_user[0]) > 1.1 * (by_row[1] - by_row[0])
