"""Tugboat's API server and web UI (Argo CD's server and the Rollouts dashboard in one)."""
