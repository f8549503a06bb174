"""``python -m flows.runtime.live_runner [-i N -a "host:port;..."]``: one live flow process.

Like ``python -m bytewax.run "flows.pipeline:flow_from_env()"``, with a sub-second epoch:
Bytewax hands sink output over at epoch ends, and ``bytewax.run`` only takes whole seconds
(default 10 s), which put seconds between a decision and its Kafka record (issue 19).
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from bytewax.recovery import RecoveryConfig
from bytewax.run import cli_main

from flows.pipeline import flow_from_env

#: Epoch length of a live run: outputs reach Kafka and PostgreSQL at epoch ends.
LIVE_EPOCH = timedelta(milliseconds=200)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-i", "--process-id", type=int, default=None)
    ap.add_argument("-a", "--addresses", default=None)
    # the recovery store's flags, as bytewax.run takes them (flows.runtime.recovery.RecoveryArgs)
    ap.add_argument("-r", "--recovery-directory", type=Path, default=None)
    ap.add_argument("-s", "--snapshot-interval", type=float, default=None)
    ap.add_argument("-b", "--backup-interval", type=float, default=0.0)
    args = ap.parse_args()
    addresses = args.addresses.split(";") if args.addresses else None
    epoch, recovery = LIVE_EPOCH, None
    if args.recovery_directory is not None:
        # Bytewax snapshots at every epoch end: with a store the epoch is the snapshot
        # interval (as in bytewax.run), the price of recovery in output latency
        epoch = timedelta(seconds=args.snapshot_interval or 1.0)
        recovery = RecoveryConfig(
            str(args.recovery_directory), timedelta(seconds=args.backup_interval)
        )
    cli_main(
        flow_from_env(),
        workers_per_process=1,
        process_id=args.process_id,
        addresses=addresses,
        epoch_interval=epoch,
        recovery_config=recovery,
    )


if __name__ == "__main__":
    main()
