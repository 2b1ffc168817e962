"""The dashboard's screens: overview, service, findings, help."""
