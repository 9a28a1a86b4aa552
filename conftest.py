"""Suite-wide test settings (tests/ and compat_tests/).

Hypothesis's per-example deadline (200 ms by default) is an assertion on wall-clock time: on a
loaded machine (the whole suite on two cores) it fails examples that are only slow, as
``test_range_assignor_assigns_each_partition_once_evenly`` did at 263 ms. The project never
asserts on wall-clock time, and 43 tests already said ``deadline=None`` one by one: it is the
default here. Hypothesis's health checks stay on.
"""

from hypothesis import settings

settings.register_profile("brook", deadline=None)
settings.load_profile("brook")
