"""Test helpers for plugin and backend authors.

``crmcore.testing.fixtures`` is a pytest plugin (loaded automatically once crmcore is installed)
providing ``clock``, ``make_crm`` and ``crm``; ``crmcore.testing.contract.StorageContract`` is
the storage contract suite a backend runs by subclassing it.
"""

from crmcore.testing.factories import START, make_test_crm

__all__ = ["START", "make_test_crm"]
