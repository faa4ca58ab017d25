"""The admin's quota panel: each user's usage against their limits, and per-user overrides.

Mounted on the Admin page: `show_quota_admin(service(), admin, usernames)`. The service checks that the
acting user is an admin on every call (and audits the changes); this panel only draws.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.accounts import User
from core.quota_limits import BOUNDS, LIMIT_FIELDS, LIMIT_LABELS, Limits, Usage
from ui.runtime import guard
from ui.sync_service import SyncService

FLASH = "quota_admin_flash"


def show_quota_admin(svc: SyncService, admin: User, usernames: list[str]) -> None:
    """Usage and limits of `usernames`, and a form to override them, for `admin`."""
    st.subheader("Quotas")
    if flash := st.session_state.pop(FLASH, None):
        st.success(flash)
    if not usernames:
        st.caption("No accounts yet.")
        return
    with guard("Reading the quotas"):
        usages = svc.quota_overview(admin, usernames)
        defaults = svc.default_limits(admin)
        st.dataframe(pd.DataFrame([_row(u) for u in usages]), hide_index=True, key="quota_usage_table")
        st.caption(
            "Used / limit per user; * marks a limit set for that user, the others are the defaults: "
            + ", ".join(f"{LIMIT_LABELS[n]} {getattr(defaults, n):,}" for n in LIMIT_FIELDS)
            + "."
        )
        _override_form(svc, admin, {u.user: u.limits for u in usages}, defaults)


def _row(usage: Usage) -> dict[str, str]:
    limits = usage.limits

    def mark(name: str) -> str:
        return " *" if name in limits.overridden else ""

    return {
        "user": usage.user,
        "runs in flight": f"{usage.runs_in_flight} / {limits.max_runs_in_flight}{mark('max_runs_in_flight')}",
        "launches, last minute": f"{usage.launches_last_minute} / {limits.launches_per_minute}{mark('launches_per_minute')}",
        "data tasks, last minute": f"{usage.tasks_last_minute} / {limits.tasks_per_minute}{mark('tasks_per_minute')}",
        "stored": f"{usage.stored_bytes / 2**20:,.1f} / {limits.max_stored_mb:,} MB{mark('max_stored_mb')}",
        "cells per dataset": f"{limits.max_cells:,}{mark('max_cells')}",
    }


def _override_form(svc: SyncService, admin: User, limits_by_user: dict[str, Limits], defaults: Limits) -> None:
    who = st.selectbox("Change the limits of", list(limits_by_user), key="quota_admin_user")
    current = limits_by_user[who]
    keys = {name: f"quota_admin_{name}_{who}" for name in LIMIT_FIELDS}
    with st.form(key=f"quota_admin_form_{who}"):
        grid = st.columns(3)
        values = {}
        for i, name in enumerate(LIMIT_FIELDS):
            low, high = BOUNDS[name]
            values[name] = int(
                grid[i % 3].number_input(
                    LIMIT_LABELS[name],
                    min_value=low,
                    max_value=high,
                    value=getattr(current, name),
                    step=1,
                    key=keys[name],
                    help=f"Default {getattr(defaults, name):,}. A value equal to the default follows the "
                    "default if it changes later.",
                )
            )
        c1, c2 = st.columns(2)
        save = c1.form_submit_button("Save limits", type="primary", key=f"quota_admin_save_{who}")
        reset = c2.form_submit_button("Back to the defaults", key=f"quota_admin_reset_{who}")
    if save:
        with guard("Saving the limits"):
            # only what differs from the defaults is stored as an override
            svc.set_quota_override(admin, who, **{n: (v if v != getattr(defaults, n) else None) for n, v in values.items()})
            st.session_state[FLASH] = f"Limits of {who} saved."
            st.rerun()
    if reset:
        with guard("Resetting the limits"):
            svc.clear_quota_override(admin, who)
            for key in keys.values():  # the inputs show the defaults again
                st.session_state.pop(key, None)
            st.session_state[FLASH] = f"{who} is back to the default limits."
            st.rerun()
