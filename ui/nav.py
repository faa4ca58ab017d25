"""The app's pages and who may open them: one table for the router, the gate and the sign-in redirect."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageDef:
    file: str
    title: str
    icon: str
    url_path: str  # "" for the home page
    role: str = "user"  # the role a user needs: "user" (everyone signed in) or "admin"


PAGES = {
    "home": PageDef("app_pages/home.py", "Home", ":material/home:", ""),
    "datasets": PageDef("app_pages/datasets.py", "Datasets", ":material/table:", "datasets"),
    "train": PageDef("app_pages/train.py", "Train", ":material/play_arrow:", "train"),
    "batch": PageDef("app_pages/batch.py", "Batch", ":material/stacks:", "batch"),
    "runs": PageDef("app_pages/runs.py", "Runs", ":material/monitoring:", "runs"),
    "models": PageDef("app_pages/models.py", "Models", ":material/deployed_code:", "models"),
    "account": PageDef("app_pages/account.py", "Account", ":material/person:", "account"),
    "admin": PageDef("app_pages/admin.py", "Admin", ":material/admin_panel_settings:", "admin", role="admin"),
}
PAGE_PATHS = frozenset(p.url_path for p in PAGES.values())


def allowed(page: PageDef, roles: tuple[str, ...]) -> bool:
    return page.role == "user" or page.role in roles
