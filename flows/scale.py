"""Scale-out on Dask (prefect-dask): what keeps a worker as fast per core as threads.

What made a 2-worker cluster slower than threads, and what this module does
instead:

* **Encode slots held across the network.** Each clip took one of the
  Prefect server's global ``supportreel-encodes`` slots: an HTTP round trip to
  take it and one to give it back, polling while the limit is full, and a
  limit shared by the whole cluster, so adding machines never added encodes.
  On a Dask worker the worker's own threads already bound its work; its slot
  is now a semaphore in the worker process (``max_parallel_encodes`` per
  worker), taken and given back without leaving the machine.
* **Start-up per task.** A worker imported Prefect, the pipeline and its
  libraries inside its first task, while the flow waited. :func:`dask_setup`
  (Dask's preload hook: ``dask worker --preload flows.scale``) and
  :class:`Warm` (a worker plugin the flow registers) do it once per worker,
  before any clip.

* **One thread per worker, busy with bookkeeping.** A clip's task on a worker
  spends seconds in Prefect's task-run calls to the server, fetching the
  upload, the probe, health and loudness pass before it encodes, and the
  output checks after. With as many worker threads as encode slots the core
  idles meanwhile; with one thread more than the slots (the slots are the
  semaphore above, not the threads) the next clip gets ready while one
  encodes. The slot is held around the encode only (``processing.clip.driver``),
  so the extra thread's clip does all of that outside it.

Threads on one machine keep the server's global limit: there several runs
(an on-demand run next to the nightly one) share the machine's encode slots.
A clip takes a slot of its own process first (the same semaphore), then the
server's, and the flow keeps ``max_parallel_encodes + prepare_ahead`` clips in
hand (:func:`in_flight`).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from processing.config import Config

#: The semaphore each worker process uses for its encode slots, by size.
_SLOTS: dict[int, threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def on_dask_worker() -> bool:
    """Whether this code runs inside a Dask worker (a task the Dask runner shipped)."""
    try:
        from distributed import get_worker
    except ImportError:  # pragma: no cover - distributed is a dependency
        return False
    try:
        get_worker()
    except ValueError:
        return False
    return True


def _local_slots(size: int) -> threading.BoundedSemaphore:
    with _SLOTS_LOCK:
        if size not in _SLOTS:
            _SLOTS[size] = threading.BoundedSemaphore(size)
        return _SLOTS[size]


def encode_slot(cfg: Config, limit: str) -> Callable[[], AbstractContextManager[Any]]:
    """The encode slot for one clip: in the worker process on Dask, the server's otherwise.

    Outside Dask the clip first takes one of this process's own slots, then the
    server's: a slot given back here goes straight to a clip of this run that
    waits for it, instead of idling until that clip's next poll of the server
    (Prefect answers a full limit with a ``Retry-After`` that grows with the
    number of clips waiting, up to 30 s). The server's limit still bounds the
    encodes of every run together.

    Args:
        cfg: The campaign config (``orchestration.max_parallel_encodes``).
        limit: Name of the server's global concurrency limit (threads).
    """
    slots = _local_slots(max(1, cfg.orchestration.max_parallel_encodes))
    if on_dask_worker():
        return lambda: slots

    @contextlib.contextmanager
    def server_slot() -> Iterator[None]:
        from prefect.concurrency.sync import concurrency

        with slots, concurrency(limit, occupy=1, strict=False):
            yield

    return server_slot


def in_flight(cfg: Config, dask: bool) -> int | None:
    """How many clips to encode the flow keeps submitted at once (None: all, on Dask).

    Threads: the encode slots plus ``orchestration.prepare_ahead``, so that
    the next clips are fetched, probed, checked and planned (and the last ones
    verified and measured) while the slots encode, and a 100-clip batch does
    not start 100 health checks at once. Dask: each worker's threads bound
    its clips already (one more thread than its slots, see the module text).
    """
    if dask:
        return None
    o = cfg.orchestration
    return max(1, o.max_parallel_encodes) + max(0, o.prepare_ahead)


def warm() -> None:
    """Import what a clip's task needs (Prefect, the flows, the pipeline) in this process."""
    import flows.campaign  # noqa: F401  (the import is the point)
    import processing.pipeline  # noqa: F401


def dask_setup(worker: Any = None) -> None:
    """Dask's preload hook: ``dask worker --preload flows.scale SCHEDULER`` warms the worker."""
    warm()


def warm_plugin() -> Any:
    """A Dask worker plugin: each worker (and each that joins later) runs :func:`warm` once."""
    from distributed import WorkerPlugin

    class Warm(WorkerPlugin):
        name = "supportreel-warm"
        idempotent = True

        def setup(self, worker: Any) -> None:
            warm()

    return Warm()


def task_runner(address: str) -> Any:
    """A :class:`prefect_dask.DaskTaskRunner` on the cluster at ``address``, workers warmed."""
    from prefect_dask import DaskTaskRunner

    class WarmDaskTaskRunner(DaskTaskRunner):
        def __enter__(self) -> WarmDaskTaskRunner:
            super().__enter__()
            # Workers started with the preload are warm already; this covers the others.
            # Only in the flow's process: a task on a worker enters the runner as well, and
            # touching ``client`` there would connect it to the scheduler once per task.
            if not on_dask_worker():
                self.client.register_plugin(warm_plugin())
            return self

        def duplicate(self) -> WarmDaskTaskRunner:
            return type(self)(address=address)

    return WarmDaskTaskRunner(address=address)
