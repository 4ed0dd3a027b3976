"""webapp-scaler: scale web applications in KubeVirt VMs by their active user sessions."""

__version__ = "0.1.0"
