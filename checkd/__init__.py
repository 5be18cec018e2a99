"""checkd: a distributed, Nagios-compatible check scheduler and alerting system.

This package is the shared core and the poller; central/ builds on it and is
never imported from here.
"""

__version__ = "0.1.0"
