"""Scraping a broker's /metrics in tests: the text parsed by prometheus_client's own parser."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

#: (sample name, sorted label pairs) -> value
Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape_text(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> str:
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text: str = response.read().decode()
        return text


def parse(text: str) -> Scrape:
    samples: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def scrape(port: int, host: str = "127.0.0.1") -> Scrape:
    return parse(scrape_text(port, host))


def value(samples: Scrape, name: str, **labels: str) -> float:
    """One sample's value; KeyError naming what is there when it is missing."""
    key = (name, tuple(sorted(labels.items())))
    if key not in samples:
        present = sorted(str(k) for k in samples if k[0] == name)
        raise KeyError(f"{key} not scraped; {name} has {present}")
    return samples[key]
