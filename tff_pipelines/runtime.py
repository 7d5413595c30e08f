"""The TFF simulation runtime: started quietly, and never left behind.

TFF's stock local C++ context runs computations in a child process (`worker_binary`) that
outlives Python, keeps the parent's stdout/stderr open (so anything waiting on that output hangs),
logs to it, and polls once a second for it to come up. We build the same context from TFF's parts
around a worker we own: output to /dev/null (inherited with TFFP_DEBUG=1), killed by the kernel
if we die (PR_SET_PDEATHSIG), stopped explicitly on exit.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator

_PR_SET_PDEATHSIG = 1
_WORKER_START_TIMEOUT = 60.0
_GRPC_MAX_MESSAGE_BYTES = 2 * 1000 * 1000 * 1000
_GRPC_OPTIONS = [
    ("grpc.max_message_length", _GRPC_MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", _GRPC_MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", _GRPC_MAX_MESSAGE_BYTES),
]
_lock = threading.RLock()
_worker: _Worker | None = None


def silence_tensorflow() -> None:
    """Turns off TF/TFF/absl log noise; must run before tensorflow is imported to catch C++ logs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    warnings.filterwarnings("ignore", category=UserWarning, module="tensorflow")
    for name in ("tensorflow", "absl", "jax", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with contextlib.suppress(ImportError):
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)


# Runs in the child before it becomes the worker: ask the kernel to kill it when we die, make sure
# we have not died already, then exec the worker (same pid, the setting survives exec). Done in
# a fresh interpreter, not a `preexec_fn`: forking a process whose gRPC threads are live and
# running Python in the child can abort in gRPC's fork handler; without preexec_fn, subprocess
# uses vfork/exec.
_EXEC_WITH_PARENT_DEATH_SIGNAL = (
    "import ctypes, os, signal, sys\n"
    f"ctypes.CDLL('libc.so.6').prctl({_PR_SET_PDEATHSIG}, signal.SIGKILL)\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


class _Worker:
    """One `worker_binary` process and the gRPC stub that talks to it, owned by us."""

    def __init__(self, binary: str):
        self._binary = binary
        self._process: subprocess.Popen | None = None
        self._stub = None

    def stub(self):
        """A ready stub, (re)starting the worker if it is not running."""
        import grpc
        import portpicker
        from tensorflow_federated.python.core.impl.executors import remote_executor_grpc_stub

        if self._stub is not None and self._process is not None and self._process.poll() is None:
            return self._stub
        self.stop()
        port = portpicker.pick_unused_port()
        quiet = not os.environ.get("TFFP_DEBUG")
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-S",
                "-c",
                _EXEC_WITH_PARENT_DEATH_SIGNAL,
                str(os.getpid()),
                self._binary,
                f"--port={port}",
                "--max_concurrent_computation_calls=-1",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if quiet else None,
            stderr=subprocess.DEVNULL if quiet else None,
        )
        channel = grpc.insecure_channel(f"localhost:{port}", _GRPC_OPTIONS)
        stub = remote_executor_grpc_stub.RemoteExecutorGrpcStub(channel)
        deadline = time.monotonic() + _WORKER_START_TIMEOUT
        while not stub.is_ready:
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    "TFF worker_binary did not start; run with TFFP_DEBUG=1 to see its output"
                )
            time.sleep(0.01)
        self._stub = stub
        return stub

    def stop(self, timeout: float = 5.0) -> None:
        process, self._process, self._stub = self._process, None, None
        if process is None or process.poll() is not None:
            if process is not None:
                process.wait()
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def pid(self) -> int | None:
        running = self._process is not None and self._process.poll() is None
        return self._process.pid if running else None


def _worker_binary_path() -> str:
    import tensorflow_federated

    path = os.path.join(os.path.dirname(tensorflow_federated.__file__), "data", "worker_binary")
    if not os.path.isfile(path):
        raise RuntimeError(f"TFF worker binary not found at {path}")
    return path


def start() -> None:
    """Installs a local C++ execution context whose worker we own. Idempotent."""
    global _worker
    with _lock:
        if _worker is not None:
            return
        silence_tensorflow()
        import tensorflow as tf
        import tensorflow_federated as tff  # noqa: F401  (sets up TFF's context stack)
        from tensorflow_federated.python.core.backends.native import compiler
        from tensorflow_federated.python.core.environments.tensorflow_frontend import (
            tensorflow_computation,
        )
        from tensorflow_federated.python.core.impl.context_stack import context_stack_impl
        from tensorflow_federated.python.core.impl.execution_contexts import (
            sync_execution_context,
        )
        from tensorflow_federated.python.core.impl.executor_stacks import python_executor_stacks
        from tensorflow_federated.python.core.impl.executors import remote_executor
        from tensorflow_federated.python.core.impl.types import placements

        tf.get_logger().setLevel(logging.ERROR)
        tf.autograph.set_verbosity(0)
        worker = _Worker(_worker_binary_path())

        def executor_stack(cardinalities):
            cardinalities.setdefault(placements.CLIENTS, 0)
            executor = remote_executor.RemoteExecutor(worker.stub())
            executor.set_cardinalities(cardinalities)
            return executor

        context = sync_execution_context.SyncExecutionContext(
            executor_fn=python_executor_stacks.ResourceManagingExecutorFactory(
                executor_stack_fn=executor_stack
            ),
            compiler_fn=compiler.desugar_and_transform_to_native,
            transform_args=tensorflow_computation.transform_args,
            transform_result=tensorflow_computation.transform_result,
        )
        context_stack_impl.context_stack.set_default_context(context)
        _worker = worker
        atexit.register(shutdown)


def shutdown() -> None:
    """Stops the worker (it restarts on the next computation), so no process outlives a command."""
    with _lock:
        if _worker is not None:
            _worker.stop()


def live_worker_pid() -> int | None:
    """Pid of our running worker, if any (for tests and diagnostics)."""
    return _worker.pid if _worker is not None else None


@contextlib.contextmanager
def session() -> Iterator[None]:
    """Scope for TFF computations; the worker is stopped when it ends, however it ends."""
    start()
    previous = signal.getsignal(signal.SIGTERM)

    def _terminate(signum, frame):
        raise SystemExit(128 + signum)

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        shutdown()
