"""``train_onset`` on the small library of ``test_onset_room`` (the committed clips), run as
a script by ``test_onset_room``: ``--jobs`` spawns its workers, and a spawned worker imports
this script again, so they train on the same library. ``PIDS`` (a file): each process that
makes a stream appends its id (``TOGETHER``: below); ``KILL`` set: every worker dies at
once, without a word; ``HOLD`` set: every worker appends its id and then trains on for ten
minutes (until something stops it); ``DIE_AFTER_STATES=N``: the process dies, without a
word, right after it has written its N-th member state (``train_onset --resume``).
Before training, the script's own process runs a backward pass as ``torch.compile`` runs it
(AOTAutograd): after that, torch refuses autograd in a forked child, so workers that were
forked, not spawned, fail here."""

import os
import sys
import time
from pathlib import Path

from test_onset_room import small_library

from avag_core.events import train_onset

_make_stream = train_onset.make_stream
_waited = False  # this process's first stream has waited for the others (TOGETHER)


def _logged(lib, rng, recipe):
    global _waited
    pids = Path(os.environ["PIDS"])
    with pids.open("a") as f:
        f.write(f"{os.getpid()}\n")
    # TOGETHER=N: a process's first stream waits (up to a minute) until N processes make
    # streams, so members that do train at once are seen to (a tiny member would otherwise
    # finish before the pool's second worker has started, and one worker would take both)
    together = int(os.environ.get("TOGETHER", "0"))
    deadline = time.monotonic() + 60.0
    while not _waited and len(set(pids.read_text().split())) < together and time.monotonic() < deadline:
        time.sleep(0.05)
    _waited = True
    return _make_stream(lib, rng, recipe)


def _killed(*_args: object) -> None:
    os._exit(9)


def _held(*_args: object) -> None:
    with Path(os.environ["PIDS"]).open("a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(600.0)


train_onset.load_library = small_library
train_onset.make_stream = _logged
if os.environ.get("KILL"):
    train_onset.train_member = _killed
if os.environ.get("HOLD"):
    train_onset.train_member = _held
if os.environ.get("DIE_AFTER_STATES"):
    _save_state = train_onset.save_member_state
    _states = 0

    def _save_then_die(*args: object, **kwargs: object) -> None:
        global _states
        _save_state(*args, **kwargs)
        _states += 1
        if _states >= int(os.environ["DIE_AFTER_STATES"]):
            os._exit(9)

    train_onset.save_member_state = _save_then_die

if __name__ == "__main__":
    import torch
    from functorch.compile import aot_function, nop

    x = torch.ones(3, requires_grad=True)
    aot_function(lambda v: (v * v).sum(), fw_compiler=nop, bw_compiler=nop)(x).backward()
    sys.exit(train_onset.main(sys.argv[1:]))
