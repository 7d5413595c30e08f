import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import psutil

from tff_pipelines import runtime


def _add_one():
    import tensorflow_federated as tff

    @tff.tensorflow.computation(np.int32)
    def add_one(x):
        return x + 1

    return add_one


def test_session_stops_its_worker_and_a_new_session_restarts_it():
    with runtime.session():
        assert _add_one()(1) == 2
        first = runtime.live_worker_pid()
        assert first is not None and psutil.pid_exists(first)
    assert runtime.live_worker_pid() is None
    assert not psutil.pid_exists(first) or psutil.Process(first).status() == "zombie"
    with runtime.session():
        assert _add_one()(2) == 3
    assert runtime.live_worker_pid() is None


_CHILD = textwrap.dedent(
    """
    import sys, time
    from tff_pipelines import runtime
    runtime.start()
    import numpy as np, tensorflow_federated as tff
    @tff.tensorflow.computation(np.int32)
    def f(x):
        return x
    f(1)
    print(runtime.live_worker_pid(), flush=True)
    if sys.argv[1] == "hang":
        time.sleep(600)
    """
)


def _spawn(mode: str) -> tuple[subprocess.Popen, int]:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = child.stdout.readline()
    return child, int(line)


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie":
            return True
        time.sleep(0.1)
    return False


def test_worker_does_not_outlive_a_normal_exit_or_hold_the_output_pipe():
    child, worker = _spawn("exit")
    # communicate() returns only when every holder of the pipes has closed them.
    child.communicate(timeout=60)
    assert child.returncode == 0
    assert _gone(worker)


def test_worker_dies_with_a_killed_parent():
    child, worker = _spawn("hang")
    try:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert _gone(worker)
    finally:
        child.kill()
        child.communicate()
