"""The REST API (`python -m api`, started by `make run`): FastAPI routes over the same service layer the pages
call, with per-user bearer tokens; see api/app.py."""
