"""How fast `natlink doctor` reacts to Ctrl-C while it waits for an absent router (issue 17: must be < 0.3 s).
Run as root: python3 bench/doctor_interrupt.py [rounds]. Prints each round's SIGINT-to-exit time."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from natlink.lab import Lab  # noqa: E402


def main(rounds: int) -> None:
    times = []
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        lab.router_down()
        cfg = Path(tmp) / "c.toml"
        cfg.write_text(f'[router]\ntimeout = 5\n[service]\nstate_dir = "{tmp}/state"\n')
        for _ in range(rounds):
            proc = lab.popen("lan", [sys.executable, "-m", "natlink", "-c", str(cfg), "doctor"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            proc.stdout.readline()  # link 1 is on screen: the router wait is under way
            time.sleep(0.5)
            sent = time.monotonic()
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=10)
            times.append(time.monotonic() - sent)
            print(f"exit {proc.returncode} {times[-1] * 1000:.0f} ms after SIGINT")
    print(f"max {max(times) * 1000:.0f} ms, median {sorted(times)[len(times) // 2] * 1000:.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
