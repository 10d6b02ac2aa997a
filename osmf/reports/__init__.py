"""Plots and HTML reports (the only user of matplotlib)."""
