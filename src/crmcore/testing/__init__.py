"""Test helpers for plugin and backend authors.

``crmcore.testing.fixtures`` is a pytest plugin (loaded automatically once crmcore is installed)
providing ``clock``, ``make_crm`` and ``crm``; ``crmcore.testing.contract.StorageContract`` is
the storage contract suite a backend runs by subclassing it; ``crmcore.testing.api.ApiClient``
calls the JSON API routes plugins declare (``crm_api_routes``) as the ``web`` plugin serves
them.
"""

from crmcore.testing.factories import START, make_test_crm

__all__ = ["START", "make_test_crm"]
