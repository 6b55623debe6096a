"""Cluster labels from an OpenAI-compatible chat-completions API: prompt, call, parse, cost.

One call per cluster, run by a bounded thread pool. The ``openai`` SDK is the one retry
layer: it retries timeouts, connection errors and 408/409/429/5xx with exponential backoff
and jitter, honouring Retry-After; 400/401/403/404 are not retried, and 401/403/404 stop
the stage (every other call would fail the same way). Each answer is cached on its own,
keyed by what was asked (cluster content, prompt version, model, URL), never by cluster id;
a failed call is never cached.

The API key lives in a ``Secret`` (``Runtime.llm_api_key``, else $OPENAI_API_KEY). It is
never part of a setting, a cache key, an event or a manifest, and every message this module
makes is scrubbed of it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from . import netguard
from .cache import MISSING, Cache, chain_key
from .config import LLMParams
from .context import Runtime, Secret, StageContext
from .errors import StageError

log = logging.getLogger(__name__)

PROMPT_VERSION = 1  # bump when the prompt or the parsing changes: cached answers are keyed by it
PIECE_KIND = "llm_label"  # the cache folder of the per-cluster answers
ENV_API_KEY = "OPENAI_API_KEY"
NO_KEY = "no-key"  # sent to servers that need none (Ollama, llama.cpp); the SDK insists on one
MAX_LABEL_WORDS = 6
MAX_LABEL_CHARS = 60
MAX_DESCRIPTION_CHARS = 300
MAX_EXAMPLE_CHARS = 300
STOP_AFTER_FAILURES = 5  # failed calls in a row, none in between succeeding: stop sending more
COMPLETION_TOKENS = 60  # a rough size of one answer, for the estimate
FATAL_ADVICE = {
    401: "check the key (OPENAI_API_KEY, or the key field in the app)",
    403: "the key has no access to this model; check the key and label.llm.model",
    404: "check label.llm.model and label.llm.base_url (it usually ends in /v1)",
}

SYSTEM_PROMPT = (
    "You name groups of short texts (survey answers, support tickets, reviews, titles) for a report. "
    'Reply with one JSON object and nothing else: {"label": "...", "description": "..."}. '
    "label: 2 to 5 words saying what the group is about, specific enough to tell it apart from "
    "other groups; plain text, no quotes, no punctuation at the end. "
    "description: one sentence on what the texts in the group say. "
    "Write both in the language of the texts."
)


class CallFailed(Exception):
    """One cluster's call failed; ``reason`` is scrubbed of the key. ``fatal``: stop the stage."""

    def __init__(self, reason: str, *, fatal: bool = False, hint: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.fatal = fatal
        self.hint = hint


@dataclass(frozen=True)
class ClusterRequest:
    """What is asked about one cluster; ``key`` addresses the cached answer."""

    cluster: int
    size: int
    key: str
    messages: tuple[tuple[str, str], ...]  # (role, content)

    def ask_again(self, previous: dict[str, str], taken: str) -> ClusterRequest:
        """The same question once more, after the model gave a label another cluster has."""
        messages = (
            *self.messages,
            ("assistant", json.dumps(previous, ensure_ascii=False)),
            (
                "user",
                f'Another group already has the label "{taken}". Give this group a different label '
                "that sets it apart, in the same JSON format.",
            ),
        )
        return ClusterRequest(self.cluster, self.size, chain_key(self.key, "again", messages[-2:]), messages)


def build_messages(keywords: Sequence[str], examples: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """The chat for one cluster: its distinctive keywords and the texts closest to its centre."""
    lines = [f"- {_one_line(text, MAX_EXAMPLE_CHARS)}" for text in examples]
    user = (
        f"Most distinctive keywords: {', '.join(keywords) if keywords else '(none)'}\n\n"
        "Texts from the group (closest to its centre first):\n" + "\n".join(lines)
    )
    return (("system", SYSTEM_PROMPT), ("user", user))


def members_digest(text_hashes: Iterable[str]) -> str:
    """One hash for a cluster's members, whatever their order or the cluster's id."""
    return hashlib.sha256("\n".join(sorted(text_hashes)).encode()).hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def request_key(params: LLMParams, members: str, messages: Sequence[tuple[str, str]]) -> str:
    """Cluster content + what is sent + prompt version + model + URL; never the cluster id."""
    return chain_key(PIECE_KIND, PROMPT_VERSION, _url(params.base_url), params.model, members, list(messages))


# --- answers ------------------------------------------------------------------------------


def parse_reply(content: str) -> dict[str, str]:
    """``{"label", "description"}`` from the model's text: JSON if it sent JSON, else lines."""
    text = re.sub(r"<think>.*?</think>", " ", content or "", flags=re.S | re.I).strip()
    text = re.sub(r"^```[\w-]*\s*|\s*```$", "", text)
    data = None
    found = re.search(r"\{.*\}", text, re.S)
    if found:
        try:
            data = json.loads(found.group(0))
        except ValueError:
            data = None
    if isinstance(data, dict):
        label = str(data.get("label") or data.get("title") or data.get("name") or "")
        description = str(data.get("description") or "")
    else:
        lines = [line for line in text.splitlines() if line.strip()]
        label = lines[0] if lines else ""
        description = " ".join(lines[1:])
    label, description = clean_reply_label(label), clean_description(description)
    if not label:
        raise CallFailed("the reply held no usable label")
    return {"label": label, "description": description}


def _strip_markup(text: str) -> str:
    text = re.sub(r"<[^>]*>", " ", text)  # HTML tags
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # markdown links and images
    text = re.sub(r"(?m)^\s*(#{1,6}|[-*+>]|\d+[.)])\s+", "", text)  # headings, bullets, quotes
    text = re.sub(r"[*_`~]{1,3}(?=\S)|(?<=\S)[*_`~]{1,3}", "", text)  # emphasis and code marks
    return re.sub(r"\s+", " ", text).strip()


def clean_reply_label(text: str) -> str:
    """A short plain label: no markup, quotes or trailing punctuation, at most 6 words."""
    text = _strip_markup(text)
    text = re.sub(r"^(label|title|name)\s*:\s*", "", text, flags=re.I)
    text = re.sub(r"[\"“”„«»]", "", text).strip(" '‘’`")
    words = text.split()[:MAX_LABEL_WORDS]
    text = " ".join(words)
    if len(text) > MAX_LABEL_CHARS:
        text = text[:MAX_LABEL_CHARS].rsplit(" ", 1)[0]
    return text.rstrip(" .,:;!?-–—'‘’")


def clean_description(text: str) -> str:
    """One plain sentence."""
    text = _strip_markup(text)
    text = re.sub(r"^description\s*:\s*", "", text, flags=re.I).strip(" \"'“”")
    sentence = re.match(r"(.+?[.!?。])(\s|$)", text)
    text = sentence.group(1) if sentence else text
    return text if len(text) <= MAX_DESCRIPTION_CHARS else text[: MAX_DESCRIPTION_CHARS - 1].rstrip() + "…"


# --- the client ---------------------------------------------------------------------------


def resolve_api_key(runtime: Runtime, base_url: str | None = None) -> Secret | None:
    """``Runtime.llm_api_key``, else $OPENAI_API_KEY (unless ``llm_env_key`` is off), else None;
    None too when the key is bound to another URL (``llm_key_url``) than ``base_url``."""
    if runtime.llm_key_url and base_url is not None and _url(base_url) != _url(runtime.llm_key_url):
        return None
    if runtime.llm_api_key:
        return runtime.llm_api_key  # a Secret: Runtime wraps whatever it is given
    env = os.environ.get(ENV_API_KEY, "").strip() if runtime.llm_env_key else ""
    return Secret(env) if env else None


def scrub(text: str, secret: Secret | None) -> str:
    """``text`` with the key replaced by ``***``."""
    if secret:
        text = text.replace(secret.reveal(), "***")
    return text


class ChatClient:
    """The SDK client for one stage run; ``complete`` raises only ``CallFailed``."""

    def __init__(self, params: LLMParams, runtime: Runtime, stage: str = "label"):
        self.params = params
        self.runtime = runtime
        self._secret = resolve_api_key(runtime, params.base_url)
        self._guard = runtime.llm_guard
        if self._guard is not None:  # a URL a web visitor typed: refuse private targets up front
            try:
                self._guard.check_url(params.base_url)
            except netguard.AddressRefused as exc:
                raise StageError(
                    stage, f"the server URL is refused: {exc.reason}", hint=netguard.HINT
                ) from None
        if self._secret is None and urlsplit(params.base_url).hostname == "api.openai.com":
            raise StageError(
                stage,
                f"no API key for {params.base_url}; expected one in {ENV_API_KEY}",
                hint=f"set {ENV_API_KEY} (or enter the key in the app), or point label.llm.base_url "
                "at a local server such as Ollama",
            )
        import openai  # here, not at the top: keyword labels never pay for the import

        self._client = openai.OpenAI(
            api_key=self._secret.reveal() if self._secret else NO_KEY,
            base_url=params.base_url,
            timeout=runtime.llm_timeout_s,
            max_retries=runtime.llm_max_retries,
            http_client=(
                netguard.guarded_http_client(self._guard, runtime.llm_timeout_s) if self._guard else None
            ),
        )

    def complete(self, messages: Sequence[tuple[str, str]]) -> dict[str, str]:
        """Ask once (the SDK retries what is worth retrying) and parse the answer."""
        try:
            response = self._client.chat.completions.create(
                model=self.params.model,
                messages=[{"role": role, "content": content} for role, content in messages],
            )
        except Exception as exc:  # SDK errors carry the request (and its headers): keep only a reason
            raise self._failure(exc) from None
        return self._answer(response)

    def close(self) -> None:
        self._client.close()

    def _answer(self, response: Any) -> dict[str, str]:
        choices = getattr(response, "choices", None)
        if choices is None:
            raise CallFailed(self._scrub("the reply was not a chat completion (no JSON object)"))
        if not choices:
            raise CallFailed("the reply had no choices")
        message = choices[0].message
        content = getattr(message, "content", None)
        if not content:
            refusal = getattr(message, "refusal", None)
            reason = f"the model refused: {_one_line(refusal, 200)}" if refusal else "the reply had no text"
            raise CallFailed(self._scrub(reason))
        try:
            return parse_reply(content)
        except CallFailed as exc:
            raise CallFailed(self._scrub(exc.reason)) from None

    def _failure(self, exc: Exception) -> CallFailed:
        import openai

        refused = netguard.refusal_in(exc)
        if refused is not None:  # a redirect (or a second lookup) led somewhere refused
            return CallFailed(f"refused: {refused.reason}", fatal=True, hint=netguard.HINT)
        where = f"for model {self.params.model!r} at {self.params.base_url}"
        retries = self.runtime.llm_max_retries
        retried = f" (retried up to {retries} time{'s' if retries != 1 else ''})" if retries else ""
        if isinstance(exc, openai.APIStatusError):
            code = exc.status_code
            status = f"{code} {_phrase(code)}"
            said = self._server_said(exc, _phrase(code))
            if code in FATAL_ADVICE:
                return CallFailed(
                    self._scrub(f"the API returned {status} {where}; {FATAL_ADVICE[code]}{said}"),
                    fatal=True,
                    hint="labels finished before this are cached; fix the setting and run again",
                )
            if code in (408, 409, 429) or code >= 500:
                return CallFailed(self._scrub(f"the API returned {status}{retried}{said}"))
            return CallFailed(self._scrub(f"the API rejected the request ({status}){said}"))
        if isinstance(exc, openai.APITimeoutError):
            return CallFailed(f"no answer within {self.runtime.llm_timeout_s:g} s{retried}")
        if isinstance(exc, openai.APIConnectionError):
            return CallFailed(self._scrub(f"could not connect to {self.params.base_url}{retried}"))
        if isinstance(exc, ValueError):  # the SDK decodes the body itself: a broken body lands here
            return CallFailed("the reply was not valid JSON")
        log.warning("label: unexpected %s from the API client", type(exc).__name__)
        detail = "" if self._guard is not None else f": {_one_line(str(exc), 200)}"
        return CallFailed(self._scrub(f"unexpected {type(exc).__name__}{detail}"))

    def _server_said(self, exc: Any, phrase: str) -> str:
        if self._guard is not None:  # a typed URL's error bodies are never shown (they could be
            return ""  # anything the server can reach, e.g. an internal service's answer)
        body = getattr(exc, "body", None)
        if isinstance(body, dict):
            inner = body.get("error", body)
            body = inner.get("message") if isinstance(inner, dict) else inner
        text = _one_line(str(body), 200) if body else ""
        if not text or text.casefold() == phrase.casefold():
            return ""
        return f"; the server said: {self._scrub(text)}"

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secret)


# --- many clusters ------------------------------------------------------------------------


@dataclass
class LabelReplies:
    """What ``request_labels`` got: answers by cluster, failure reasons, and counts."""

    replies: dict[int, dict[str, str]] = field(default_factory=dict)
    failures: dict[int, str] = field(default_factory=dict)
    requested: int = 0  # calls sent in this run
    from_cache: int = 0


def request_labels(
    requests: Sequence[ClusterRequest],
    params: LLMParams,
    ctx: StageContext,
    *,
    start: float = 0.0,
    end: float = 1.0,
) -> LabelReplies:
    """Answers for every request: cached ones loaded, the rest asked in parallel.

    Each answer is stored as soon as it arrives, so a failure or a kill keeps what finished.
    One progress event per cluster. A fatal answer (401/403/404, no key) raises StageError.
    """
    out = LabelReplies()
    todo: list[ClusterRequest] = []
    total = max(len(requests), 1)

    def step(message: str) -> None:
        done = len(out.replies) + len(out.failures)
        ctx.progress(start + (end - start) * done / total, message)

    for request in requests:
        reply = ctx.cached_piece(PIECE_KIND, request.key)
        if reply is MISSING:
            todo.append(request)
            continue
        out.replies[request.cluster] = reply
        out.from_cache += 1
        step(f"cluster {request.cluster}: {reply['label']!r} (from cache)")
    if not todo:
        return out
    gate = _Gate(ChatClient(params, ctx.runtime, ctx.stage))
    pool = ThreadPoolExecutor(
        max_workers=min(ctx.runtime.llm_concurrency, len(todo)), thread_name_prefix="clusterlab-llm"
    )
    try:
        futures = {pool.submit(gate.ask, r.messages): r for r in todo}
        _collect(futures, ctx, out, step)
    finally:
        # in-flight calls end by their own timeout; nothing waits for them after a failure
        pool.shutdown(wait=False, cancel_futures=True)
    out.requested = gate.sent
    gate.client.close()
    return out


class _NotSent(Exception):
    pass


class _Gate:
    """Runs in the workers: after a fatal answer, or too many failures in a row, sends nothing more.

    The worker that sees the failure closes the gate before it takes its next job, so with
    one worker a 401 means exactly one call.
    """

    def __init__(self, client: ChatClient):
        self.client = client
        self.sent = 0
        self.closed = ""  # why, once closed
        self._streak = 0
        self._lock = threading.Lock()

    def ask(self, messages: Sequence[tuple[str, str]]) -> dict[str, str]:
        with self._lock:
            if self.closed:
                raise _NotSent(self.closed)
            self.sent += 1
        try:
            reply = self.client.complete(messages)
        except CallFailed as exc:
            with self._lock:
                self._streak += 1
                if exc.fatal:
                    self.closed = f"not sent: an earlier call failed ({exc.reason})"
                elif self._streak >= STOP_AFTER_FAILURES and not self.closed:
                    self.closed = (
                        f"not sent: {STOP_AFTER_FAILURES} calls in a row failed (last: {exc.reason})"
                    )
            raise
        with self._lock:
            self._streak = 0
        return reply


def _collect(futures: dict[Future, ClusterRequest], ctx: StageContext, out: LabelReplies, step) -> None:
    pending = set(futures)
    while pending:
        ctx.check_cancelled()
        finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
        for future in sorted(finished, key=lambda f: futures[f].cluster):
            request = futures[future]
            try:
                reply = future.result()
            except CallFailed as exc:
                if exc.fatal:
                    raise StageError(ctx.stage, exc.reason, hint=exc.hint) from None
                out.failures[request.cluster] = exc.reason
                log.info("label: cluster %s: %s", request.cluster, exc.reason)
                step(f"cluster {request.cluster}: no label ({exc.reason})")
                continue
            except _NotSent as exc:
                out.failures[request.cluster] = str(exc)
                step(f"cluster {request.cluster}: {exc}")
                continue
            ctx.piece(PIECE_KIND, request.key, lambda reply=reply: reply)
            out.replies[request.cluster] = reply
            step(f"cluster {request.cluster}: {reply['label']!r}")


# --- cost ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostEstimate:
    """What labeling with the model would take, before any call. Tokens are rough (4 chars each)."""

    clusters: int  # clusters the model would label (noise never; the cap applied)
    capped: int  # clusters beyond label.llm.max_clusters: they keep keyword labels
    cached: int  # answers already cached: no call
    calls: int  # calls to make (a label that duplicates another may cost one more call)
    prompt_tokens: int
    completion_tokens: int

    def __str__(self) -> str:
        text = (
            f"{self.calls:,} API call{'s' if self.calls != 1 else ''} for {self.clusters:,} clusters "
            f"({self.cached:,} cached), about {self.prompt_tokens:,} prompt + "
            f"{self.completion_tokens:,} completion tokens"
        )
        return text + (f"; {self.capped:,} smaller clusters keep keyword labels" if self.capped else "")


def estimate(requests: Sequence[ClusterRequest], capped: int = 0, cache: Cache | None = None) -> CostEstimate:
    """Calls and rough tokens for ``requests``, counting answers already in ``cache`` as free."""
    todo = [r for r in requests if cache is None or not cache.contains(PIECE_KIND, r.key)]
    prompt = sum(sum(len(content) for _, content in r.messages) // 4 + 4 * len(r.messages) for r in todo)
    return CostEstimate(
        clusters=len(requests),
        capped=capped,
        cached=len(requests) - len(todo),
        calls=len(todo),
        prompt_tokens=prompt,
        completion_tokens=COMPLETION_TOKENS * len(todo),
    )


# --- helpers ------------------------------------------------------------------------------


def _one_line(text: Any, limit: int) -> str:
    text = re.sub(r"\s+", " ", str(text)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "error"


def _url(base_url: str) -> str:
    return base_url.strip().rstrip("/")
