"""Take the README's screenshot of the labeling page, ``docs/labeling.png``.

Run from the repository root: ``python scripts/labeling_screenshot.py``. It needs what the
browser test needs: Debian's ``chromium`` and ``chromium-driver``, and ``selenium``. The page
shows real comparisons: pairs of the SmolLM2 samples shipped as the sentiment task's
demonstrations, with the task's description as the guideline; the labeler on screen has already
labeled a few.
"""

import json
import tempfile
from collections import defaultdict
from importlib.resources import files
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from rlhf_gym.commands.serve_reward import bind_tcp
from rlhf_gym.preferences import PreferenceStore, build_labeling_app, pair_up
from rlhf_gym.preferences.web import serving
from rlhf_gym.tasks import get_task

TARGET = Path(__file__).resolve().parents[1] / "docs/labeling.png"
PROMPTS = 8
ALREADY_LABELED = 5
WINDOW = "1200,720"


def sentiment_comparisons(store: PreferenceStore) -> None:
    """Queue pairs of the shipped demonstrations of the first ``PROMPTS`` prompts; label some."""
    task = get_task("sentiment")
    text = files("rlhf_gym.tasks").joinpath("data", task.demonstrations_resource).read_text()
    groups: dict[str, list[str]] = defaultdict(list)
    for line in text.splitlines():
        record = json.loads(line)
        groups[record["prompt"]].append(record["completion"])
    prompts = list(groups)[:PROMPTS]
    store.add(pair_up(prompts, [groups[p] for p in prompts], pairs_per_prompt=2, seed=0))
    for cid in list(store.comparisons())[:ALREADY_LABELED]:
        store.record(cid, "a", labeler="ann")


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = PreferenceStore(directory)
        sentiment_comparisons(store)
        app = build_labeling_app(store, get_task("sentiment").description)
        sock = bind_tcp("127.0.0.1", 0)
        with serving(app, sock):
            capture(f"http://127.0.0.1:{sock.getsockname()[1]}/")
    print(f"wrote {TARGET}")


def capture(url: str) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", f"--window-size={WINDOW}"):
        options.add_argument(argument)
    options.add_argument("--force-device-scale-factor=1")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(url)
        driver.find_element(By.ID, "name").send_keys("ann")
        driver.find_element(By.CSS_SELECTOR, "#name-form button").click()
        WebDriverWait(driver, 10).until(
            lambda d: d.execute_script("return document.body.dataset.comparison")
        )
        driver.save_screenshot(str(TARGET))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
