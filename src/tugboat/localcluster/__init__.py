"""The embedded local cluster: a Kubernetes-compatible API server on SQLite (and, later, simulated nodes).

Other components never import this package: they reach the local cluster only through the Kubernetes
API, exactly as they reach a real cluster.
"""
