"""RemoteRewardPredictor: a reward predictor behind an HTTP endpoint.

The protocol is one JSON POST: ``{"prompts": [...], "completions": [...]}`` answered by
``{"rewards": [...]}`` (one finite number per completion). ``rlhf-gym serve-reward`` serves any
predictor this way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from rlhf_gym.rewards.base import check_scores


class RemoteRewardError(RuntimeError):
    """The endpoint could not be reached, kept failing, or answered something unusable."""


class RemoteRewardPredictor:
    """Scores completions by calling ``url``; retries connection errors, timeouts and 5xx.

    Args:
        url: the endpoint, e.g. ``http://127.0.0.1:8000/score``.
        timeout: seconds the whole call may take: every request, retry and backoff of it,
            and the whole body (a server that trickles bytes cannot stretch it).
        retries: extra attempts after a failure that may be transient; 4xx answers and
            malformed bodies are not retried.
        backoff: seconds before the first retry, doubling after each.
        batch_size: completions per request; None sends everything at once.
        headers: extra HTTP headers (an API key, say).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.5,
        batch_size: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        import httpx

        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if timeout <= 0 or retries < 0 or backoff < 0:
            raise ValueError(
                f"need timeout > 0, retries >= 0, backoff >= 0; got {timeout}, {retries}, {backoff}"
            )
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be positive or None, got {batch_size}")
        self.url, self.retries, self.backoff, self.batch_size = url, retries, backoff, batch_size
        self.timeout = float(timeout)
        self._client = httpx.Client(timeout=timeout, headers=headers)

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        step = self.batch_size or max(1, len(prompts))
        deadline = time.monotonic() + self.timeout
        chunks = [
            self._score(list(prompts[s : s + step]), list(completions[s : s + step]), deadline)
            for s in range(0, len(prompts), step)
        ]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)

    def _score(self, prompts: list[str], completions: list[str], deadline: float) -> np.ndarray:
        body = self._post({"prompts": prompts, "completions": completions}, deadline)
        if not isinstance(body, dict) or "rewards" not in body:
            raise RemoteRewardError(
                f"{self.url} answered {_snippet(body)}; expected a JSON object with 'rewards'"
            )
        try:
            return check_scores(body["rewards"], len(prompts), self.url)
        except (TypeError, ValueError) as err:
            raise RemoteRewardError(str(err)) from err

    def _post(self, payload: dict[str, list[str]], deadline: float) -> Any:
        import httpx

        failure, attempts = "", 0
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), _left(deadline)))
            if _left(deadline) <= 0:
                failure = f"timed out after {self.timeout:g}s"
                break
            attempts += 1
            try:
                status, text = self._request(payload, deadline)
            except httpx.TimeoutException:
                failure = f"timed out after {self.timeout:g}s"
                continue
            except httpx.TransportError as err:
                failure = f"could not connect ({type(err).__name__}: {err})"
                continue
            if status >= 500:
                failure = f"answered HTTP {status}: {text[:200]!r}"
                continue
            if status >= 400:
                raise RemoteRewardError(
                    f"{self.url} rejected the request with HTTP {status}: {text[:200]!r}"
                )
            try:
                return json.loads(text)
            except ValueError as err:
                raise RemoteRewardError(f"{self.url} answered non-JSON: {text[:200]!r}") from err
        raise RemoteRewardError(f"{self.url} {failure} ({attempts} attempts)")

    def _request(self, payload: dict[str, list[str]], deadline: float) -> tuple[int, str]:
        """One POST (status, body text) whose every step (connect, each read) gets only the
        time left, and whose body is read against the deadline: httpx's own timeout bounds
        each read, not the call."""
        import httpx

        chunks = []
        with self._client.stream("POST", self.url, json=payload, timeout=_left(deadline)) as r:
            for chunk in r.iter_bytes():
                if _left(deadline) <= 0:
                    raise httpx.ReadTimeout("the deadline passed while reading the body")
                chunks.append(chunk)
            return r.status_code, b"".join(chunks).decode("utf-8", errors="replace")

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:
        return f"RemoteRewardPredictor({self.url!r})"


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 0.0)


def _snippet(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."
