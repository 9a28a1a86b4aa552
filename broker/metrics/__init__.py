"""Brook's Prometheus metrics (``brook.metrics.listener``).

:mod:`stats` holds the plain counters the hot path updates (always present, no dependency);
:mod:`collector` and :mod:`endpoint` import ``prometheus_client`` and are loaded only when the
listener is configured, so an embedded broker with metrics off never imports it.
"""
