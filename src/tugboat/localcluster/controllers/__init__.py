"""The local cluster's simulated kubelets and built-in controllers (kwok and kube-controller-manager's job).

Every controller here is an ordinary API client of the server it runs next to: it watches through shared
informers and writes through the API, exactly as the real controllers do against a real cluster, so the
server's semantics (and its watch fan-out) are exercised by the simulation itself.
"""
