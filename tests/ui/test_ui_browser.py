"""The web UI in a real browser over a real system: issue 8's check, following the seed's processes.

``tugboat up`` runs the local cluster, both controllers and the API server with the UI (ui_support.py);
Debian's chromium, driven by Playwright, does what a user does: logs in, sees the demo Applications
Synced + Healthy, opens one and its resource tree (and a Pod's logs), syncs it from the sync dialog,
commits a canary version that pauses, watches the Rollout page reach Paused, promotes it from the UI and
sees it Healthy, then commits a failing version and sees the rollout abort and the Application turn
Synced + Degraded.
Each page is saved as a full-page screenshot under ``artifacts/screenshots/`` of the repository.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from ui_support import System, commit_canary, start_system

from tugboat.cli import demoapps

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
APP = demoapps.app_name(demoapps.CANARY)
APP_PATH = f"/applications/{demoapps.CONTROL_NAMESPACE}/{APP}"
ROLLOUT_PATH = f"/rollouts/{demoapps.namespace(demoapps.CANARY)}/{demoapps.ROLLOUT_NAME}"
LONG = 60_000  # ms: a rollout step, an analysis run, a sync
START = 90_000  # ms: the demo's first sync after `up`


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    running = start_system(tmp_path_factory.mktemp("ui") / "state")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, system: System) -> Iterator[Page]:
    context = browser.new_context(base_url=system.url, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(20_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def api(page: Page, path: str) -> Any:
    """GET from the API with the browser's session (its cookie)."""
    response = page.request.get(path)
    assert response.ok, f"GET {path}: {response.status} {response.text()}"
    return response.json()


def operation(page: Page) -> dict[str, Any]:
    app = api(page, f"/api/v1/applications/{APP}")
    state: dict[str, Any] = (app.get("status") or {}).get("operationState") or {}
    return state


def wait_for(page: Page, check: Any, *, what: str, timeout_ms: int = LONG) -> Any:
    """Poll ``check()`` (an API look, not a page element) until it is truthy."""
    waited = 0
    while waited <= timeout_ms:
        found = check()
        if found:
            return found
        page.wait_for_timeout(500)
        waited += 500
    raise AssertionError(f"timed out waiting for {what}")


def log_in(page: Page, system: System) -> None:
    page.goto("/login")
    expect(page.get_by_test_id("login-username")).to_be_visible()
    shot(page, "login")
    page.get_by_test_id("login-username").fill("admin")
    page.get_by_test_id("login-password").fill(system.password)
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(f"{system.url}/applications", timeout=20_000)


def see_applications_healthy(page: Page) -> None:
    for name in demoapps.APP_NAMES:
        tile = page.locator(f'[data-testid="app-tile"][data-name="{name}"]')
        expect(tile.get_by_test_id("sync-status")).to_have_attribute("data-status", "Synced", timeout=START)
        expect(tile.get_by_test_id("health-status")).to_have_attribute(
            "data-status", "Healthy", timeout=START
        )
    shot(page, "applications")


def open_tree_and_sync(page: Page, system: System) -> None:
    page.locator(f'[data-testid="app-tile"][data-name="{APP}"]').click()
    expect(page).to_have_url(f"{system.url}{APP_PATH}")
    expect(page.get_by_test_id("app-header")).to_be_visible()
    tree = page.get_by_test_id("resource-tree")
    for kind in ("Rollout", "ReplicaSet", "Pod"):
        expect(tree.locator(f'[data-testid="tree-node"][data-kind="{kind}"]').first).to_be_visible(
            timeout=LONG
        )
    shot(page, "application-tree")
    see_pod_logs(page)

    before = operation(page).get("startedAt")
    page.get_by_test_id("app-sync").click()
    page.get_by_test_id("dialog-confirm").click()
    done = wait_for(
        page,
        lambda: (
            (state := operation(page)).get("startedAt") != before
            and state.get("phase") in ("Succeeded", "Failed", "Error")
            and state
        ),
        what="the sync operation started from the dialog to finish",
    )
    assert done["phase"] == "Succeeded", done
    expect(page.get_by_test_id("app-header").get_by_test_id("sync-status")).to_have_attribute(
        "data-status", "Synced", timeout=LONG
    )
    page.get_by_test_id("tab-history").click()
    expect(page.get_by_test_id("history-row").nth(1)).to_be_visible()  # the automated sync, then ours
    # Each revision's commit message, read from Git by the server.
    expect(page.get_by_test_id("commit-message").first).not_to_be_empty(timeout=30_000)
    shot(page, "application-history")


