"""preload_filters: its input back, with every filter file of the collection imported."""

from __future__ import annotations

import os
import sys

from ansible_collections.fleet.rollout.plugins.filter import preload


def test_the_input_comes_back_unchanged_and_every_filter_file_is_imported():
    here = os.path.dirname(preload.__file__)
    files = sorted(name[:-3] for name in os.listdir(here) if name.endswith(".py") and name != "__init__.py")
    package = preload.__name__.rpartition(".")[0]
    for name in files:
        sys.modules.pop("%s.%s" % (package, name), None)
    value = {"hosts": ["app"]}
    assert preload.preload_filters(value) is value
    assert [name for name in files if "%s.%s" % (package, name) not in sys.modules] == []
    assert len(files) > 10
