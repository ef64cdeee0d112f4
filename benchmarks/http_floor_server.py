"""``ripen serve`` with each distinct recommend request decided once and its outcome replayed after that: the
HTTP floor of ``POST /v1/recommend``.

Run:  python benchmarks/http_floor_server.py serve --port 8000    (the arguments of ``ripen serve``)

Everything but the decision runs as in production: uvicorn, the middleware, authentication, validating the
request body, building, validating and serializing the answer (with its guardrail reasons), the access log
and the metrics. Only ``RecommendCoalescer.recommend`` returns the outcome it decided the first time for the
same request. ``bench_api_load.py --http-floor`` measures this server next to ``/healthz``: what recommend
would reach if deciding cost nothing.
"""

from __future__ import annotations

from serving.coalescer import RecommendCoalescer
from serving.pipeline import Outcome, RecommendInput


def replay_decisions() -> None:
    """Patch the coalescer: the first call per distinct request decides (and logs); later ones replay it."""
    decide = RecommendCoalescer.recommend
    decided: dict[RecommendInput, Outcome] = {}

    async def replay(self: RecommendCoalescer, request: RecommendInput, store: object) -> Outcome:
        if request not in decided:
            decided[request] = await decide(self, request, store)  # type: ignore[arg-type]
        return decided[request]

    RecommendCoalescer.recommend = replay  # type: ignore[method-assign]


if __name__ == "__main__":
    replay_decisions()
    from ripen.cli import app

    app()
