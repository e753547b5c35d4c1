"""Tools that drive freqtrade from the outside: demo, live, report, ablation, ML quality.

The running bot never imports this package (checked by import-linter, see pyproject.toml)."""
