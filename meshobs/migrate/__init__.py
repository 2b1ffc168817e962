"""Leaving AWS App Mesh: translate its configuration to Istio, check the translation, and verify
that the mesh behaves the same after the cut-over.

The pieces, in the order ``meshobs migrate`` uses them: :mod:`.source` (App Mesh configuration
from a directory of CRDs / exports, or a bundle), :mod:`.inventory` (its resources by name),
:mod:`.translate` (-> Istio manifests, with :mod:`.routes`, :mod:`.policies`, :mod:`.gateways`
and the :mod:`.ledger` of every field), :mod:`.write` (YAML files and the report),
:mod:`.roundtrip` (the Istio result read back, compared with drift's common route model),
:mod:`.verify` (service graph before vs after).
"""
