"""A measurement's phase from its result and the metric's success and failure conditions (EvaluateResult)."""

from __future__ import annotations

from typing import Any

import pytest

from tugboat.rollouts.analysis import evaluate, expr


@pytest.mark.parametrize(
    ("success", "failure", "phase"),
    [
        # no conditions: always Successful
        (None, None, evaluate.SUCCESSFUL),
        ("", "", evaluate.SUCCESSFUL),
        # only a success condition: not successful means Failed
        ("true", None, evaluate.SUCCESSFUL),
        ("false", None, evaluate.FAILED),
        ("false", "", evaluate.FAILED),
        # only a failure condition: not failing means Successful
        (None, "true", evaluate.FAILED),
        (None, "false", evaluate.SUCCESSFUL),
        ("", "false", evaluate.SUCCESSFUL),
        # both: failure wins, then success, else Inconclusive
        ("true", "true", evaluate.FAILED),
        ("false", "true", evaluate.FAILED),
        ("true", "false", evaluate.SUCCESSFUL),
        ("false", "false", evaluate.INCONCLUSIVE),
    ],
)
def test_phase_table(success: str | None, failure: str | None, phase: str) -> None:
    assert evaluate.measurement_phase(True, success=success, failure=failure) == phase


@pytest.mark.parametrize(
    ("result", "phase"),
    [([0.99], evaluate.SUCCESSFUL), ([0.5], evaluate.FAILED), ([0.8], evaluate.INCONCLUSIVE)],
)
def test_conditions_read_the_result(result: list[float], phase: str) -> None:
    assert evaluate.measurement_phase(result, success="result[0] >= 0.95", failure="result[0] < 0.7") == phase


def test_constants_are_argos_phase_names() -> None:
    assert (evaluate.SUCCESSFUL, evaluate.FAILED, evaluate.INCONCLUSIVE) == (
        "Successful",
        "Failed",
        "Inconclusive",
    )


@pytest.mark.parametrize(
    ("success", "failure", "named"),
    [
        ("a == true", "true", "could not evaluate successCondition \"a == true\": unknown name 'a'"),
        ("true", "invalidVar == true", 'could not evaluate failureCondition "invalidVar == true"'),
        ("result ==", None, 'could not evaluate successCondition "result ==": syntax error'),
        ("1", None, "condition must return a bool, got int"),
        (
            None,
            "'yes'",
            "could not evaluate failureCondition \"'yes'\": condition must return a bool, got string",
        ),
    ],
)
def test_condition_errors_name_the_condition(success: str | None, failure: str | None, named: str) -> None:
    with pytest.raises(expr.ExpressionError) as caught:
        evaluate.measurement_phase(True, success=success, failure=failure)
    assert named in str(caught.value)
    assert isinstance(caught.value.__cause__, expr.ExpressionError)


@pytest.mark.parametrize("result", [None, [], ()])
def test_no_data_is_said_plainly(result: Any) -> None:
    with pytest.raises(expr.ExpressionError) as caught:
        evaluate.measurement_phase(result, success="result[0] >= 0.95", failure=None)
    message = str(caught.value)
    assert message.startswith('could not evaluate successCondition "result[0] >= 0.95": ')
    assert "metric result is nil or empty: no data returned from the metric provider" in message


def test_conditions_that_handle_missing_data_still_decide() -> None:
    assert (
        evaluate.measurement_phase(None, success="isNil(result) || result[0] > 1", failure=None)
        == evaluate.SUCCESSFUL
    )
    assert (
        evaluate.measurement_phase([], success="len(result) > 0 && result[0] > 1", failure=None)
        == evaluate.FAILED
    )


def test_web_results_and_string_results() -> None:
    web = {"data": {"ok": True, "latency": "120"}}
    assert (
        evaluate.measurement_phase(
            web, success="result.data.ok && asInt(result.data.latency) < 200", failure=None
        )
        == evaluate.SUCCESSFUL
    )
    assert evaluate.measurement_phase("It worked!", success="result == 'It worked!'", failure=None) == (
        evaluate.SUCCESSFUL
    )
