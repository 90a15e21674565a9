"""The labeling page in a real headless Chromium, driven as a person would use it.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install -y chromium
chromium-driver``; ``.ci/run`` installs them where it may) and ``selenium`` (the ``dev`` extra).
The driver's path is given to Selenium, so Selenium Manager never tries to download one.
"""

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest

from rlhf_gym.commands.serve_reward import bind_tcp
from rlhf_gym.preferences import Comparison, PreferenceStore, build_labeling_app
from rlhf_gym.preferences.web import serving

webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (it is in the dev extra)"
)
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install -y chromium "
    "chromium-driver)",
)

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PROMPTS = [
    "The second half of the film",
    "I picked up this blender last week and",
    "Our waiter at the corner bistro",
    "The hotel room overlooked the harbour, and",
]
SHOWN = """return {
  id: document.body.dataset.comparison || null,
  left: document.getElementById("left").textContent,
  right: document.getElementById("right").textContent,
  progress: document.getElementById("progress").textContent,
  done: !document.getElementById("done").hidden,
};"""


def comparisons(n: int) -> list[Comparison]:
    return [
        Comparison(PROMPTS[i % 4], f"was a delight, number {i}.", f"dragged on, number {i}.")
        for i in range(n)
    ]


def chromium() -> "webdriver.Chrome":
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browsers():
    """Two independent browsers (own profiles, so own names), started side by side."""
    with ThreadPoolExecutor(2) as pool:
        drivers = list(pool.map(lambda _: chromium(), range(2)))
    yield drivers
    for driver in drivers:
        driver.quit()


@pytest.fixture
def labeling(tmp_path):
    """``start(n)``: a store of ``n`` comparisons and the address of a labeling server over it
    (on a fresh port, so the browsers' localStorage starts empty)."""
    with ExitStack() as servers:

        def start(n: int) -> tuple[PreferenceStore, str]:
            store = PreferenceStore(tmp_path / "store")
            store.add(comparisons(n))
            sock = bind_tcp("127.0.0.1", 0)
            servers.enter_context(serving(build_labeling_app(store, "Be kind."), sock))
            return store, f"http://127.0.0.1:{sock.getsockname()[1]}/"

        yield start


def idle(driver) -> dict:
    """What the page shows, once its request in flight (if any) has been answered."""
    WebDriverWait(driver, 10, poll_frequency=0.02).until(
        lambda d: d.execute_script("return document.body.dataset.busy") == "0"
    )
    return driver.execute_script(SHOWN)


def press(driver, key: str) -> dict:
    webdriver.ActionChains(driver).send_keys(key).perform()
    return idle(driver)


def sign_in(driver, url: str, name: str) -> dict:
    driver.get(url)
    driver.find_element(By.ID, "name").send_keys(name, Keys.ENTER)  # then keys are answers
    return idle(driver)


def label_records(store: PreferenceStore) -> list[dict]:
    return [json.loads(line) for line in store.labels_path.read_text().splitlines()]


def test_label_by_click_and_key_undo_reload_and_continue(browsers, labeling):
    store, url = labeling(6)
    driver = browsers[0]
    driver.get(url)
    assert not driver.find_element(By.ID, "task").is_displayed()  # a name first
    first = sign_in(driver, url, "ann")
    assert first["progress"] == "0 labeled by you · 0 of 6 comparisons done"
    assert not driver.find_element(By.ID, "name-form").is_displayed()
    assert not driver.find_element(By.ID, "undo").is_enabled()  # nothing to undo yet
    driver.find_element(By.ID, "choose-left").click()
    second = idle(driver)
    assert second["id"] != first["id"] and second["progress"].startswith("1 labeled by you")
    third = press(driver, "b")
    assert third["id"] not in (first["id"], second["id"])
    assert press(driver, "u") == second  # undo shows that comparison again
    fourth = press(driver, "t")  # now a tie
    driver.refresh()
    assert idle(driver) == fourth  # the page resumes as the same labeler, same comparison
    assert driver.find_element(By.ID, "labeler-name").text == "ann"
    assert store.labels() == {
        first["id"]: {"ann": "a" if store.comparisons()[first["id"]].a == first["left"] else "b"},
        second["id"]: {"ann": "tie"},
    }
    labeled, changed, undone, tie = label_records(store)
    assert undone == {**undone, "id": second["id"], "labeler": "ann", "undo": True}
    assert (changed["id"], tie["id"], tie["choice"]) == (second["id"], second["id"], "tie")
    for record, shown, side in ((labeled, first, "left"), (changed, second, "right")):
        stored = store.comparisons()[shown["id"]]
        assert record["order"] == ("ab" if shown["left"] == stored.a else "ba")
        assert getattr(stored, record["choice"]) == shown[side]  # the one clicked or keyed
        assert record["labeler"] == "ann" and record["seconds"] >= 0


def test_two_people_label_at_once_and_no_label_is_lost_or_doubled(browsers, labeling):
    store, url = labeling(16)

    def label_everything(driver, name: str, key: str) -> int:
        shown = sign_in(driver, url, name)
        made = 0
        while not shown["done"]:
            shown = press(driver, key)
            made += 1
        return made

    with ThreadPoolExecutor(2) as pool:
        made = list(pool.map(label_everything, browsers, ["ann", "bob"], ["a", "s"]))
    records = label_records(store)
    assert sum(made) == len(records) == 16 and min(made) >= 1  # each labeled some
    assert sorted(r["id"] for r in records) == sorted(store.comparisons())  # each exactly once
    assert all((r["labeler"] == "bob") == (r["choice"] == "skip") for r in records)