def see_pod_logs(page: Page) -> None:
    """A Pod's side panel shows its container's log lines (the simulated cluster writes logfmt lines)."""
    page.locator('[data-testid="tree-node"][data-kind="Pod"]').first.click()
    page.get_by_test_id("panel-tab-logs").click()
    expect(page.get_by_test_id("pod-logs")).to_contain_text("level=", timeout=LONG)
    shot(page, "pod-logs")
    page.get_by_test_id("panel-close").click()
    expect(page.get_by_test_id("resource-panel")).to_have_count(0)


def rollout_phase(page: Page) -> Any:
    return expect(page.get_by_test_id("rollout-header").get_by_test_id("phase-status"))


def pause_and_promote(page: Page, system: System) -> None:
    commit_canary(
        system.state_dir,
        image=demoapps.good_image(2),
        pause_until_promoted=True,
        message="ui test: canary to v2, pausing for a promotion",
    )
    page.goto(ROLLOUT_PATH)
    expect(page.get_by_test_id("rollout-header")).to_contain_text(demoapps.good_image(2), timeout=LONG)
    rollout_phase(page).to_have_attribute("data-status", "Paused", timeout=LONG)
    current = page.locator('[data-testid="rollout-step"][data-current="true"]')
    expect(current).to_have_attribute("data-index", "1")
    expect(page.get_by_test_id("rollout-weight")).to_have_attribute("data-weight", "25")
    expect(page.locator('[data-testid="rollout-revision"]')).to_have_count(2)
    shot(page, "rollout-paused")

    page.get_by_test_id("rollout-promote").click()
    rollout_phase(page).to_have_attribute("data-status", "Healthy", timeout=LONG)
    info = api(page, f"/api/v1/rollouts{ROLLOUT_PATH.removeprefix('/rollouts')}/info")
    if "analysisRuns" in info:  # the analysis panel, where the server reports runs
        run = page.locator('[data-testid="analysis-run"][data-status="Successful"]').first
        expect(run).to_be_visible(timeout=LONG)


def fail_and_abort(page: Page, system: System) -> None:
    bad = demoapps.failing_image(3, demoapps.CANARY)
    commit_canary(system.state_dir, image=bad, pause_until_promoted=False, message="ui test: failing canary")
    expect(page.get_by_test_id("rollout-header")).to_contain_text(bad, timeout=LONG)
    rollout_phase(page).to_have_attribute("data-status", "Degraded", timeout=LONG)
    expect(page.get_by_test_id("rollout-message")).to_contain_text("RolloutAborted")
    expect(page.get_by_test_id("rollout-retry")).to_be_enabled()
    info = api(page, f"/api/v1/rollouts{ROLLOUT_PATH.removeprefix('/rollouts')}/info")
    if "analysisRuns" in info:
        expect(page.locator('[data-testid="analysis-run"][data-status="Failed"]').first).to_be_visible()
    shot(page, "rollout-aborted")


def see_application_degraded(page: Page, system: System) -> None:
    page.get_by_test_id("rollout-app-link").click()
    expect(page).to_have_url(f"{system.url}{APP_PATH}")
    header = page.get_by_test_id("app-header")
    expect(header.get_by_test_id("sync-status")).to_have_attribute("data-status", "Synced", timeout=LONG)
    expect(header.get_by_test_id("health-status")).to_have_attribute("data-status", "Degraded", timeout=LONG)


def see_rollouts_list(page: Page, system: System) -> None:
    page.goto("/rollouts")  # every namespace the Applications deploy to
    rows = page.get_by_test_id("rollout-row")
    canary = rows.and_(page.locator(f'[data-namespace="{demoapps.namespace(demoapps.CANARY)}"]'))
    bluegreen = rows.and_(page.locator(f'[data-namespace="{demoapps.namespace(demoapps.BLUEGREEN)}"]'))
    expect(canary.get_by_test_id("phase-status")).to_have_attribute("data-status", "Degraded")
    expect(bluegreen.get_by_test_id("phase-status")).to_have_attribute("data-status", "Healthy")
    shot(page, "rollouts-list")
    canary.get_by_role("link").first.click()
    expect(page).to_have_url(f"{system.url}{ROLLOUT_PATH}")
    expect(page.get_by_test_id("rollout-header")).to_be_visible()


def test_seed_processes_through_the_ui(page: Page, system: System) -> None:
    """One scenario (the steps depend on each other, and the system starts once)."""
    assert shutil.which("git"), "the demo repository needs git"
    log_in(page, system)
    see_applications_healthy(page)
    open_tree_and_sync(page, system)
    pause_and_promote(page, system)
    fail_and_abort(page, system)
    see_application_degraded(page, system)
    see_rollouts_list(page, system)
