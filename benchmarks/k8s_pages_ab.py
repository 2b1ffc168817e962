"""The CPU of the Kubernetes list pages and their normalising: another checkout's code against
this one's, alternated in one process on the same pages (a loaded machine moves both alike).

    .venv/bin/python benchmarks/k8s_pages_ab.py --before /tmp/before-s28 --config /tmp/serve5k/meshobs.yaml \
        [--runs 7] [--out k8scpu-pages-s28]

The pages are read once from the served API of ``--config`` (its kubeconfig's server and token,
``limit=500`` as the collector pages): Services, Deployments, Pods. Then, ``--runs`` times each,
alternated, with the cycle collector paused (as ``meshobs.collect`` runs both):

* per resource, the pipeline of ``KubernetesCollector._read_pages``: decode and minimise every
  page, merge, encode the body (before: ``loads_standard`` + ``minimise_document``; after: the
  typed page decoder, falling back as the collector does). The bodies must be byte-identical.
* ``objects_to_part`` of the merged Services and Deployments (the graph phase's normalising),
  before's module against this one's. The parts must be equal.

The "before" modules are loaded from the other checkout's files but import the rest of meshobs
from this one (the model, redact...): what is compared is those two modules' own code.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent.parent
RESOURCES = {"services": "/api/v1/services", "deployments": "/apis/apps/v1/deployments", "pods": "/api/v1/pods"}


def _module(tree: str, rel: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, Path(tree) / rel)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pages(config: str) -> dict[str, list[bytes]]:
    cfg = yaml.safe_load(Path(config).read_text())
    kube = yaml.safe_load(Path(cfg["sources"]["kubernetes"]["kubeconfig"]).read_text())
    server = kube["clusters"][0]["cluster"]["server"].rstrip("/")
    headers = {"Authorization": f"Bearer {kube['users'][0]['user']['token']}"}
    out: dict[str, list[bytes]] = {}
    for resource, path in RESOURCES.items():
        out[resource], token = [], None
        while True:
            url = f"{server}{path}?limit=500" + (f"&continue={token}" if token else "")
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as resp:
                data = resp.read()
            out[resource].append(data)
            token = (json.loads(data).get("metadata") or {}).get("continue")
            if not token:
                break
    return out


def _median_pair(run: Any, runs: int) -> tuple[float, float]:
    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(runs):
        for side in ("before", "after"):
            start = time.process_time()
            run(side)
            times[side].append(time.process_time() - start)
    return statistics.median(times["before"]), statistics.median(times["after"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the other checkout")
    parser.add_argument("--config", required=True, help="a served mesh's meshobs.yaml")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", help="write benchmarks/results/NAME.md and NAME.json too")
    args = parser.parse_args()
    from meshobs.collectors import k8s_minimise, k8s_objects
    from meshobs.collectors.k8s_minimise_typed import minimised_page
    from meshobs.model import Layer
    from meshobs.shape import dumps_compact, loads_standard

    old_min = _module(args.before, "collectors/k8s_minimise.py", "before_k8s_minimise")
    old_obj = _module(args.before, "collectors/k8s_objects.py", "before_k8s_objects")
    pages = _pages(args.config)
    gc.disable()
    load = os.getloadavg()

    def pipeline(side: str, resource: str) -> tuple[str, dict[str, Any]]:
        items: list[Any] = []
        first: dict[str, Any] | None = None
        for data in pages[resource]:
            typed = minimised_page(data, resource) if side == "after" else None
            if typed is not None:
                doc = typed[0]
            else:
                doc = (old_min if side == "before" else k8s_minimise).minimise_document(loads_standard(data)[0])
            items.extend(doc["items"])
            first = first or doc
        assert first is not None
        merged = {**first, "items": items, "metadata": {}}
        return dumps_compact(merged, True), merged

    rows, record = [], {}
    merged = {}
    for resource in pages:
        before, after = pipeline("before", resource), pipeline("after", resource)
        assert before[0] == after[0], f"{resource}: the bodies differ"
        merged[resource] = after[1]
        b, a = _median_pair(lambda side, r=resource: pipeline(side, r), args.runs)
        rows.append((f"{resource}: {len(pages[resource])} pages, decode + minimise + encode", b, a))
    objects = [(o, "kubernetes") for r in ("services", "deployments") for o in k8s_objects.flatten_objects(merged[r])]
    modules = {"before": old_obj, "after": k8s_objects}
    parts = {side: m.objects_to_part(objects, Layer.LIVE, []) for side, m in modules.items()}
    assert parts["before"] == parts["after"], "the SnapshotParts differ"
    b, a = _median_pair(lambda side: modules[side].objects_to_part(objects, Layer.LIVE, []), args.runs)
    rows.append((f"objects_to_part: {len(parts['after'].services):,} Services, "
                 f"{len(parts['after'].workloads):,} Deployments", b, a))
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
             f"{', '.join(f'{x:.1f}' for x in load)}; before: {args.before}, after: {HERE}; CPU seconds "
             f"(process time, cycle collector paused), median of {args.runs}, alternated in one process.", "",
             "| step | before s | after s | after/before |", "|---|---|---|---|"]
    for name, b, a in rows:
        lines.append(f"| {name} | {b:.4f} | {a:.4f} | x{a / b:.2f} |")
        record[name] = {"before": b, "after": a}
    lines += ["", "Bodies byte-identical and SnapshotParts equal: asserted before timing."]
    text = "\n".join(lines)
    print(text)
    if args.out:
        out = HERE / "benchmarks" / "results"
        (out / f"{args.out}.md").write_text("# Kubernetes list pages and their normalising: CPU, A/B\n\n" + text + "\n")
        (out / f"{args.out}.json").write_text(json.dumps({"load": load, "runs": args.runs, "steps": record}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
