"""The labeling web page: people choose the better of two responses in a browser.

:func:`build_labeling_app` serves one page (``GET /``: plain HTML, CSS and JavaScript shipped
with the package under ``labeling/``; nothing is fetched from anywhere else) and a JSON API over
a :class:`~rlhf_gym.preferences.PreferenceStore`, so the page shares the queue, the leases and
the labels with ``rlhf-gym label`` at a terminal and with other servers on the same store:

* ``POST /api/next`` ``{"labeler"}``: lease the labeler's next comparison and show it;
* ``POST /api/label`` ``{"labeler", "id", "choice", "seconds"}``: record ``choice``
  (``"left"``, ``"right"``, ``"tie"`` or ``"skip"``, as displayed; ``seconds`` on it, optional),
  release the lease and show the next one;
* ``POST /api/undo`` ``{"labeler"}``: take back the labeler's last label and show that
  comparison again.

Each answers a *view*: ``{"comparison": {"id", "prompt", "left", "right"} or null,
"progress": {"total", "done", "yours"}, "can_undo"}``. A labeler's leases are held under their
name, so a reload (or a second tab) resumes the comparison on screen. Which response is on the
left is fixed per comparison and labeler by a hash of both (:func:`display_order`): random
across comparisons, stable over reloads, and recorded with each label.

A bad request gets a 4xx with the reason, never a 500: 401 without the token (when one is
set), 400 for a non-loopback ``Host`` when none is (a DNS-rebinding page), 404 for an unknown
comparison, 409 for a comparison leased to another labeler or nothing to undo, 411 / 413 for
a missing or too large body, 422 for a malformed one.
"""

# No ``from __future__ import annotations``: FastAPI reads the request models of the routes
# from their annotations, and those models are classes local to a function.
import hashlib
import hmac
import html
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import Any

