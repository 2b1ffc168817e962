"""meshobs: one service-graph model for Istio and App Mesh, and a diagnosis engine over it."""

__version__ = "0.1.0"
