#!/usr/bin/env python3
"""Regenerate meshobs/istio_schema/schemas/ from the npm packages that publish Istio's CRD schemas.

Source: ``@kubernetes-models/istio@2.3.0`` (MIT, Tommy Chen), whose ``crd-generate`` step read
Istio 1.18.0's ``manifests/charts/base/crds/crd-all.gen.yaml`` (Apache-2.0, Istio Authors) and
embedded each CRD version's ``openAPIV3Schema`` (descriptions dropped, ``nullable: true`` added
to optional fields) as a JSON object literal in ``<group>/<version>/<Kind>.js``; ObjectMeta comes
from ``@kubernetes-models/apimachinery@1.2.2`` (MIT) the same way. Later releases of the package
(3.x) ship compiled validators only, without the schema, so 2.3.0 is the newest that carries it.

Fetch them with the ordinary client, then run this script::

    npm pack @kubernetes-models/istio@2.3.0 @kubernetes-models/apimachinery@1.2.2
    mkdir istio apimachinery
    tar xzf kubernetes-models-istio-2.3.0.tgz -C istio
    tar xzf kubernetes-models-apimachinery-1.2.2.tgz -C apimachinery
    python scripts/vendor_istio_schemas.py istio/package apimachinery/package

What it changes, and nothing else: OpenAPI's ``nullable: true`` becomes a JSON Schema type list
(``["string", "null"]``), and the ``$ref`` to ObjectMeta (and ObjectMeta's own refs) is inlined so
each file stands alone. Output: one compact JSON file per (group, version, kind), plus
``SOURCES.json`` with each file's source path and the tarballs' integrity hashes.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "meshobs" / "istio_schema" / "schemas"
GROUPS = ("networking.istio.io", "security.istio.io", "telemetry.istio.io", "extensions.istio.io")
_SCHEMA = re.compile(r"const schema = (\{.*?\n\});\n", re.S)
_REF_FILE = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta#": "IoK8sApimachineryPkgApisMetaV1ObjectMeta.js",
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time#": "IoK8sApimachineryPkgApisMetaV1Time.js",
    "io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry#": "IoK8sApimachineryPkgApisMetaV1ManagedFieldsEntry.js",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference#": "IoK8sApimachineryPkgApisMetaV1OwnerReference.js",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1#": "IoK8sApimachineryPkgApisMetaV1FieldsV1.js",
}


def _literal(path: Path) -> Any:
    match = _SCHEMA.search(path.read_text(encoding="utf-8"))
    if match is None:
        raise SystemExit(f"{path}: no 'const schema = {{...}};' literal (not a 2.x package?)")
    return json.loads(match.group(1))


def _convert(node: Any, refs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(x, refs) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _convert(refs[node["$ref"]], refs)
    out = {k: _convert(v, refs) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    # oneOf [{$ref: ObjectMeta}, {type: null}] is how the package spells a nullable reference.
    alts = out.get("oneOf")
    if isinstance(alts, list) and len(alts) == 2 and {"type": "null"} in alts and len(out) == 1:
        other = next(a for a in alts if a != {"type": "null"})
        if isinstance(other, dict) and isinstance(other.get("type"), str):
            other = {**other, "type": [other["type"], "null"]}
        return other
    return out


def _repo_path(url: str) -> str:
    """``.../istio/istio/1.18.0/manifests/...yaml`` -> ``istio/istio 1.18.0 manifests/...yaml``."""
    parts = url.split("/")
    try:
        at = parts.index("istio")
    except ValueError:
        return url
    return " ".join(["/".join(parts[at:at + 2]), parts[at + 2], "/".join(parts[at + 3:])])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    istio, apimachinery = (Path(a) for a in argv)
    refs = {ref: _literal(apimachinery / "_schemas" / name) for ref, name in _REF_FILE.items()
            if (apimachinery / "_schemas" / name).exists()}
    OUT.mkdir(parents=True, exist_ok=True)
    sources: dict[str, Any] = {}
    for group in GROUPS:
        for path in sorted((istio / group).glob("*/*.js")):
            if path.name == "index.js":
                continue
            version, kind = path.parent.name, path.stem
            schema = _convert(_literal(path), refs)
            name = f"{group}_{version}_{kind}.json"
            (OUT / name).write_text(json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n",
                                    encoding="utf-8")
            sources[name] = {"from": f"@kubernetes-models/istio/{group}/{version}/{kind}.js",
                             "sha256_of_source": hashlib.sha256(path.read_bytes()).hexdigest()}
    meta = json.loads((istio / "package.json").read_text(encoding="utf-8"))
    (OUT / "SOURCES.json").write_text(json.dumps({
        "package": f"{meta['name']}@{meta['version']}",
        # "istio/istio <tag> <path>": the CRD files the package was generated from.
        "crd_inputs": [_repo_path(u) for u in meta.get("crd-generate", {}).get("input", [])],
        "files": sources}, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {len(sources)} schemas into {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
