"""A real local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) on loopback.

The integration tests, the end-to-end tests and the demo all run against it, so it is part of the
product rather than of the test suite.
"""

from webapp_scaler_dev.devcluster.binaries import Binaries, find_binaries, gateway_api_crds, traefik_binary
from webapp_scaler_dev.devcluster.cluster import DevCluster, DevClusterError

__all__ = ["Binaries", "DevCluster", "DevClusterError", "find_binaries", "gateway_api_crds", "traefik_binary"]
