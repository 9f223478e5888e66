"""Small helpers with no knowledge of Kubernetes or of any Tugboat component (the innermost layer)."""
