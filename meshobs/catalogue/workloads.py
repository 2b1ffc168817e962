"""Finding codes of the injection and workload analyzers (MSH0260-MSH0266): namespaces and
their injection labels, proxy images, ``image: auto``, and Service ports (istioctl analyze's
IST0102, IST0123, IST0158, IST0146/IST0147, IST0118, IST0116/IST0137, IST0164)."""

from __future__ import annotations

from . import Code, Severity

CODES: list[Code] = [
    Code("MSH0260", Severity.WARNING, "mesh policies in a namespace outside the mesh",
         "namespace {namespace} is not in the mesh (no istio-injection, istio.io/rev or ambient label, and none "
         "of its {workload_count} workloads has a proxy), yet {resources} apply there; they do nothing"),
    Code("MSH0261", Severity.WARNING, "namespace injection labels conflict",
         "namespace {namespace} carries {labels}; {consequence}"),
    Code("MSH0262", Severity.WARNING, "pods of a namespace run different proxy images",
         "the proxies in namespace {namespace} run {count} images: {images}"),
    Code("MSH0263", Severity.ERROR, "image: auto without injection",
         "{workload} leaves its istio-proxy image to the injector (image: auto), but {why}; its pods try to pull "
         "an image called auto and never start"),
    Code("MSH0264", Severity.INFO, "Service port does not declare its protocol",
         "port {port} ({port_name}) of Service {service_name} does not declare its protocol (a name like http-..., "
         "grpc-..., tcp-..., or appProtocol); {consequence}"),
    Code("MSH0265", Severity.WARNING, "workload behind Services with conflicting ports",
         "{workload} is behind Services {service_names}, which {problem}"),
    Code("MSH0266", Severity.WARNING, "ExternalName Service port without a protocol",
         "port {port} ({port_name}) of ExternalName Service {service_name} ({external_name}) does not declare "
         "its protocol; Istio cannot sniff it for an ExternalName and treats it as TCP, so HTTP routing, "
         "retries and request metrics do not apply to it"),
]
