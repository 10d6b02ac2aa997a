"""The judge's side: the simulated A/B test (``ab``) and the grouping evaluation (``grouping``).
With ``osmf.world`` the only code that reads the world's truth; no pipeline stage imports it."""
