"""Fine-tune jobs: created by the triggers, claimed by one worker at a time (a lease renewed by a
heartbeat), and their state as GetJob reports it."""
from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.domain import Job
from core.store.schema import insert_ignore, jobs_table

CLAIM_LOCK_KEY = 0x5EC5  # PostgreSQL advisory lock taken while claiming a fine-tune job


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, job_id: str, parent_version: str, max_steps: int) -> tuple[Job, bool]:
        """Insert a PENDING job unless one with this id exists; returns (job, created)."""
        now = time.time()
        stmt = insert_ignore(self.engine, jobs_table).on_conflict_do_nothing(index_elements=["job_id"])
        with self.engine.begin() as conn:
            result = conn.execute(
                stmt,
                dict(job_id=job_id, state="PENDING", progress=0.0, message="queued", parent_version=parent_version,
                     new_version="", max_steps=max_steps, created=now, updated=now),
            )
        job = self.get(job_id)
        assert job is not None
        return job, bool(result.rowcount)

    def update(self, job_id: str, **fields: object) -> None:
        fields.setdefault("updated", time.time())
        with self.engine.begin() as conn:
            conn.execute(sa.update(jobs_table).where(jobs_table.c.job_id == job_id).values(**fields))

    def touch(self, job_id: str) -> None:
        """Renew a running job's lease without changing what it reports."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(jobs_table).where(jobs_table.c.job_id == job_id, jobs_table.c.state == "RUNNING")
                         .values(updated=time.time()))

    def states(self) -> dict[str, tuple[int, float]]:
        """state -> (jobs in it, longest created-to-last-update seconds), for the metrics endpoint."""
        c = jobs_table.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(c.state, sa.func.count(), sa.func.max(c.updated - c.created)).group_by(c.state)).all()
        return {r[0]: (int(r[1]), float(r[2] or 0.0)) for r in rows}

    def get(self, job_id: str) -> Job | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(jobs_table).where(jobs_table.c.job_id == job_id)).first()
        return Job(**row._mapping) if row else None

    def claim(self, job_id: str, owner: str = "", lease_s: float = float("inf")) -> bool:
        """Mark the job RUNNING for `owner` unless another job is RUNNING with a live lease (reported
        within `lease_s`). One statement on SQLite (its write lock serialises it); on PostgreSQL a
        transaction-scoped advisory lock serialises concurrent claims, so two workers never both win."""
        now = time.time()
        other = sa.select(jobs_table.c.job_id).where(
            jobs_table.c.state == "RUNNING", jobs_table.c.job_id != job_id, jobs_table.c.updated > now - lease_s
        ).exists()
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK_KEY})
            result = conn.execute(
                sa.update(jobs_table)
                .where(jobs_table.c.job_id == job_id, ~other,
                       sa.or_(jobs_table.c.state != "RUNNING", jobs_table.c.updated <= now - lease_s))
                .values(state="RUNNING", progress=0.0, message="starting", updated=now, owner=owner)
            )
        return bool(result.rowcount)

    def active(self, lease_s: float = float("inf")) -> list[Job]:
        """PENDING jobs and RUNNING jobs whose lease is live."""
        c = jobs_table.c
        live = sa.or_(c.state == "PENDING", sa.and_(c.state == "RUNNING", c.updated > time.time() - lease_s))
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(jobs_table).where(live)).all()
        return [Job(**r._mapping) for r in rows]

    def abandoned(self, owner: str, lease_s: float) -> list[Job]:
        """RUNNING jobs that no live worker holds: claimed by `owner` (a worker starting under the
        name of one that died) or silent for longer than the lease."""
        c = jobs_table.c
        dead = sa.and_(c.state == "RUNNING", sa.or_(c.owner == owner, c.updated <= time.time() - lease_s))
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(jobs_table).where(dead)).all()
        return [Job(**r._mapping) for r in rows]
