"""The GitOps controller: Git to rendered manifests to live objects, with Argo CD's semantics."""
