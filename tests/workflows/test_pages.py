"""Every page under AppTest: the sign-in prompt alone when signed out, its screen when signed in, and the
Admin page only for an administrator.

AppTest cannot send a cookie, so a signed-in test swaps `ui.auth.session_token` (where the gate reads the
cookie) for one returning a real session token of a real account; the gate itself runs unchanged. The
pages reach the session's Temporal dev server through TEMPORAL_ADDRESS, as NOTES §9 suggests.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.accounts import Accounts
from core.config import PROJECT_ROOT, load_settings
from core.datasets import ingest_csv
from core.sessions import Sessions
from core.storage import Storage
from orchestration.health import USER_SENTENCES
from orchestration.health_checks import workers_text
from tests.helpers import classification_csv, running_workers
from ui.nav import PAGES
from ui.runtime import service

PASSWORD = "correct horse battery staple"
TIMEOUT = 30  # the first run imports pandas, plotly and the model catalog
TITLES = {
    "home": "TrainEasy",
    "datasets": "Datasets",
    "train": "Train a model",
    "batch": "Batch training",
    "runs": "Runs",
    "models": "Models",
    "account": "Your account",
    "admin": "Administration",
}
PROMPT = [("title", "Sign in to TrainEasy"), ("link_button", "Sign in")]
# the health box of Home and Admin while no worker process runs, as in this module (Temporal answers)
NO_WORKER = r"Not working: No worker process is running\: nothing can be trained, uploaded or predicted\."
# what a user who is not an admin reads on Home instead: no process or log detail (ui/health_view.py show_for_user)
USER_NO_WORKER = USER_SENTENCES["workers"] + " An administrator can see the details."
USER_PAGES = [key for key, page in PAGES.items() if page.role == "user"]


@pytest.fixture(scope="module")
def tokens(temporal_env, tmp_path_factory):
    """A storage root with a plain user and an admin, each with a live web session; the app's cached
    resources (sessions, the Temporal client) are rebuilt for it and dropped afterwards."""
    home = tmp_path_factory.mktemp("pages")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TRAINEASY_HOME", str(home))
        env.setenv("TEMPORAL_ADDRESS", temporal_env.client.service_client.config.target_host)
        env.setenv("TRAINEASY_TASK_QUEUE", f"pages-{uuid.uuid4().hex[:8]}")
        st.cache_resource.clear()
        storage = Storage(home)
        accounts = Accounts(storage)
        accounts.add("alice", PASSWORD)
        accounts.add("root", PASSWORD, role="admin")
        accounts.add("dana", PASSWORD)  # dana has a dataset, stored as the ingest activity stores it
        ingest_csv(storage, "dana", classification_csv(rows=60), "shop.csv", 1 << 20)
        sessions = Sessions(storage, timedelta(hours=1))
        yield {name: sessions.create(name) for name in ("alice", "root", "dana")}
        st.cache_resource.clear()


@pytest.fixture
def sign_in(tokens, monkeypatch):
    def as_user(name: str) -> None:
        monkeypatch.setattr("ui.auth.session_token", lambda: tokens[name])

    return as_user


def drawn(at: AppTest) -> list[tuple[str, str]]:
    """(element type, its text) of every element the run drew in the main area, blocks left out."""
    return [
        (node.type, getattr(node, "value", None) or getattr(node, "label", None) or "")
        for node in at.main
        if node.type not in ("main", "vertical", "horizontal", "column", "tab", "tab_container")
    ]


def open_page(key: str) -> AppTest:
    """The app as a browser opens it: app.py (router and gate), then the page."""
    at = AppTest.from_file(PROJECT_ROOT / "app.py", default_timeout=TIMEOUT).run()
    if key != "home":
        at.switch_page(PAGES[key].file).run()
    return at


def test_every_page_file_is_covered():
    files = {str(p.relative_to(PROJECT_ROOT)) for p in (PROJECT_ROOT / "app_pages").glob("*.py")}
    assert files == {p.file for p in PAGES.values()}
    assert set(TITLES) == set(PAGES)


@pytest.mark.parametrize("key", list(PAGES))
def test_a_page_run_on_its_own_draws_only_the_sign_in_prompt_when_signed_out(tokens, key):
    """Streamlit's old multipage mode can run a page script without app.py: the page gates itself."""
    at = AppTest.from_file(PROJECT_ROOT / PAGES[key].file, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert drawn(at) == PROMPT
    assert not list(at.sidebar)[1:], "nothing in the sidebar either"


def test_the_app_draws_only_the_sign_in_prompt_when_signed_out(tokens):
    at = AppTest.from_file(PROJECT_ROOT / "app.py", default_timeout=TIMEOUT).run()
    assert not at.exception
    assert drawn(at) == PROMPT
    assert not at.get("page_link")


@pytest.mark.parametrize("key", USER_PAGES)
def test_a_signed_in_user_sees_the_page(sign_in, key):
    sign_in("alice")
    at = open_page(key)
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ([USER_NO_WORKER] if key == "home" else [])
    assert TITLES[key] in [t.value for t in at.title]


def test_a_plain_user_gets_no_admin_link(sign_in):
    sign_in("alice")
    at = open_page("home")
    links = [link.proto.page for link in at.get("page_link") if link in at.sidebar]
    assert links and not any("admin" in page for page in links)


@pytest.mark.parametrize("through_app", [True, False], ids=["via-app", "page-alone"])
def test_the_admin_page_refuses_a_plain_user(sign_in, through_app):
    sign_in("alice")
    at = (
        open_page("admin")
        if through_app
        else AppTest.from_file(PROJECT_ROOT / PAGES["admin"].file, default_timeout=TIMEOUT).run()
    )
    assert not at.exception
    assert [e.value for e in at.error] == ["This page is for administrators only."]
    assert TITLES["admin"] not in [t.value for t in at.title]
    assert not at.tabs


def test_the_admin_page_opens_for_an_admin(sign_in):
    sign_in("root")
    at = open_page("admin")
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [NO_WORKER]
    assert TITLES["admin"] in [t.value for t in at.title]
    assert [t.label for t in at.tabs] == ["Accounts", "Quotas", "Audit log", "Engine"]
    assert {"alice", "root"} <= set(at.dataframe[0].value["user"])


def test_the_datasets_page_profiles_a_stored_dataset(sign_in):
    sign_in("dana")
    at = open_page("datasets")
    assert not at.exception and not at.error
    assert r"Profile: shop\.csv" in [h.value for h in at.subheader]  # markdown-escaped by ui.text.md
    assert [m.value for m in at.metric][:2] == ["60", "4"]


@pytest.mark.parametrize(
    ("user", "said"), [("alice", "Training is available."), ("root", f"Everything is working: {workers_text(1)} alive.")]
)
async def test_home_says_everything_works_once_a_worker_is_alive(client, sign_in, user, said):
    sign_in(user)
    async with running_workers(client, load_settings()):  # the page's settings: same home and task queue
        at = await asyncio.to_thread(open_page, "home")  # the script blocks; the workers need this loop
    assert not at.exception and not at.error and not at.warning, [e.value for e in [*at.error, *at.warning]]
    assert [s.value for s in at.success] == [said]


@pytest.mark.parametrize("key", ["train", "batch"])
async def test_the_launch_forms_check_a_stored_dataset_with_a_worker(client, sign_in, key):
    """Train and Batch ask a worker to check the data before launch: real in-process workers answer."""
    sign_in("dana")
    async with running_workers(client, load_settings()):  # the page's settings: same home and task queue
        at = await asyncio.to_thread(open_page, key)  # the script blocks; the workers need this loop
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert TITLES[key] in [t.value for t in at.title]
    assert at.button(key="start_training" if key == "train" else "start_batch")
    # a worker answered the data check of each model on the form; the service keeps the answers
    checked = {k[5] for k in service()._service.check_cache.keys() if k[0] == "dana"}  # type: ignore[index]
    assert checked >= ({"logistic_regression"} if key == "train" else set(at.multiselect[0].value)), checked
    if key == "batch":  # dana has started none: the list says so, not an empty heading
        assert "No batches yet." in [c.value for c in at.caption]
