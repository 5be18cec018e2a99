"""checkd: a distributed, Nagios-compatible check scheduler and alerting system.

This package is the shared core, the alerting engine both daemons run
(checkd/engine/) and the poller; central/ builds on it and is never imported
from here (debian/check-split, tests/test_packaging_files.py).
"""

__version__ = "0.1.0"
