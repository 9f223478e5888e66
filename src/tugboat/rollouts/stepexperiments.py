"""The Rollout's side of Experiments: the experiment step's Experiment and its name-collision rule.

A canary ``experiment`` step starts an Experiment owned by the Rollout (built by
:func:`tugboat.rollouts.experiments.experiment_for_step`) and waits for it to succeed; the Rollout records
it as ``status.canary.currentExperiment``; the others it owns are retired by
:func:`tugboat.rollouts.ownedobjects.retire` (``rollout/experiment.go``). The Experiment itself is run by
the Experiment controller.
"""

from __future__ import annotations

from tugboat.kube.client import Client, Obj
from tugboat.rollouts import crds, ownedobjects

phase_of = ownedobjects.phase_of


async def create_with_collisions(client: Client, body: Obj) -> Obj:
    """Create the step's Experiment ``body`` (owned by the Rollout) under the ``-N`` collision rule."""
    return await ownedobjects.create_with_collisions(client, crds.EXPERIMENT, body, separator="-")
