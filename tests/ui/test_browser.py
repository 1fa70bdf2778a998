"""The app in a real headless Chromium: submit the prediction form, use the Control page, keep screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from covertype.stack.processes import free_port
from covertype.stack.serving import streamlit_ui
from tests.conftest import TrainedProject, TwoVersions

pytestmark = pytest.mark.integration


@pytest.fixture
def app_url(
    tmp_path: Path, champion_service: str, trained_project: TrainedProject, running_batch_api: str
) -> Iterator[str]:
    """`streamlit run` of the app, pointed at the session's service and registry and a batch API."""
    port = free_port()
    env = {**trained_project.env, "COVERTYPE_BATCH_API_URL": running_batch_api, "COVERTYPE_GROUP_NUMBER": "3"}
    with streamlit_ui(port, tmp_path / "streamlit", champion_service, env):
        yield f"http://127.0.0.1:{port}"


def in_view(driver: webdriver.Chrome, element: object) -> bool:
    """Whether the whole element is inside the window as it is, without scrolling."""
    return driver.execute_script(
        "const box = arguments[0].getBoundingClientRect();"
        "return box.top >= 0 && box.bottom <= window.innerHeight && box.height > 0;",
        element,
    )


def test_a_person_picks_a_version_submits_the_prediction_form_and_sees_which_version_answered(
    app_url, chromium, tmp_path, two_versions: TwoVersions
):
    chromium.get(app_url)
    wait = WebDriverWait(chromium, 90)
    picker = wait.until(
        expected_conditions.element_to_be_clickable(
            (By.XPATH, "//input[@role='combobox' and @aria-label='Model version']")
        )
    )
    picker.click()
    challenger = f"Version {two_versions.challenger} @challenger"
    wait.until(
        expected_conditions.element_to_be_clickable(
            (By.XPATH, f"//*[@role='option'][starts-with(normalize-space(.), '{challenger}')]")
        )
    ).click()
    submit = wait.until(
        expected_conditions.element_to_be_clickable((By.XPATH, "//button[.//p[text()='Predict']]"))
    )
    submit.click()
    wait.until(
        expected_conditions.text_to_be_present_in_element(
            (By.TAG_NAME, "body"), f"answered by version {two_versions.challenger} (@challenger)"
        )
    )
    chart = wait.until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "[data-testid='stVegaLiteChart']"))
    )
    answer = chromium.find_element(By.XPATH, "//p[contains(., 'answered by version')]")
    assert in_view(chromium, answer) and in_view(chromium, chart), (
        "the answer is where the eye is, unscrolled"
    )
    assert not chromium.find_elements(By.CSS_SELECTOR, "[data-testid='stAppDeployButton']")
    assert "Deploy" not in chromium.find_element(By.TAG_NAME, "header").text
    screenshot = tmp_path / "predict_page.png"
    assert chromium.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")


def test_a_person_sees_the_services_and_the_batch_on_the_control_page_and_reloads_the_service(
    app_url, chromium, tmp_path, running_batch_api
):
    httpx.get(f"{running_batch_api}/data", params={"group_number": 3}).raise_for_status()
    chromium.get(f"{app_url}/control")
    wait = WebDriverWait(chromium, 90)
    wait.until(expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "body"), "Current batch"))
    wait.until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "[data-testid='stDataFrame']"))
    )
    reload = wait.until(
        expected_conditions.element_to_be_clickable(
            (By.XPATH, "//button[.//p[text()='Reload the champion']]")
        )
    )
    reload.click()
    wait.until(
        lambda driver: any(
            phrase in driver.find_element(By.TAG_NAME, "body").text
            for phrase in ("nothing to load", "now serving version")
        )
    )
    assert "1 of 10" in chromium.find_element(By.TAG_NAME, "body").text, "group 3 is on its first batch"
    screenshot = tmp_path / "control_page.png"
    assert chromium.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
    print(f"screenshot: {screenshot}")
