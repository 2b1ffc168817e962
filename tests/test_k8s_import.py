"""The kubernetes library is imported without its generated model and API classes (k8s_import),
and every name of its packages still resolves when used."""

from __future__ import annotations

import json
import subprocess
import sys

# Run in a fresh interpreter: the test process may have imported kubernetes the ordinary way.
PROBE = """
import json, sys
from meshobs.collectors.k8s_import import lazy_kubernetes
lazy_kubernetes()
lazy_kubernetes()  # idempotent
from kubernetes import client
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward
api = client.ApiClient(client.Configuration())
client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
client.AdmissionregistrationV1Api(api)
before = sorted(n for n in sys.modules if n.startswith("kubernetes.client.models."))
apis = sorted(n for n in sys.modules if n.startswith("kubernetes.client.api."))
import kubernetes
from kubernetes.client import V1Pod
pod = client.V1Pod(metadata=client.models.V1ObjectMeta(name="checkout-7f9c"))
try:
    client.NoSuchName
    missing = False
except AttributeError:
    missing = True
print(json.dumps({"models": before, "apis": apis, "version": kubernetes.__version__,
                  "client_version": client.__version__, "pod": api.sanitize_for_serialization(pod),
                  "same": V1Pod is client.V1Pod, "watch": kubernetes.watch.Watch.__name__,
                  "missing": missing, "exc": ApiException.__module__, "load": kconfig.load_kube_config.__name__}))
"""


def test_only_the_used_modules_are_imported_and_every_name_resolves() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert got["models"] == []  # no model class until one is used
    assert got["apis"] == sorted(f"kubernetes.client.api.{m}" for m in (
        "admissionregistration_v1_api", "apps_v1_api", "core_v1_api", "custom_objects_api"))
    assert got["version"] == got["client_version"] and got["version"][:1].isdigit()
    assert got["pod"] == {"metadata": {"name": "checkout-7f9c"}}
    assert got["same"] and got["missing"] and got["watch"] == "Watch"
    assert got["exc"] == "kubernetes.client.exceptions" and got["load"] == "load_kube_config"


def test_an_ordinary_import_first_is_left_alone() -> None:
    probe = ("import sys, kubernetes.client\nreal = sys.modules['kubernetes.client']\n"
             "from meshobs.collectors.k8s_import import lazy_kubernetes\nlazy_kubernetes()\n"
             "import kubernetes.client\nprint(sys.modules['kubernetes.client'] is real, "
             "'__getattr__' in vars(real), kubernetes.client.V1Pod.__name__)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "V1Pod"]
