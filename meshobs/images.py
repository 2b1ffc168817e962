"""Container image references, read one way: ``registry[:port]/path/name[:tag][@digest]``.

The grammar is the distribution project's (the reference package Docker and containerd use):
the digest follows ``@``; the tag follows the last colon of the last path component (a colon
before the last slash is a registry's port); the first component is a registry only when more
components follow and it holds a dot, a colon or a capital, or is ``localhost`` (``docker.io/istio/ztunnel``,
``registry.local:5000/ztunnel``), else it is part of the path (``istio/ztunnel`` on Docker Hub).
A reference is not validated: what it names is read, whatever it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The repository name of ambient's node proxy, Istio's ztunnel.
NODE_PROXY = "ztunnel"


@dataclass(frozen=True, slots=True)
class ImageRef:
    """One image reference, taken apart (``gcr.io/istio-release/ztunnel:1.24.2-distroless``)."""

    registry: str | None  # gcr.io; None: the default registry
    path: str  # istio-release/ztunnel: the repository, its registry aside
    tag: str | None = None  # 1.24.2-distroless
    digest: str | None = None  # sha256:...

    @property
    def name(self) -> str:
        """The repository's own name, its last path component (``ztunnel``)."""
        return self.path.rsplit("/", 1)[-1]


def parse_image(reference: str) -> ImageRef:
    """``reference`` taken apart (see the module's docstring)."""
    rest, at, digest = reference.partition("@")
    tag = None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1:]
    registry = None
    first, slash, path = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        registry, rest = first, path
    return ImageRef(registry, rest, tag or None, digest if at and digest else None)


def node_proxy_image(image: Any) -> bool:
    """Is ``image`` ambient's node proxy, Istio's ztunnel? Its DaemonSet (one pod per node)
    names its container ``istio-proxy`` like a sidecar's, but it is a node's layer-4 proxy, the
    sidecar of no workload. Told by the image's repository name alone, whatever its registry,
    path, tag or digest (``gcr.io/istio-release/ztunnel:1.24.2-distroless``), never by the
    namespace or the pod's name, which an installation chooses."""
    # The substring first: a sidecar's image (every other pod) is not taken apart.
    return isinstance(image, str) and NODE_PROXY in image and parse_image(image).name == NODE_PROXY
