"""The built-in demo meshes: list them, load one (shipped bundle or generated), export its Git
(intended) manifests.
"""

from __future__ import annotations

import io
import re
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from meshobs.bundle import Bundle, read_bundle

from .scenario import BUILTIN, Scenario, builtin_scenario, generate_scenario

DEFAULT = "ecommerce"
_GENERATED = re.compile(r"^generated-(\d+)$")
MAX_GENERATED = 5000


class DemoNotFound(Exception):
    """An unknown demo name; the message lists the available ones."""

    def __init__(self, name: str) -> None:
        from .scenarios import LIBRARY

        names = ", ".join([*(n for n, _ in list_demos()), *LIBRARY])
        super().__init__(f"no demo named {name!r}; available: {names}, generated-<N> "
                         f"(a generated mesh of N services, N up to {MAX_GENERATED})")
        self.name = name


def list_demos() -> list[tuple[str, str]]:
    """(name, one-line description) of every built-in demo with a shipped bundle, the default
    first."""
    return [(name, builtin_scenario(name).description) for name in BUILTIN]


def list_library() -> list[tuple[str, str]]:
    """(name, one-line description) of every scenario of the library (meshobs.demo.scenarios):
    realistic meshes with a known fault or healthy-but-noisy, rendered on the fly."""
    from .scenarios import LIBRARY, library_scenario

    return [(name, library_scenario(name).description) for name in LIBRARY]


def check_demo_name(name: str | None) -> None:
    """Raise :class:`DemoNotFound` for a name :func:`scenario_for` would refuse, without
    building the scenario (a generated mesh of 5,000 services takes seconds)."""
    from .scenarios import LIBRARY

    name = name or DEFAULT
    match = _GENERATED.match(name)
    if name not in BUILTIN and name not in LIBRARY and not (match and 1 <= int(match.group(1)) <= MAX_GENERATED):
        raise DemoNotFound(name)


def scenario_for(name: str | None) -> Scenario:
    """The scenario behind a demo name (``None`` = the default); raises :class:`DemoNotFound`."""
    from .scenarios import LIBRARY, library_scenario

    name = name or DEFAULT
    if name in BUILTIN:
        return builtin_scenario(name)
    if name in LIBRARY:
        return library_scenario(name)
    match = _GENERATED.match(name)
    if match and 1 <= int(match.group(1)) <= MAX_GENERATED:
        return generate_scenario(int(match.group(1)))
    raise DemoNotFound(name)


def load_demo(name: str | None = None) -> Bundle:
    """The demo's bundle: the shipped archive for a built-in demo, rendered on the fly for the
    scenario library and ``generated-<N>`` (deterministic: the same bundle every time)."""
    name = name or DEFAULT
    if name in BUILTIN:
        archive = resources.files("meshobs.demo").joinpath("bundles", f"{name}.tar.gz")
        # read_bundle wants a path; a zipped install has none, so copy the bytes out first.
        with tempfile.TemporaryDirectory(prefix="meshobs-demo-") as tmp:
            path = Path(tmp) / f"{name}.tar.gz"
            path.write_bytes(archive.read_bytes())
            return read_bundle(path)
    from .build import render_bundle

    return render_bundle(scenario_for(name))


def _intended_kubernetes(scenario: Scenario) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for ns, svc in scenario.services():
        w = scenario.backing(ns, svc)
        if w.gateway:
            continue
        docs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": svc, "namespace": ns,
                                                                         "labels": {"app": svc}},
                     "spec": {"selector": {"app": w.service},
                              "ports": [{"name": "http", "port": w.port, "targetPort": w.port}]}})
    for w in scenario.workloads:
        if w.gateway:
            continue
        labels = {"app": w.service, "version": w.version}
        docs.append({"apiVersion": "apps/v1", "kind": "Deployment",
                     "metadata": {"name": w.name, "namespace": w.namespace, "labels": {"app": w.service}},
                     "spec": {"replicas": w.replicas, "selector": {"matchLabels": labels},
                              "template": {"metadata": {"labels": labels}, "spec": {
                                  "serviceAccountName": w.service_account,
                                  "containers": [{"name": w.service,
                                                  "image": f"registry.example.com/shop/{w.service}:{w.version}",
                                                  "ports": [{"containerPort": w.port, "name": "http"}]}]}}}})
    return docs


_SERVER_SET = ("creationTimestamp", "generation", "managedFields", "resourceVersion", "uid")


def _as_manifest(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource as Git holds it: without the metadata the API server sets (authored scenarios
    date their resources; a manifest never carries those fields)."""
    meta = resource.get("metadata", {})
    if not any(k in meta for k in _SERVER_SET):
        return resource
    return {**resource, "metadata": {k: v for k, v in meta.items() if k not in _SERVER_SET}}


class DirectoryNotEmpty(Exception):
    """The export directory holds files already (perhaps the user's edits)."""


def export_intended(name: str | None, directory: str | Path, *, force: bool = False) -> list[Path]:
    """Write the demo's Git manifests (``kubernetes.yaml``: Services and Deployments;
    ``istio.yaml``: VirtualServices, DestinationRules, Gateways, PeerAuthentications;
    ``appmesh.yaml``: the App Mesh CRDs of App Mesh demos) into
    ``directory``; returns the files written. For ``weight-drift`` they differ from the live
    cluster (a hand-edited retry count).

    Raises :class:`DirectoryNotEmpty` when ``directory`` exists and is not empty, unless
    ``force`` (then files of the same name are overwritten, others left alone)."""
    import yaml

    scenario = scenario_for(name)
    out = Path(directory)
    if not force and out.is_dir() and any(out.iterdir()):
        raise DirectoryNotEmpty(f"{out}: exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    files = [("kubernetes.yaml", _intended_kubernetes(scenario))]
    if scenario.intended_config():
        files.append(("istio.yaml", [_as_manifest(r) for r in scenario.intended_config()]))
    if scenario.appmesh_config:
        files.append(("appmesh.yaml", scenario.appmesh_config))
    for filename, docs in files:
        buf = io.StringIO()
        yaml.safe_dump_all(docs, buf, sort_keys=False, default_flow_style=False)
        path = out / filename
        path.write_text(buf.getvalue(), encoding="utf-8")
        written.append(path)
    return written
