"""The rollout controller: blue-green and canary Rollouts with Argo Rollouts' semantics."""
