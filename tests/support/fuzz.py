"""What schemathesis cannot read in the OpenAPI document: the service's refusals of well-formed input.

A few operations refuse a request that the document calls well formed, for what it means rather
than its shape: a wrong code or password, an address mail cannot reach, a password on the list
of common ones, a credential no authenticator signed. The document says so in each operation's
description, with its 422; ``schemathesis.toml`` lets ``positive_data_acceptance`` take that 422
for these operations only, and the check here makes that allowance exact: such a 422 must name
only the fields listed for its operation. Any other field named by a 422 to valid input is a
disagreement between the document and the service, and fails the run.

Imported by tests/test_fuzz.py and by the CLI's hooks (tests/support/fuzz_hooks.py); importing
it registers the check with schemathesis.
"""

from __future__ import annotations

import schemathesis

# Operation → the body fields a 422 may name when the request is schema-valid (the reason).
SEMANTIC_REFUSALS: dict[str, frozenset[str]] = {
    # An address mail cannot reach (a reserved domain such as .test, a non-ASCII local part);
    # a common password, or the address itself as password.
    "POST /auth/register": frozenset({"email", "password"}),
    # An address that no account could ever have had (the same rule as above, with the spelling
    # stored before it also taken).
    "POST /auth/login": frozenset({"email"}),
    "POST /auth/password_reset/request": frozenset({"email"}),
    # An unreachable address, or the address the account already has.
    "POST /auth/email": frozenset({"new_email"}),
    # A wrong current password; a common new one.
    "POST /auth/password": frozenset({"current_password", "new_password"}),
    "POST /auth/password_reset": frozenset({"new_password"}),
    # A wrong code (or no pending setup's code).
    "POST /auth/mfa/totp/confirm": frozenset({"code"}),
    "DELETE /auth/mfa/totp": frozenset({"code"}),
    # TOTP on and no code.
    "POST /auth/reauthenticate": frozenset({"code"}),
    # A credential that no authenticator made for a challenge of ours.
    "POST /auth/passkeys/registration/verify": frozenset({"credential"}),
    # A ban's end that is already past (or after the year 9000).
    "POST /admin/users/{user_id}/ban": frozenset({"until"}),
    # A number that is not valid, or not of SMS_ALLOWED_REGIONS (422 invalid_phone); the account's
    # own number.
    "POST /auth/phone/code": frozenset({"phone"}),
    "POST /auth/phone/verify": frozenset({"phone"}),
    "POST /auth/phone": frozenset({"phone"}),
    "POST /auth/phone/confirm": frozenset({"phone"}),
}


@schemathesis.check
def refusal_names_its_reason(ctx, response, case):
    """A 422 to schema-valid input names only the fields whose meaning may be refused (above)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    allowed = SEMANTIC_REFUSALS.get(case.operation.label)
    if allowed is None:
        return None  # positive_data_acceptance reports it
    try:
        named = set(response.json().get("errors") or {})
    except ValueError:
        named = set()
    if not named or not named <= allowed:
        raise AssertionError(
            f"A schema-valid request was refused for {sorted(named) or 'no field'}: for "
            f"{case.operation.label} only {sorted(allowed)} can be refused for what they mean"
        )
    return None
