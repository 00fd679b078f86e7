"""CSV import jobs (dripd/api/imports.py): what the server has received, checked and enrolled."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from dripd.api.imports import ImportJobs

router = APIRouter(prefix="/api/imports", tags=["enrollment"])

IMPORT_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


def _jobs(request: Request) -> ImportJobs:
    """The app's registry, made on first use: it lives as long as the app (one daemon run)."""
    jobs = getattr(request.app.state, "import_jobs", None)
    if not isinstance(jobs, ImportJobs):
        jobs = request.app.state.import_jobs = ImportJobs()
    return jobs


ImportJobsDep = Annotated[ImportJobs, Depends(_jobs)]


@router.get("", summary="CSV imports: the running ones and the last 50 finished")
async def list_imports(jobs: ImportJobsDep) -> dict[str, Any]:
    return {"imports": [job.to_json() for job in jobs.all()]}


@router.get("/{import_id}", summary="One CSV import's progress: state, bytes received, rows checked, enrolled")
async def get_import(jobs: ImportJobsDep,
                     import_id: str = Path(pattern=IMPORT_ID_PATTERN, description="the import's id")) -> dict[str, Any]:
    return jobs.get(import_id).to_json()
