"""Random form data posted to the dashboard's login and password forms: a 4xx or a page,
never a server error, and the account still works afterwards."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dashboard.conftest import PASSWORD, DashboardUnderTest, csrf_from

field_value = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(["", "\x00", "\u202e" * 50, "a" * 5000, "' OR 1=1 --", "%00", "<script>"]),
)
form = st.dictionaries(
    st.sampled_from(["name", "password", "csrf_token", "current", "new", "repeat", "next"])
    | st.text(alphabet=st.characters(categories=["L", "N", "P"]), min_size=1, max_size=20),
    field_value,
    max_size=6,
)

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(data=form, with_token=st.booleans())
async def test_random_login_forms_never_cause_a_server_error(
    dashboard: DashboardUnderTest, data: dict[str, str], with_token: bool
) -> None:
    client = await dashboard.anonymous()
    if with_token:
        data["csrf_token"] = csrf_from(await (await client.get("/login")).text())
    response = await client.post("/login", data=data, allow_redirects=False)
    assert response.status < 500, await response.text()
    assert response.status in {200, 302, 303, 400, 401, 403, 422, 429}


@settings(FUZZ, max_examples=10)  # each example hashes passwords (argon2): slow by design
@given(data=form)
async def test_random_password_forms_never_cause_a_server_error_nor_change_the_password(
    dashboard: DashboardUnderTest, data: dict[str, str]
) -> None:
    client = await dashboard.client("admin")
    data["csrf_token"] = await dashboard.csrf(client, "/account/password")
    if data.get("new") and data.get("new") == data.get("repeat"):
        data["current"] = "not the password"  # random data must never change it
    response = await client.post("/account/password", data=data, allow_redirects=False)
    assert response.status < 500, await response.text()
    fresh = await dashboard.anonymous()
    login = await dashboard.log_in(fresh, client.account.name, PASSWORD)  # type: ignore[attr-defined]
    assert login.status == 302
