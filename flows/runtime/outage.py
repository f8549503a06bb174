"""How a run process ends when an outage outlasts its budget: a clear logged stop.

A sink's exception inside Bytewax becomes a Rust panic with a backtrace; for the run process
(``python -m bytewax.run``, started by ``scalpflow run``) an outage past its budget is not a
bug, so it logs one line that says what happened and what to do, and exits with
``EXIT_OUTAGE``. Nothing of the open epoch is lost: it was never committed, so Bytewax
resumes before it and the rows are written again from Kafka.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

#: EX_TEMPFAIL: "try again later" (the service was unavailable)
EXIT_OUTAGE = 75


def stop_process(error: Exception) -> None:
    """Log ``error`` and end this process now (never returns)."""
    log.critical("%s; restart `scalpflow run` once the service is back", error)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_OUTAGE)
