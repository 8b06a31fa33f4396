# Copyright: fleet.rollout contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # A module that only reads (logs) or computes, and changes nothing.
    READ_ONLY = r"""
attributes:
  check_mode:
    support: full
    description: Changes nothing, so it runs in check mode too.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to show.
"""