from rlhf_gym.preferences.pair import Comparison
from rlhf_gym.preferences.store import PreferenceStore

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
LABELER_NAME = re.compile(r"[\w.@'-]+( [\w.@'-]+)*")
"""A labeler's name: letters, digits and ``_ . @ ' -``, single spaces between words."""
ASSETS = {"/labeling.js": "text/javascript", "/labeling.css": "text/css"}
"""The page's own files; they hold no data, so they need no token."""
SECURITY_HEADERS = {
    # the page loads nothing from elsewhere, and no other site may frame it
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def display_order(cid: str, labeler: str) -> str:
    """Which stored response ``labeler`` sees on the left of comparison ``cid``: ``"ab"`` (``a``
    left) or ``"ba"``, from a hash of both, so random across comparisons and stable over reloads."""
    digest = hashlib.sha256(f"{cid}\0{labeler}".encode()).digest()
    return "ab" if digest[0] % 2 == 0 else "ba"


def stored_choice(choice: str, order: str) -> str:
    """The store's choice (about ``a`` and ``b``) for a displayed ``choice`` (``"left"``,
    ``"right"``, ``"tie"`` or ``"skip"``) made with the responses in ``order``."""
    return {"left": order[0], "right": order[1]}.get(choice, choice)


def check_labeler(name: str) -> str:
    """``name`` if it is a valid labeler name (see ``LABELER_NAME``, at most 64 characters)."""
    if len(name) > 64 or not LABELER_NAME.fullmatch(name):
        raise ValueError(
            f"a labeler name is 1 to 64 letters, digits, _ . @ ' - and single spaces, got {name!r}"
        )
    return name


def view(
    store: PreferenceStore, labeler: str, leased: tuple[str, Comparison] | None
) -> dict[str, Any]:
    """What the page shows ``labeler``: the ``leased`` comparison in their display order (None
    when nothing is left for them) and their progress."""
    labels = store.labels()
    yours = sum(labeler in by_labeler for by_labeler in labels.values())
    progress = {
        "total": len(store.comparisons()),
        "done": sum(len(by) >= store.labels_per_comparison for by in labels.values()),
        "yours": yours,
    }
    comparison = None
    if leased is not None:
        cid, c = leased
        left, right = (c.a, c.b) if display_order(cid, labeler) == "ab" else (c.b, c.a)
        comparison = {"id": cid, "prompt": c.prompt, "left": left, "right": right}
    return {"comparison": comparison, "progress": progress, "can_undo": yours > 0}


def page(guideline: str) -> str:
    """The labeling page's HTML, with the task's ``guideline`` (escaped) in it."""
    template = files("rlhf_gym.preferences").joinpath("labeling", "index.html")
    return template.read_text(encoding="utf-8").replace("{{guideline}}", html.escape(guideline))


def build_labeling_app(
    store: PreferenceStore,
    guideline: str = "",
    token: str | None = None,
    lease_seconds: float = 600.0,
    max_body_bytes: int = 4096,
) -> Any:
    """A FastAPI app serving the labeling page and its API over ``store``.

    ``guideline`` is shown above every comparison; a lease lasts ``lease_seconds``. With a
    ``token``, every request but the page's static files must carry it (``Authorization: Bearer
    <token>``, or ``?token=`` on the page's address); without one, only loopback host names are
    served.
    """
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, Response

    if not lease_seconds > 0:
        raise ValueError(f"a lease lasts a positive number of seconds, got {lease_seconds!r}")
    app = FastAPI(title="rlhf-gym labeling", docs_url=None, redoc_url=None, openapi_url=None)
    _add_guards(app, token, max_body_bytes)
    _add_api(app, store, lease_seconds)
    html_page = page(guideline)
    script, style = (_asset(path) for path in ASSETS)

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return html_page

    @app.get("/labeling.js")
    def javascript() -> Response:
        return Response(script, media_type=ASSETS["/labeling.js"])

    @app.get("/labeling.css")
    def stylesheet() -> Response:
        return Response(style, media_type=ASSETS["/labeling.css"])

    return app


def _asset(path: str) -> str:
    return files("rlhf_gym.preferences").joinpath("labeling", path[1:]).read_text("utf-8")


def _add_guards(app: Any, token: str | None, max_body_bytes: int) -> None:
    """Token or loopback host, body size, security headers, and 422s that echo no input."""
    from fastapi import Request
    from fastapi.responses import JSONResponse

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        refusal = _refusal(request, token, max_body_bytes)
        if refusal is None:
            response = await call_next(request)
        else:
            response = JSONResponse({"detail": refusal[1]}, status_code=refusal[0])
        response.headers.update(SECURITY_HEADERS)
        return response

    answer_validation_errors(app)


def answer_validation_errors(app: Any) -> None:
    """422s that say where and why a request is invalid, without echoing its input: FastAPI's
    default echoes it, which cannot be written as JSON when it holds NaN or Infinity (a 500)."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, error: RequestValidationError) -> JSONResponse:
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in error.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": detail})


def _refusal(request: Any, token: str | None, max_body_bytes: int) -> tuple[int, str] | None:
    """The status and reason to refuse ``request`` with before it is handled, or None."""
    if token is not None and request.url.path not in ASSETS:
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        given = given or request.query_params.get("token", "")
        if not hmac.compare_digest(given.encode(), token.encode()):
            return 401, "a valid access token is required: open the address the server printed"
    if token is None and request.url.hostname not in LOOPBACK_HOSTS:
        return 400, f"host {request.url.hostname!r} is not served: this server is loopback-only"
    size = request.headers.get("content-length")
    if size is None and request.method == "POST":  # a chunked body could be unbounded
        return 411, "a Content-Length header is required"
    if size is not None and (not size.isdigit() or int(size) > max_body_bytes):
        return 413, f"the body may have at most {max_body_bytes} bytes, got {size}"
    return None


def _add_api(app: Any, store: PreferenceStore, lease_seconds: float) -> None:
    """The JSON API: next, label, undo; each answers the labeler's view."""
    from fastapi import HTTPException

    LabelerRequest, LabelRequest = _request_models()

    def lease(labeler: str, prefer: str | None = None) -> tuple[str, Comparison] | None:
        return store.lease(labeler, lease_seconds, labeler=labeler, prefer=prefer)

    @app.post("/api/next")
    def next_comparison(request: LabelerRequest) -> dict[str, Any]:
        return view(store, request.labeler, lease(request.labeler))

    @app.post("/api/label")
    def label(request: LabelRequest) -> dict[str, Any]:
        cid, labeler = request.id, request.labeler
        if cid not in store.comparisons():
            raise HTTPException(404, f"no comparison with id {cid!r}")
        if store.lease_holder(cid) not in (None, labeler):
            raise HTTPException(409, f"comparison {cid} is leased to another labeler")
        order = display_order(cid, labeler)
        choice = stored_choice(request.choice, order)
        store.record(cid, choice, labeler, order=order, seconds=request.seconds)
        store.release(cid, labeler)
        return view(store, labeler, lease(labeler))

    @app.post("/api/undo")
    def undo(request: LabelerRequest) -> dict[str, Any]:
        cid = store.undo(request.labeler)
        if cid is None:
            raise HTTPException(409, f"{request.labeler!r} has no label to undo")
        return view(store, request.labeler, lease(request.labeler, prefer=cid))


def _request_models() -> tuple[type, type]:
    """The request bodies: ``{"labeler"}`` and a label; a misspelt field is an error."""
    from typing import Annotated, Literal

    from pydantic import AfterValidator, BaseModel, ConfigDict, Field

    class LabelerRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")

        labeler: Annotated[str, AfterValidator(check_labeler)]

    class LabelRequest(LabelerRequest):
        id: str = Field(max_length=64)
        choice: Literal["left", "right", "tie", "skip"]
        seconds: float | None = Field(default=None, ge=0, le=86_400, allow_inf_nan=False)

    return LabelerRequest, LabelRequest


@contextmanager
def serving(app: Any, sock: socket.socket) -> Iterator[None]:
    """Serve ``app`` with uvicorn on the listening ``sock`` from a background thread until the
    block ends (tests, scripts, a notebook)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the labeling server stopped before it started")
            time.sleep(0.01)
        yield
    finally:
        server.should_exit = True
        thread.join()
