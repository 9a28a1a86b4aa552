"""Brook's Prometheus metrics (``brook.metrics.listener``).

:mod:`stats` holds the plain counters the hot path updates (always present, no dependency);
:mod:`address` parses the listener. :mod:`collector` (the families, computed at scrape time),
:mod:`endpoint` (the HTTP server) and :mod:`end_offsets` (other leaders' high watermarks for
group lag in cluster mode) are loaded only when the listener is configured, so a broker with
metrics off never imports ``prometheus_client``.
"""
