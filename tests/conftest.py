"""pytest setup shared by the test modules: a header line saying which profile and browser run."""

from __future__ import annotations

import os
import shutil

from stalenb import paths


def pytest_report_header(config):
    """E.g. ``stalenb: quick profile (STALENB_QUICK=1), CI=true, chromium=/usr/bin/chromium``."""
    profile = "quick profile" if paths.quick() else "FULL profile"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or "missing"
    return (f"stalenb: {profile} (STALENB_QUICK={os.environ.get('STALENB_QUICK', '')!r}), "
            f"CI={os.environ.get('CI', '')!r}, chromium={chromium}")
