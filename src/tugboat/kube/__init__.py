"""Kubernetes plumbing shared by every component: object model helpers, patches, selectors, clients.

Nothing here knows about Git, Rollouts or the local cluster; everything above it may use it.
"""
