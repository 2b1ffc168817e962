"""Finding codes of the App Mesh configuration analyzers (MSH0267-MSH0271), over the
``appmesh.k8s.aws`` custom resources and the App Mesh API's shapes alike (the common layout of
``meshobs.appmesh_spec``)."""

from __future__ import annotations

from . import Code, Severity

CODES: list[Code] = [
    Code("MSH0267", Severity.WARNING, "App Mesh route weights do not add up to 100",
         "route {route} of VirtualRouter {virtual_router} weighs its targets {weights} (total {total}); "
         "{consequence}", effects=("errors", "routing")),
    Code("MSH0268", Severity.ERROR, "App Mesh names a virtual node that does not exist",
         "{kind} {name} {field} virtual node {target}, which does not exist in {scope}; {consequence}",
         effects=("errors", "routing")),
    Code("MSH0269", Severity.ERROR, "App Mesh names a virtual service or router that does not exist",
         "{kind} {name} {field} {target_kind} {target}, which does not exist in {scope}; {consequence}"),
    Code("MSH0270", Severity.ERROR, "App Mesh route and listener ports disagree",
         "{kind} {name}: {problem}"),
    Code("MSH0271", Severity.ERROR, "App Mesh TLS validation without a trust source",
         "{kind} {name} validates the peer's certificate ({where}) without a trust source: {problem}; "
         "{consequence}"),
]
