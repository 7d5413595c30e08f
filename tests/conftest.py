"""Session-wide guards: TF stays quiet, and no TFF worker outlives the test session."""

import os

import pytest

from tff_pipelines import runtime

# Replace TFF's import-time context now, while modules are alive: left to garbage collection at
# interpreter exit, its ServiceManager.__del__ prints a traceback.
runtime.start()


@pytest.fixture(scope="session")
def tff_session():
    """A TFF execution context for tests that run computations; its worker stops afterwards."""
    with runtime.session():
        yield
    assert runtime.live_worker_pid() is None


def pytest_sessionfinish(session, exitstatus):
    runtime.shutdown()
    # Our worker is started with PR_SET_PDEATHSIG and stopped above; check nothing else leaked.
    me = os.getpid()
    import psutil

    leaked = [
        p.pid for p in psutil.Process(me).children(recursive=True) if "worker_binary" in p.name()
    ]
    if leaked:
        raise RuntimeError(f"worker_binary processes outlived the tests: {leaked}")
