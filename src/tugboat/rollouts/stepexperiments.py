"""The Rollout's side of Experiments: creating the experiment step's Experiment, cancelling and deleting.

A canary ``experiment`` step starts an Experiment owned by the Rollout (built by
:func:`tugboat.rollouts.experiments.experiment_for_step`) and waits for it to succeed; the Rollout records
it as ``status.canary.currentExperiment``. Every other Experiment it owns is cancelled (``spec.terminate``),
and finished ones are kept only up to the analysis history limits, as Argo Rollouts does
(``rollout/experiment.go``). The Experiment itself is run by the Experiment controller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tugboat.kube.client import Client, Obj
from tugboat.rollouts import crds, ownedobjects

phase_of = ownedobjects.phase_of
finished = ownedobjects.finished
to_delete = ownedobjects.to_delete


async def create_with_collisions(client: Client, body: Obj) -> Obj:
    """Create the step's Experiment ``body`` (owned by the Rollout) under the ``-N`` collision rule."""
    return await ownedobjects.create_with_collisions(client, crds.EXPERIMENT, body, separator="-")


async def cancel(client: Client, experiment: Mapping[str, Any] | None) -> None:
    """Ask an Experiment still going to stop (``spec.terminate: true``)."""
    await ownedobjects.cancel(client, crds.EXPERIMENT, experiment)


async def delete(client: Client, experiment: Mapping[str, Any]) -> None:
    await ownedobjects.delete(client, crds.EXPERIMENT, experiment)
