"""Run the fake Angel One for local development: ``python -m tests.fake_angelone``.

It prints the environment to point scalpflow at it, then streams random-walk SNAP_QUOTE ticks
on every websocket connection until Ctrl-C. ``--script`` picks a fault scenario instead.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from tests.fake_angelone.server import (
    Action,
    Close,
    FakeAngelOne,
    Silent,
    Stream,
    sample_master,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=2.0, help="tick rounds per second")
    parser.add_argument(
        "--script",
        choices=["stream", "drop", "stall"],
        default="stream",
        help="drop: close the socket every 10 s; stall: go silent after 10 s",
    )
    args = parser.parse_args()
    today = datetime.now(UTC).date()
    tuesdays = [today + timedelta(days=(1 - today.weekday()) % 7 + 7 * k) for k in range(2)]
    fake = FakeAngelOne(
        master=sample_master(expiries={"NIFTY": tuesdays, "BANKNIFTY": tuesdays[-1:]})
    )
    stream = Stream(rate_hz=args.rate)
    if args.script == "drop":
        fake.ws_script = [[Stream(args.rate, 10.0), Close()] for _ in range(1000)]
    elif args.script == "stall":
        first: list[Action] = [Stream(args.rate, 10.0), Silent()]
        fake.ws_script = [first] + [[stream]] * 1000
    else:
        fake.ws_script = [[stream]] * 1000
    fake.start()
    c = fake.creds
    print("fake Angel One running; export:")
    print(f"  SCALPFLOW_ANGELONE_ROOT_URL={fake.root_url}")
    print(f"  SCALPFLOW_ANGELONE_WS_URL={fake.ws_url}")
    print(f"  SCALPFLOW_ANGELONE_INSTRUMENT_MASTER_URL={fake.master_url}")
    print(f"  SCALPFLOW_ANGELONE_API_KEY={c.api_key}")
    print(f"  SCALPFLOW_ANGELONE_CLIENT_CODE={c.client_code}")
    print(f"  SCALPFLOW_ANGELONE_MPIN={c.mpin}")
    print(f"  SCALPFLOW_ANGELONE_TOTP_SECRET={c.totp_secret}", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
