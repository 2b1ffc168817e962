"""What a cluster's transport socket does: ``istio_mutual``, ``mutual``, ``simple`` or ``disable``.

Shapes read (``pick`` handles snake_case and lowerCamelCase):

* v3 ``transport_socket`` named ``envoy.transport_sockets.tls`` (or ``tls``) with an
  ``UpstreamTlsContext``; Istio's ISTIO_MUTUAL presents the SDS certificate ``default`` and
  validates with the SDS ``ROOTCA`` (inside ``combined_validation_context``), ALPN ``istio``;
* ``transport_socket_matches`` (Istio auto mTLS): TLS to endpoints labelled ``tlsMode: istio``,
  plaintext (``raw_buffer``) to the others; such a cluster does mTLS wherever it can;
* wrapping sockets (``internal_upstream``, ``tap``) whose ``typed_config.transport_socket``
  says what is underneath;
* v2 (Envoy 1.12, Istio 1.3) ``tls_context`` directly on the cluster, with file certificates
  (``/etc/certs/cert-chain.pem``) and ALPN ``istio`` for ISTIO_MUTUAL.

A cluster with none of these sends plaintext: ``disable`` (the DestinationRule's word for it).
"""

from __future__ import annotations

from typing import Any

from meshobs.shape import as_list, as_map

from .clusters import pick

TLS_SOCKETS = frozenset({"envoy.transport_sockets.tls", "tls", "envoy.transport_sockets.tls.v3"})
PLAIN_SOCKETS = frozenset({"envoy.transport_sockets.raw_buffer", "raw_buffer", "raw_buffer.v3"})
ISTIO_CERT = "default"  # the SDS name of the workload certificate istio-agent serves
ISTIO_ROOT = "ROOTCA"


def _names(configs: Any) -> list[str]:
    return [str(c.get("name", "")) for c in as_list(configs) if isinstance(c, dict)]


def context_mode(ctx: dict[str, Any]) -> str:
    """An UpstreamTlsContext (or v2 ``tls_context``) -> ``istio_mutual`` | ``mutual`` | ``simple``."""
    common = pick(ctx, "common_tls_context") or {}
    cert_sds = _names(pick(common, "tls_certificate_sds_secret_configs"))
    has_cert = bool(cert_sds or pick(common, "tls_certificates"))
    combined = pick(common, "combined_validation_context") or {}
    validation = as_map(pick(combined, "validation_context_sds_secret_config")
                        or pick(common, "validation_context_sds_secret_config"))
    alpn = [str(a) for a in as_list(pick(common, "alpn_protocols"))]
    if has_cert and ((ISTIO_CERT in cert_sds and validation.get("name") == ISTIO_ROOT) or "istio" in alpn):
        return "istio_mutual"
    return "mutual" if has_cert else "simple"


def socket_mode(socket: Any) -> str | None:
    """A ``transport_socket`` -> its mode; None when it is of a kind not understood."""
    if not isinstance(socket, dict) or not socket:
        return "disable"
    name = str(socket.get("name", ""))
    typed = pick(socket, "typed_config") or socket.get("config") or {}
    type_url = str(typed.get("@type", "")) if isinstance(typed, dict) else ""
    if name in TLS_SOCKETS or type_url.endswith("UpstreamTlsContext"):
        return context_mode(typed if isinstance(typed, dict) else {})
    if name in PLAIN_SOCKETS or type_url.endswith("RawBuffer"):
        return "disable"
    inner = pick(typed, "transport_socket") if isinstance(typed, dict) else None
    if isinstance(inner, dict):  # internal_upstream, tap: a wrapper around the real socket
        return socket_mode(inner)
    return None


def cluster_tls(cluster: dict[str, Any]) -> str | None:
    """The TLS a cluster originates, in DestinationRule terms (lower case); None when unknown."""
    matches = pick(cluster, "transport_socket_matches")
    if isinstance(matches, list) and matches:
        modes = [socket_mode(pick(m, "transport_socket")) for m in matches if isinstance(m, dict)]
        # Auto mTLS: the match for tlsMode=istio carries the TLS socket, the catch-all plaintext.
        secured = [m for m in modes if m not in (None, "disable")]
        if secured:
            return secured[0]
        return "disable" if all(m == "disable" for m in modes) else None
    socket = pick(cluster, "transport_socket")
    if socket:
        return socket_mode(socket)
    legacy = pick(cluster, "tls_context")
    if isinstance(legacy, dict) and legacy:
        return context_mode(legacy)
    return "disable"
