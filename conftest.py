"""Settings for every test in the repository (tests/, plugins/, examples/).

No test may depend on how fast the machine is: hypothesis gets no per-example deadline and
does not fail a property for generating data slowly (``too_slow``). Performance belongs in
``bench/``.
"""

from hypothesis import HealthCheck, settings

settings.register_profile("crmcore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("crmcore")
