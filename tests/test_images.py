"""Container image references, taken apart one way (meshobs.images): what names the image
(its repository, and that repository's own name) apart from where it is pulled from and which
build (tag, digest)."""

from __future__ import annotations

import pytest

from meshobs.images import ImageRef, parse_image

DIGEST = "sha256:" + "4f1c9a0d2e7b" * 5 + "9c3e"


@pytest.mark.parametrize(("reference", "expected"), [
    ("ztunnel", ImageRef(None, "ztunnel")),
    ("istio/ztunnel:1.24.2", ImageRef(None, "istio/ztunnel", "1.24.2")),
    ("docker.io/istio/ztunnel:1.24.2", ImageRef("docker.io", "istio/ztunnel", "1.24.2")),
    (f"gcr.io/istio-release/ztunnel:1.24.2-distroless@{DIGEST}",
     ImageRef("gcr.io", "istio-release/ztunnel", "1.24.2-distroless", DIGEST)),
    (f"registry.internal:5000/mirror/istio/ztunnel@{DIGEST}",
     ImageRef("registry.internal:5000", "mirror/istio/ztunnel", None, DIGEST)),
    (f"registry.internal:5000/mirror/istio/ztunnel:1.24.2@{DIGEST}",
     ImageRef("registry.internal:5000", "mirror/istio/ztunnel", "1.24.2", DIGEST)),
    ("localhost:5000/ztunnel:dev", ImageRef("localhost:5000", "ztunnel", "dev")),
    ("localhost/ztunnel", ImageRef("localhost", "ztunnel")),
    ("ztunnel/proxyv2:1.24.2", ImageRef(None, "ztunnel/proxyv2", "1.24.2")),  # Docker Hub user "ztunnel"
    ("registry.example:5000/ztunnel/proxyv2:1.24.2", ImageRef("registry.example:5000", "ztunnel/proxyv2", "1.24.2")),
    ("ztunnel.registry.example/istio/proxyv2:1.24.2", ImageRef("ztunnel.registry.example", "istio/proxyv2", "1.24.2")),
    ("MyRegistry/istio/proxyv2", ImageRef("MyRegistry", "istio/proxyv2")),
    ("auto", ImageRef(None, "auto")),
    ("", ImageRef(None, "")),
])
def test_an_image_reference_is_taken_apart_one_way(reference: str, expected: ImageRef) -> None:
    assert parse_image(reference) == expected


@pytest.mark.parametrize(("reference", "name"), [
    (f"gcr.io/istio-release/ztunnel:1.24.2-distroless@{DIGEST}", "ztunnel"),
    ("registry.example:5000/ztunnel/proxyv2:1.24.2", "proxyv2"),
    ("ztunnel:1.24.2", "ztunnel"),
    ("localhost:5000", "localhost"),  # no path after it: a name and a tag, as Docker reads it
])
def test_the_repository_name_is_its_last_path_component(reference: str, name: str) -> None:
    assert parse_image(reference).name == name
