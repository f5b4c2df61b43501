"""Defer held sensor task instances straight in the metadata database, as Airflow itself does.

Starting thousands of sensor tasks on two cores only to see them defer would measure task start-up,
not waiting: each start costs seconds of CPU. So the many-waits benchmark holds its sensor tasks in
a pool without slots and this module writes, for each held task instance, the rows a deferral
writes: a ``trigger`` row holding our :class:`XAIBatchTrigger`'s serialised kwargs (encrypted with
the deployment's Fernet key) and the task instance moved to ``deferred`` with its ``trigger_id``,
``next_method`` and ``trigger_timeout``. It is what the scheduler's ``TaskInstance.defer_task``
writes for a ``start_from_trigger`` task. From there on everything is the deployment's own: the
triggerers claim the rows, run the triggers and resume the task instances with their events.

Run with the deployment's environment (its database URL and Fernet key)::

    python -m benchmarks.defer_held_waits DAG_ID TASK_ID BATCH_IDS.json POLL_INTERVAL TIMEOUT BELOW KIND
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

# A little after the trigger's own deadline, as the sensor's deferral sets it.
BACKSTOP_SECONDS = 300


def defer_held(
    dag_id: str,
    task_id: str,
    batch_ids: list[str],
    poll_interval: float,
    timeout: float,
    below: int,
    kind: str = "xai",
) -> int:
    """Defer the scheduled task instances of ``dag_id.task_id`` with a map index under ``below``.

    ``kind="xai"``: each waits in an :class:`XAIBatchTrigger` on the batch its map index picks
    from ``batch_ids``; ``kind="sleep"``: in Airflow's own ``DateTimeTrigger``, until ``timeout``
    from now (what a wait costs a deployment when the trigger does nothing). Returns the number
    deferred.
    """
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.providers.standard.triggers.temporal import DateTimeTrigger
    from airflow.triggers.base import BaseTrigger
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    from airflow_provider_xai_batch.triggers.batch import XAIBatchTrigger

    now = datetime.now(timezone.utc)
    with create_session() as session:
        held = session.scalars(
            select(TaskInstance)
            .where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.task_id == task_id,
                TaskInstance.state == TaskInstanceState.SCHEDULED,
                TaskInstance.map_index < below,
            )
            .with_for_update()
        ).all()
        for ti in held:
            trigger: BaseTrigger
            if kind == "sleep":
                trigger = DateTimeTrigger(moment=now + timedelta(seconds=timeout))
            else:
                trigger = XAIBatchTrigger(
                    batch_id=batch_ids[ti.map_index],
                    poll_interval=poll_interval,
                    end_time=time.time() + timeout,
                )
            row = Trigger.from_object(trigger)
            session.add(row)
            session.flush()
            ti.state = TaskInstanceState.DEFERRED
            ti.trigger_id = row.id
            ti.next_method = "execute_complete"
            ti.next_kwargs = {}
            ti.start_date = now
            ti.try_number += 1
            ti.trigger_timeout = now + timedelta(seconds=timeout + BACKSTOP_SECONDS)
    return len(held)


def main() -> None:
    dag_id, task_id, ids_path, poll_interval, timeout, below = sys.argv[1:7]
    kind = sys.argv[7] if len(sys.argv) > 7 else "xai"
    batch_ids = json.loads(Path(ids_path).read_text())
    print(defer_held(dag_id, task_id, batch_ids, float(poll_interval), float(timeout), int(below), kind))


if __name__ == "__main__":
    main()
