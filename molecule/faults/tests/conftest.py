"""Testinfra access to the lab fleet; the helpers live in molecule/resources/labtest.py."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "resources"))

from labtest import host_for  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
