"""Which failures Prefect retries: storage and network trouble, never a bad upload."""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import Task

from processing.storage.s3client import is_transient


def transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry storage and network failures only; a bad upload is never retried.

    S3 throttling, 5xx answers, timeouts and dropped connections count (boto3's
    own errors too, should one escape translation); a refused request (no such
    bucket, access denied) does not.
    """
    try:
        state.result()
    except (OSError, ConnectionError, TimeoutError):
        return True
    except Exception as exc:
        return is_transient(exc)
    return False
