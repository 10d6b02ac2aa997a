"""Held-out users stay held out: the A/B is computed only when every model behind its arms was
trained on data built with one and the same held-out rule (fraction and salt).

The rules come from what each model recorded: the run date's regroup (beside its PAAG model: the
group tables, pairs and every model read them), and the MLflow run of each registered version
(tags ``osmf.heldout_fraction`` and ``osmf.heldout_salt``): the GRM, the G-MLLM (its run also holds
the plain-DPO one-size model) and the G-MLLM base it was aligned from. A larger fraction than a
model was trained with would count users whose clicks trained it as held out; a smaller one or
another salt would leave training users in, or held-out users out.
"""

from __future__ import annotations


def agreed_rule(rules: dict[str, dict | None]) -> dict:
    """The one rule of ``rules`` (what -> recorded rule, or None when nothing was recorded); a
    ``ValueError`` that says which model disagrees, or records nothing, and what to do."""
    unknown = [what for what, rule in rules.items() if rule is None]
    if unknown:
        raise ValueError("refusing the simulated A/B: no held-out rule is recorded for " + "; ".join(unknown)
                         + ". Models trained before rules were recorded cannot be checked: rerun the chain for "
                           "the date (`osmf regroup`, `osmf train ...`, `osmf generate`)")
    distinct = {(float(r["fraction"]), str(r["salt"])) for r in rules.values()}
    if len(distinct) > 1:
        listing = "; ".join(f"{what}: fraction {r['fraction']}, salt {r['salt']!r}" for what, r in rules.items())
        raise ValueError("refusing the simulated A/B: the models behind its arms were trained with different "
                         f"held-out rules ({listing}), so some held-out users' clicks may have trained a model. "
                         "Retrain them under one [grouping].eval_holdout_fraction")
    fraction, salt = distinct.pop()
    return {"fraction": fraction, "salt": salt}


def _rule(tags: dict) -> dict | None:
    """The held-out rule a training run's tags record, or None."""
    if "osmf.heldout_fraction" not in tags:
        return None
    return {"fraction": float(tags["osmf.heldout_fraction"]), "salt": tags.get("osmf.heldout_salt", "")}


def models_rule(settings, run_date: str, versions: dict) -> dict:
    """The held-out rule shared by the run date's regroup and every model version in ``versions``
    (``{"gmllm": v, "grm": v}``, the versions that made the generated creatives) and the G-MLLM's base."""
    from osmf.data.audience import recorded_rule
    from osmf.tracking import registry

    gm, grm = str(versions["gmllm"]), str(versions["grm"])
    gm_tags = registry.version_run_tags(registry.GMLLM, gm)
    rules = {f"the regroup of {run_date} (PAAG, group tables, pairs)": recorded_rule(settings, run_date),
             f"{registry.GRM} v{grm}": _rule(registry.version_run_tags(registry.GRM, grm)),
             f"{registry.GMLLM} v{gm} (and its plain-DPO one-size model)": _rule(gm_tags)}
    base = gm_tags.get("osmf.base_version")
    if base:
        rules[f"{registry.GMLLM} v{base} (the base it was aligned from)"] = _rule(registry.version_run_tags(registry.GMLLM, base))
    return agreed_rule(rules)
