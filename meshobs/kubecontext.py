"""Is ``sources.kubernetes.context`` a context of the kubeconfig it will be read from?

A context that is not there is a configuration error (exit 2, one line naming the key, the file
and the contexts it has), asked once the Kubernetes source has failed; the Kubernetes client's own
message ("Invalid kube-config file. Expected key contexts ...") made it look like a damaged
file, and a run without its Kubernetes source then exited 3 ("could not check"), or 0 when
other sources vouched for the services. Anything else about the kubeconfig (missing, not
YAML, a broken user) stays the Kubernetes source's failure, reported as before.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SHOWN = 5  # context names listed in the message


def kubeconfig_paths(section: Mapping[str, Any]) -> list[Path]:
    """The files the client reads, as :func:`meshobs.collectors.kubernetes.load_configuration`
    picks them: ``kubeconfig``, else ``$KUBECONFIG`` (a list), else ``~/.kube/config``."""
    given = section.get("kubeconfig") or os.environ.get("KUBECONFIG") or "~/.kube/config"
    return [Path(p).expanduser() for p in str(given).split(os.pathsep) if p]


def unknown_context(section: Mapping[str, Any] | None) -> str | None:
    """A sentence saying the configured context is in none of the kubeconfig files; None when it
    is, when no context is configured, or when the files cannot be read (the source says why)."""
    if not isinstance(section, Mapping) or not isinstance(section.get("context"), str):
        return None
    context = section["context"]
    paths = [p for p in kubeconfig_paths(section) if p.is_file()]
    if not paths:
        return None
    import yaml

    names: list[str] = []
    for path in paths:
        try:
            doc = yaml.load(path.read_bytes(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except (OSError, yaml.YAMLError):
            return None
        entries = doc.get("contexts") if isinstance(doc, dict) else None
        if entries is None:
            continue
        if not isinstance(entries, list):
            return None
        names += [e["name"] for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)]
    if context in names:
        return None
    where = ", ".join(str(p) for p in paths)
    known = sorted(set(names))
    if len(known) > SHOWN:  # a kubeconfig of many clusters: the names closest to the one given
        import difflib

        close = difflib.get_close_matches(context, known, n=SHOWN, cutoff=0.0)
        has = f"{len(known)} contexts, the closest: {', '.join(close)}"
    else:
        has = f"its contexts: {', '.join(known)}" if known else "it has no contexts"
    return (f"sources.kubernetes.context: no context {context!r} in the kubeconfig {where} ({has}); "
            f"set sources.kubernetes.context to one of them, or sources.kubernetes.kubeconfig to the file "
            f"that has it")
