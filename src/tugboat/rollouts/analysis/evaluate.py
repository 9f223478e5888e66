"""One measurement's outcome from its result and the metric's two conditions.

Argo Rollouts decides each measurement the same way for every provider (``EvaluateResult`` in
``utils/evaluate/evaluate.go``): the metric's ``successCondition`` and ``failureCondition`` are evaluated
over the provider's result, and the pair of answers gives Successful, Failed or Inconclusive. An error in
either condition makes the measurement Error; the caller turns :class:`expr.ExpressionError` into that
phase, with this module's message, which names the condition and its text as Argo's does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tugboat.rollouts.analysis import expr

SUCCESSFUL = "Successful"
FAILED = "Failed"
INCONCLUSIVE = "Inconclusive"

_NO_DATA = "metric result is nil or empty: no data returned from the metric provider"


def measurement_phase(result: Any, *, success: str | None, failure: str | None) -> str:
    """Argo's rules: no conditions → Successful; only success → Successful or Failed; only failure →
    Failed when it holds, else Successful; both → failure wins, then success, else Inconclusive.

    An empty condition counts as absent. Raises :class:`expr.ExpressionError` when a condition fails to
    compile or evaluate, or does not return a bool.
    """
    succeeded = _holds("successCondition", success, result) if success else False
    failed = _holds("failureCondition", failure, result) if failure else False
    if not success and not failure:
        return SUCCESSFUL
    if not failure:
        failed = not succeeded
    elif not success:
        succeeded = not failed
    if failed:
        return FAILED
    return SUCCESSFUL if succeeded else INCONCLUSIVE


def _holds(name: str, condition: str, result: Any) -> bool:
    try:
        return expr.evaluate_condition(condition, result)
    except expr.ExpressionError as err:
        # Like Argo, say plainly when the provider returned nothing: that is the usual cause.
        reason = f"{_NO_DATA}; {err}" if _nil_or_empty(result) else str(err)
        raise expr.ExpressionError(f'could not evaluate {name} "{condition}": {reason}') from err


def _nil_or_empty(result: Any) -> bool:
    return result is None or (isinstance(result, Sequence) and not isinstance(result, str) and not result)
