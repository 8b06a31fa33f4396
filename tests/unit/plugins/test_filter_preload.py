"""preload_filters: its input back, with every filter file of the collection imported."""

from __future__ import annotations

import os
import sys

from ansible_collections.fleet.rollout.plugins.filter import preload


def test_the_input_comes_back_unchanged_and_every_filter_file_is_imported():
    here = os.path.dirname(preload.__file__)
    package = preload.__name__.rpartition(".")[0]
    names = sorted("%s.%s" % (package, name[:-3]) for name in os.listdir(here)
                   if name.endswith(".py") and name != "__init__.py")
    # Forget them for the test, and put back the modules the other tests imported afterwards.
    kept = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    try:
        value = {"hosts": ["app"]}
        assert preload.preload_filters(value) is value
        assert [name for name in names if name not in sys.modules] == []
        assert len(names) > 10
    finally:
        sys.modules.update(kept)
