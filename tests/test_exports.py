"""``crmcore.exports``: package names imported on first use (PEP 562)."""

import subprocess
import sys

import pytest

from crmcore.exports import exports_on_first_use


def test_a_name_is_imported_when_first_used_and_kept():
    code = (
        "import sys, crmcore_grading\n"
        "assert 'crmcore_grading.signals' not in sys.modules\n"
        "signals = crmcore_grading.Signals\n"
        "assert 'crmcore_grading.signals' in sys.modules\n"
        "assert vars(crmcore_grading)['Signals'] is signals\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_an_unknown_name_is_an_attribute_error_naming_the_package():
    getattr_ = exports_on_first_use("some_package", {"Known": "json"})
    with pytest.raises(AttributeError, match="'some_package' has no attribute 'Unknown'"):
        getattr_("Unknown")
