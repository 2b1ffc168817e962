"""Certificates the proxies hold: workload identity, intermediates and roots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .refs import WorkloadRef


class CertRole(StrEnum):
    WORKLOAD = "workload"
    INTERMEDIATE = "intermediate"
    ROOT = "root"


@dataclass(frozen=True, slots=True)
class Cert:
    """One X.509 certificate, parsed from a proxy's secrets (or ``/certs``)."""

    serial: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    role: CertRole
    sans: tuple[str, ...] = ()
    proxy_id: str | None = None
    workload: WorkloadRef | None = None
    secret_name: str | None = None

    @property
    def spiffe_id(self) -> str | None:
        for san in self.sans:
            if san.startswith("spiffe://"):
                return san
        return None

    @property
    def trust_domain(self) -> str | None:
        sid = self.spiffe_id
        return sid[len("spiffe://"):].split("/", 1)[0] if sid else None

    @property
    def lifetime_s(self) -> float:
        return (self.not_after - self.not_before).total_seconds()

    def remaining_s(self, at: datetime) -> float:
        return (self.not_after - at).total_seconds()
