"""crmcore's benchmark suite: ``python -m bench [--quick] [--only W1,W3]``.

Every workload runs crmcore and its baselines in the same process and run, and reports ratios;
nothing here asserts a time. Results go to ``bench/results.json``.
"""
