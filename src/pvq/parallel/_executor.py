"""One interface for fanning out independent tasks: a local process pool (default) or a Ray cluster."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Protocol

from pvq.errors import PvqInputError

__all__ = ["Executor", "SerialExecutor", "LocalExecutor", "RayExecutor", "get_executor"]


class Executor(Protocol):
    """``imap(fn, tasks)`` yields ``(index, fn(task))`` as tasks finish (any order); ``close()`` frees it."""

    workers: int

    def imap(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Runs tasks one after the other in this process (``workers=1``; tests, debugging)."""

    workers = 1

    def imap(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        for i, t in enumerate(tasks):
            yield i, fn(t)

    def close(self) -> None:
        pass


class LocalExecutor:
    """A ``concurrent.futures`` process pool with ``workers`` processes (default: all cores).

    Workers are *spawned*, not forked: a fork after this process has started native thread pools (the
    SDP solver's, BLAS) can leave a child waiting forever on a lock held by a thread that no longer exists.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = int(workers or os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None

    def imap(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        futs = {self._pool.submit(fn, t): i for i, t in enumerate(tasks)}
        pending = set(futs)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    yield futs[f], f.result()
        finally:
            for f in pending:
                f.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


class RayExecutor:
    """Tasks as Ray remote functions. ``address``: a cluster (``ray://host:10001`` or ``host:6379``) or
    ``"local"`` to start a local Ray instance with ``workers`` CPUs."""

    def __init__(self, address: str, workers: int | None = None) -> None:
        import ray

        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            try:
                if address == "local":
                    ray.init(
                        num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False
                    )
                else:
                    ray.init(address=address, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:  # no cluster there, or not a Ray one
                msg = " ".join(str(exc).split())[:160]
                raise PvqInputError(f"--ray-address {address}: Ray could not connect ({msg})") from None
            self._started = True
        self.workers = int(ray.cluster_resources().get("CPU", 1))

    def imap(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        ray = self._ray
        remote = ray.remote(num_cpus=1)(fn)
        refs = {remote.remote(t): i for i, t in enumerate(tasks)}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for r in done:
                    yield refs[r], ray.get(r)
        finally:
            for r in pending:
                ray.cancel(r)

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False


def get_executor(ray_address: str | None = None, workers: int | None = None) -> Executor:
    """Ray when ``ray_address`` is given (``"local"`` starts one here), else a local process pool
    (``workers=1``: in this process)."""
    if ray_address:
        return RayExecutor(ray_address, workers)
    if workers == 1:
        return SerialExecutor()
    return LocalExecutor(workers)
