"""The labeling app through its HTTP API, with FastAPI's TestClient (browser: test_web_browser)."""

import json
import re
import tempfile

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlhf_gym.preferences import Comparison, PreferenceStore, build_labeling_app, comparison_id
from rlhf_gym.preferences.web import display_order, page, stored_choice

COMPARISONS = [Comparison(f"prompt {i}", f"first {i}", f"second {i}") for i in range(6)]
LOCAL = "http://127.0.0.1"


@pytest.fixture
def store(tmp_path):
    store = PreferenceStore(tmp_path / "store")
    store.add(COMPARISONS)
    return store


def client_for(store, **kwargs):
    return TestClient(build_labeling_app(store, **kwargs), base_url=LOCAL)


def test_the_page_shows_the_guideline_as_text_and_loads_nothing_from_elsewhere(store):
    client = client_for(store, guideline="Pick the <b>kinder</b> reply")
    response = client.get("/")
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    assert "Pick the &lt;b&gt;kinder&lt;/b&gt; reply" in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]
    files = [response.text, client.get("/labeling.js").text, client.get("/labeling.css").text]
    assert all(re.search(r"https?:|//[a-z]", text) is None for text in files)  # no CDN, no URL


def test_a_label_is_recorded_about_the_stored_pair_with_the_order_shown(store):
    client = client_for(store)
    shown = client.post("/api/next", json={"labeler": "ann"}).json()
    assert shown["progress"] == {"total": 6, "done": 0, "yours": 0} and not shown["can_undo"]
    current = shown["comparison"]
    stored = store.comparisons()[current["id"]]
    assert {current["left"], current["right"]} == {stored.a, stored.b}
    after = client.post(
        "/api/label", json={"labeler": "ann", "id": current["id"], "choice": "left", "seconds": 2}
    ).json()
    (record,) = [json.loads(line) for line in store.labels_path.read_text().splitlines()]
    assert record["labeler"] == "ann" and record["seconds"] == 2
    order = record["order"]
    chosen = stored.a if record["choice"] == "a" else stored.b
    assert chosen == current["left"]  # the response that was on the left won
    assert order == ("ab" if current["left"] == stored.a else "ba")
    assert after["progress"] == {"total": 6, "done": 1, "yours": 1} and after["can_undo"]
    assert after["comparison"]["id"] != current["id"]


def test_the_display_order_is_stable_per_labeler_and_varies_across_comparisons():
    ids = [f"{i:016x}" for i in range(200)]
    orders = [display_order(cid, "ann") for cid in ids]
    assert orders == [display_order(cid, "ann") for cid in ids]
    assert 60 < orders.count("ab") < 140  # about half, as a fair coin would give
    assert orders != [display_order(cid, "bob") for cid in ids]
    assert [stored_choice(c, "ba") for c in ("left", "right", "tie", "skip")] == [
        "b",
        "a",
        "tie",
        "skip",
    ]


def test_a_reload_shows_the_same_comparison_and_others_get_another(store):
    client = client_for(store)
    first = client.post("/api/next", json={"labeler": "ann"}).json()["comparison"]
    assert client.post("/api/next", json={"labeler": "ann"}).json()["comparison"] == first
    other = client.post("/api/next", json={"labeler": "bob"}).json()["comparison"]
    assert other["id"] != first["id"]


def test_a_label_on_another_labelers_lease_is_refused(store):
    client = client_for(store)
    held = client.post("/api/next", json={"labeler": "ann"}).json()["comparison"]["id"]
    response = client.post("/api/label", json={"labeler": "bob", "id": held, "choice": "left"})
    assert response.status_code == 409 and "leased to another labeler" in response.json()["detail"]
    assert store.labels() == {}


def test_undo_shows_the_undone_comparison_again(store):
    client = client_for(store)
    assert client.post("/api/undo", json={"labeler": "ann"}).status_code == 409  # nothing yet
    first = client.post("/api/next", json={"labeler": "ann"}).json()["comparison"]
    body = {"labeler": "ann", "id": first["id"], "choice": "tie"}
    client.post("/api/label", json=body)
    again = client.post("/api/undo", json={"labeler": "ann"}).json()
    assert again["comparison"] == first and again["progress"]["yours"] == 0
    assert store.labels() == {} and not again["can_undo"]


