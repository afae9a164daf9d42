"""Prometheus metrics served at /metrics."""

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

REQUESTS = Counter("yunguan_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "yunguan_http_request_duration_seconds", "HTTP request latency", ["method", "route"]
)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


async def metrics_endpoint(_request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
