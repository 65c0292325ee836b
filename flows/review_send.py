""" "Send the cut" from the review app, through Prefect's API.

The review app (``processing.web``) has no Prefect imports; it is given a
:class:`PrefectCutSender`, which

* resumes the paused ``remembrance-campaign`` run of the output with an input
  that says "use the decisions saved in the review app" (the contract below), or
* with no paused run, starts a ``build-compilation`` run of the output in a
  child process (``python -m flows.review_send FLOW_RUN_ID``), which builds the
  compilation from the decisions in force.

Resume contract (the pause input of ``remembrance-campaign``,
:class:`flows.params.EditorDecision`): the app sends ``{"use_saved": true,
"editor": NAME}``: the flow reads the decisions in force from the campaign
state (``OUT/decisions.json``, which the app has saved), not from the form. An
answer the flow cannot compile makes the run wait again with the reason, which
the page shows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort

from processing import publish
from processing.config import load_config
from processing.decisions import load_decisions
from processing.errors import ReelError
from processing.storage import open_output
from processing.web.app import RunNews

from .params import CompileParams

CAMPAIGN = "remembrance-campaign"
COMPILE = "build-compilation"


class SendError(ReelError):
    """The cut could not be sent; the message is shown to the editor."""


def resume_input(schema: dict[str, Any], editor: str) -> dict[str, Any]:
    """The pause input for a resume with the saved decisions (see the module's contract).

    Raises:
        SendError: The paused run's form does not offer "use the saved decisions"
            (a run started by an older version): resume it in the Prefect UI.
    """
    props = schema.get("properties") or {}
    if "use_saved" not in props:
        raise SendError(
            "this paused run cannot take the decisions saved here: resume it in the "
            "Prefect UI, or cancel it and send the cut again"
        )
    value: dict[str, Any] = {"use_saved": True}
    if "editor" in props:
        value["editor"] = editor
    return value


class PrefectCutSender:
    """Resumes or starts the runs of one campaign on the Prefect server in ``PREFECT_API_URL``.

    Args:
        config: The campaign TOML the app was started with (passed to a compile run).
    """

    def __init__(self, config: Path | None = None):
        self.config = str(config.resolve()) if config else None

    def send(self, out: str, editor: str) -> RunNews:
        with get_client(sync_client=True) as client:
            paused = self._paused_campaign(client, out)
            if paused is not None:
                return self._resume(client, paused, out, editor)
            return self._start_compile(client, out)

    def status(self, run_id: str) -> RunNews:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(run_id))
        st = run.state
        if st is None:
            return RunNews(run_id, f"Run {run.name}: waiting to start.")
        text = f"Run {run.name}: {(st.name or st.type.value).lower()}"
        if st.message and (st.is_failed() or st.is_paused() or st.is_crashed()):
            text += f": {st.message}"
        final = st.is_final() or st.is_paused()
        return RunNews(run_id, text + ".", final=final, ok=st.is_completed())

    def _paused_campaign(self, client: Any, out: str) -> Any | None:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[CAMPAIGN])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            ),
            sort=FlowRunSort.START_TIME_DESC,
            limit=200,
        )
        mine = [r for r in runs if _same_output((r.parameters.get("params") or {}).get("out"), out)]
        return mine[0] if mine else None

    def _resume(self, client: Any, run: Any, out: str, editor: str) -> RunNews:
        keyset = run.state.state_details.run_input_keyset or {}
        schema: dict[str, Any] = {}
        if "schema" in keyset:
            schema = json.loads(client.read_flow_run_input(run.id, keyset["schema"]))
        dest = open_output(out, load_config(Path(self.config) if self.config else None))
        publish.stage_report(dest)  # the decisions as saved in the store
        decided = load_decisions(dest.root)
        order = list(decided.order) if decided else []
        response = client.resume_flow_run(run.id, run_input=resume_input(schema, editor))
        if response.status.value != "ACCEPT":
            reason = getattr(response.details, "reason", None) or response.status.value
            raise SendError(f"Prefect refused to resume run {run.name}: {reason}")
        return RunNews(
            str(run.id),
            f"Sent: the paused campaign run {run.name} resumes with the {len(order)} clips "
            "approved here; the compilation follows.",
        )

    def _start_compile(self, client: Any, out: str) -> RunNews:
        from .campaign import build_compilation

        params = CompileParams(out=out, config=self.config).model_dump()
        run = client.create_flow_run(build_compilation, parameters={"params": params})
        # A child process: the compile holds the output's lock as its own writer,
        # so the app's saves wait for it instead of sharing the lock as a thread would.
        subprocess.Popen(
            [sys.executable, "-m", "flows.review_send", str(run.id)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return RunNews(
            str(run.id),
            f"No campaign run is waiting: started {COMPILE} run {run.name} with the decisions "
            "saved here.",
        )


def _same_output(a: Any, b: str) -> bool:
    """Whether two ``out`` parameters name one output (a folder however it is spelled)."""
    if not isinstance(a, str):
        return False
    if a.startswith("s3://") or b.startswith("s3://"):
        return a.rstrip("/") == b.rstrip("/")
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def _run_compile(flow_run_id: str) -> int:
    """Run the ``build-compilation`` flow run created by :meth:`PrefectCutSender.send`."""
    from prefect.flow_engine import run_flow

    from .campaign import build_compilation

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(flow_run_id))
    state = run_flow(
        build_compilation, flow_run=run, parameters=run.parameters, return_type="state"
    )
    return 0 if getattr(state, "is_completed", lambda: False)() else 1


if __name__ == "__main__":
    sys.exit(_run_compile(sys.argv[1]))
