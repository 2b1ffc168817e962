"""``meshobs drift``: intended (Git) vs live (API) vs effective (Envoy) configuration.

The pieces, in the order a run uses them: :mod:`normalise` (one canonical form per resource),
:mod:`compare` (intended <-> live), :mod:`effective` (live or intended <-> what each Envoy
holds), :mod:`ignore` (expected differences, each with a reason), :mod:`state` (history:
new / ongoing / resolved), :mod:`metrics` (textfile and Pushgateway), :mod:`report`.
"""

from .compare import Drift, Severity
from .normalise import ResourceId

__all__ = ["Drift", "ResourceId", "Severity"]
