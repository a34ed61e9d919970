"""records/jobs.py: a sweep's job files, written by the sweep and read back by it and by report."""

from __future__ import annotations

from pathlib import Path

from mila_bench.records.jobs import JOB_FILE, read_jobs, write_job


def test_job_records_read_back_by_job_number_and_a_damaged_one_is_skipped(tmp_path: Path) -> None:
    for job in (1, 0):
        (tmp_path / str(job)).mkdir()
        write_job(tmp_path / str(job), {"job": job, "status": "completed", "overrides": [f"seed={job}"]})
    (tmp_path / "2").mkdir()
    (tmp_path / "2" / JOB_FILE).write_text('{"job": 2, "sta')  # being written, or damaged
    assert [(j["job"], j["overrides"]) for j in read_jobs(tmp_path)] == [(0, ["seed=0"]), (1, ["seed=1"])]
    assert read_jobs(tmp_path / "absent") == []
