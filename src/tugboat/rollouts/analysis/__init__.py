"""Argo Rollouts analysis: AnalysisRun measurements, metric providers and condition evaluation."""
