"""schemathesis CLI hooks: who is signed in while the CLI explores a running trikchi.

``SCHEMATHESIS_HOOKS=tests.support.fuzz_hooks schemathesis run URL/openapi.json ...`` (from the
repository root; tests/test_fuzz.py does it in ``make test``). The environment names the accounts,
which must exist (tests/test_fuzz.py makes them):

* ``TRIKCHI_FUZZ_URL``: the server; ``TRIKCHI_FUZZ_PASSWORD``: every account's password;
* ``TRIKCHI_FUZZ_ADMIN``: an admin's email with TOTP on, ``TRIKCHI_FUZZ_TOTP_SECRET`` its secret and
  ``TRIKCHI_FUZZ_RECOVERY_CODES`` its recovery codes (comma-separated): the ``/admin`` operations
  run as this admin;
* ``TRIKCHI_FUZZ_CUSTOMER``: a customer's email: every other operation runs as this customer;
* ``TRIKCHI_FUZZ_BYSTANDER_ID``: the user id of an account nobody signs in to.

The requests carry the access token of a sign-in. An operation may end that session (sign out
everywhere, delete the account, an admin deactivating the customer): a 401 makes schemathesis
sign in again and repeat the request. A customer that can no longer sign in is replaced by a new
one. An admin signs in with a TOTP code (each is taken once, so the next step's code, then the
recovery codes, serve when one step's code was used).

``PATCH /admin/users/{user_id}`` (and banning or unbanning one) with a well-formed id changes the
bystander, whatever id was drawn or taken from a listing: the body is then judged on an account
that exists (a drawn id is almost never one, and a 404 hides what the body would have done), and no
run demotes, deactivates or bans the admin it explores ``/admin`` with, or the customer.
"""

from __future__ import annotations

import itertools
import os
import time

import pyotp
import requests
import schemathesis

import tests.support.fuzz  # noqa: F401 - registers the check `refusal_names_its_reason`

URL = os.environ.get("TRIKCHI_FUZZ_URL", "http://127.0.0.1:5000")
PASSWORD = os.environ.get("TRIKCHI_FUZZ_PASSWORD", "")
ADMIN = os.environ.get("TRIKCHI_FUZZ_ADMIN", "")
TOTP = pyotp.TOTP(os.environ.get("TRIKCHI_FUZZ_TOTP_SECRET") or pyotp.random_base32())
RECOVERY_CODES = [code for code in os.environ.get("TRIKCHI_FUZZ_RECOVERY_CODES", "").split(",") if code]
BYSTANDER_ID = int(os.environ.get("TRIKCHI_FUZZ_BYSTANDER_ID", "0"))
TIMEOUT = 30

_customer = {"email": os.environ.get("TRIKCHI_FUZZ_CUSTOMER", "")}
_replacements = itertools.count(1)


def _login(email: str) -> requests.Response:
    return requests.post(f"{URL}/auth/login", json={"email": email, "password": PASSWORD}, timeout=TIMEOUT)


def customer_token() -> str:
    """The customer's access token; a new customer's when this one cannot sign in any more."""
    for _attempt in range(5):
        response = _login(_customer["email"])
        if response.status_code == 200 and "access_token" in response.json():
            return response.json()["access_token"]
        # Deleted, deactivated, its password or address changed: a new customer.
        email = f"fuzz-customer-{next(_replacements)}@example.com"
        body = {"name": "Fuzz", "email": email, "password": PASSWORD}
        if requests.post(f"{URL}/auth/register", json=body, timeout=TIMEOUT).status_code == 201:
            _customer["email"] = email
    raise RuntimeError(f"customer sign-in: {response.status_code} {response.text}")


def admin_token() -> str:
    """The admin's access token: password, then a TOTP code (or a recovery code)."""
    second_factors = [
        ("code", TOTP.now()),
        ("code", TOTP.at(time.time() + TOTP.interval)),  # the step ahead, which the window takes
        *(("recovery_code", code) for code in RECOVERY_CODES),
    ]
    for field, code in second_factors:
        response = _login(ADMIN)
        if response.status_code != 200 or not response.json().get("mfa_required"):
            raise RuntimeError(f"admin sign-in: {response.status_code} {response.text}")
        mfa_token = response.json()["mfa_token"]
        verified = requests.post(
            f"{URL}/auth/mfa/verify", json={"mfa_token": mfa_token, field: code}, timeout=TIMEOUT
        )
        if field == "recovery_code":
            RECOVERY_CODES.remove(code)  # used, or refused: never good again
        if verified.status_code == 200:
            return verified.json()["access_token"]
    raise RuntimeError("admin sign-in: every TOTP and recovery code was refused")


def _identity(case, context) -> str:
    return "admin" if context.operation.path.startswith("/admin/") else "customer"


@schemathesis.auth(refresh_interval=3600, cache_by_key=_identity)
class SignedIn:
    """A bearer token of the admin for ``/admin``, of the customer elsewhere."""

    def get(self, case, context):
        return admin_token() if _identity(case, context) == "admin" else customer_token()

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


# Operations on a user that must not touch the accounts the run signs in with.
ON_THE_BYSTANDER = {
    "PATCH /admin/users/{user_id}",
    "POST /admin/users/{user_id}/ban",
    "DELETE /admin/users/{user_id}/ban",
}


@schemathesis.hook
def before_call(context, case, kwargs):
    """``PATCH /admin/users/{user_id}`` (and a ban) with a well-formed id changes the bystander."""
    if case.operation.label not in ON_THE_BYSTANDER:
        return
    user_id = case.path_parameters.get("user_id")
    # The coverage phase writes ids as text; "0.5", "-1" or "true" stay as they are.
    if (isinstance(user_id, int) and not isinstance(user_id, bool) and user_id >= 0) or (
        isinstance(user_id, str) and user_id.isascii() and user_id.isdigit()
    ):
        case.path_parameters["user_id"] = BYSTANDER_ID