def test_when_nothing_is_left_the_view_says_so(store):
    client = client_for(store)
    for _ in COMPARISONS:
        shown = client.post("/api/next", json={"labeler": "ann"}).json()["comparison"]
        client.post("/api/label", json={"labeler": "ann", "id": shown["id"], "choice": "skip"})
    final = client.post("/api/next", json={"labeler": "ann"}).json()
    assert final["comparison"] is None and final["progress"]["done"] == 6


def test_an_unknown_comparison_is_404(store):
    body = {"labeler": "ann", "id": "0123456789abcdef", "choice": "left"}
    assert client_for(store).post("/api/label", json=body).status_code == 404


def test_without_a_token_only_loopback_host_names_are_served(store):
    app = build_labeling_app(store)
    assert TestClient(app, base_url="http://localhost").get("/").status_code == 200
    rebinding = TestClient(app, base_url="http://attacker.example").get("/")
    assert rebinding.status_code == 400 and "loopback-only" in rebinding.json()["detail"]


def test_with_a_token_every_request_but_the_static_files_needs_it(store):
    client = TestClient(build_labeling_app(store, token="s3cret"), base_url="http://10.0.0.5")
    assert client.get("/").status_code == 401
    assert client.get("/?token=wrong").status_code == 401
    assert client.post("/api/next", json={"labeler": "ann"}).status_code == 401
    assert client.get("/?token=s3cret").status_code == 200
    headers = {"Authorization": "Bearer s3cret"}
    assert client.post("/api/next", json={"labeler": "ann"}, headers=headers).status_code == 200
    assert client.get("/labeling.js").status_code == 200  # code, no data


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/api/next", '{"labeler": ""}', "application/json"),
        ("/api/next", '{"labeler": "ann\\u0000"}', "application/json"),
        ("/api/next", '{"labeler": "' + "x" * 65 + '"}', "application/json"),
        ("/api/next", '{"labeler": "ann", "extra": 1}', "application/json"),
        ("/api/next", "labeler=ann", "application/x-www-form-urlencoded"),  # a cross-site form
        ("/api/label", '{"labeler": "ann", "id": "x", "choice": "A"}', "application/json"),
        ("/api/label", '{"labeler": "ann", "id": "x", "choice": "left", "seconds": NaN}', None),
        ("/api/label", '{"labeler": "ann", "id": "x", "choice": "left", "seconds": -1}', None),
        ("/api/undo", "[1, 2]", "application/json"),
        ("/api/undo", "{not json", "application/json"),
    ],
)
def test_malformed_bodies_get_422(store, path, body, content_type):
    headers = {"content-type": content_type or "application/json"}
    response = client_for(store).post(path, content=body, headers=headers)
    assert response.status_code == 422


def test_missing_and_oversized_bodies_get_411_and_413(store):
    client = client_for(store)
    chunked = client.post("/api/next", content=iter([b'{"labeler": "ann"}']))
    assert chunked.status_code == 411
    huge = client.post("/api/next", json={"labeler": "ann" * 2000})
    assert huge.status_code == 413


JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "labeler": st.one_of(JSON, st.sampled_from(["ann", "bob"])),
        "id": st.one_of(JSON, st.sampled_from([comparison_id(c) for c in COMPARISONS[:2]])),
        "choice": st.one_of(JSON, st.sampled_from(["left", "right", "tie", "skip"])),
        "seconds": JSON,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(["/api/next", "/api/label", "/api/undo"]), body=FIELDS | JSON)
def test_no_request_body_gets_a_500(path, body):
    with tempfile.TemporaryDirectory() as directory:
        store = PreferenceStore(directory)
        store.add(COMPARISONS[:2])
        client = TestClient(
            build_labeling_app(store), base_url=LOCAL, raise_server_exceptions=False
        )
        text = json.dumps(body)  # NaN and Infinity included, as a client may send them
        response = client.post(path, content=text, headers={"content-type": "application/json"})
        assert response.status_code < 500, response.text


def test_page_escapes_the_guideline():
    assert "&lt;script&gt;" in page("<script>alert(1)</script>")
