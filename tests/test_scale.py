"""Scale-out on Dask: a clip's encode slot is its worker's, not a network round trip."""

from __future__ import annotations

import threading

import pytest

from flows import scale
from processing.config import load_config

pytestmark = pytest.mark.slow


def _slot_taken_here(slots: int) -> tuple[str, int | None]:
    """Run in a Dask worker: what the encode slot is, and how many it allows."""
    cfg = load_config(overrides={"orchestration": {"max_parallel_encodes": slots}})
    slot = scale.encode_slot(cfg, "no-such-limit")()
    return type(slot).__name__, getattr(slot, "_initial_value", None)


def test_encode_slot_is_the_workers_own_on_dask_and_the_servers_elsewhere() -> None:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        on_worker = client.submit(_slot_taken_here, 3).result(timeout=120)
    assert on_worker == ("BoundedSemaphore", 3)
    # In the flow's own process (threads) the slot is the server's limit; it is not
    # entered here, so no server is needed.
    kind, _ = _slot_taken_here(3)
    assert kind != type(threading.BoundedSemaphore(1)).__name__
