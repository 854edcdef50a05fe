// mfa.js — second factors and passkeys for the reference page: set up TOTP (QR code), sign in
// with a code or a recovery code, add passkeys and sign in with one. Every call goes through
// TrikchiClient; the WebAuthn JSON helpers turn the server's options into what the browser wants.
import { TrikchiError } from "./trikchi-client.js";

// --- WebAuthn's standard JSON form (native where the browser has it) --------------------------

const fromB64url = (text) => {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0)).buffer;
};
const toB64url = (buffer) =>
  btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function creationOptions(json) {
  if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  return {
    ...json,
    challenge: fromB64url(json.challenge),
    user: { ...json.user, id: fromB64url(json.user.id) },
    excludeCredentials: (json.excludeCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) })),
  };
}

function requestOptions(json) {
  if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  return {
    ...json,
    challenge: fromB64url(json.challenge),
    allowCredentials: (json.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) })),
  };
}

function credentialJSON(credential) {
  if (credential.toJSON) return credential.toJSON();
  const r = credential.response;
  const response = { clientDataJSON: toB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toB64url(r.attestationObject);
    response.transports = r.getTransports ? r.getTransports() : [];
  } else {
    response.authenticatorData = toB64url(r.authenticatorData);
    response.signature = toB64url(r.signature);
    if (r.userHandle) response.userHandle = toB64url(r.userHandle);
  }
  return { id: credential.id, rawId: toB64url(credential.rawId), type: credential.type, response, clientExtensionResults: {} };
}

// --- the page -------------------------------------------------------------------------------

const SIGNED_OUT = `
  <form id="mfa-form" hidden>
    <h2>Two-factor sign-in</h2>
    <p>Enter the 6-digit code from your authenticator app, or one of your recovery codes.</p>
    <label>Code <input name="code" autocomplete="one-time-code" required></label>
    <button type="submit">Verify</button>
  </form>
  <p><button id="passkey-sign-in" type="button">Sign in with a passkey</button></p>`;

const SIGNED_IN = `
  <h3>Two-factor sign-in</h3>
  <p id="mfa-status"></p>
  <p><button id="totp-setup" type="button">Set up an authenticator app</button></p>
  <div id="totp-enrol" hidden>
    <p>Scan this QR code with your authenticator app (or type <code id="totp-secret"></code>), then enter a code.</p>
    <img id="totp-qr" alt="QR code for your authenticator app" width="200" height="200">
    <form id="totp-confirm-form">
      <label>Code <input name="code" autocomplete="one-time-code" inputmode="numeric" required></label>
      <button type="submit">Turn on</button>
    </form>
  </div>
  <div id="recovery" hidden>
    <p>Your recovery codes — each works once. Store them safely: they are shown only now.</p>
    <ol id="recovery-codes"></ol>
  </div>
  <form id="totp-disable-form" hidden>
    <label>Code (or a recovery code) <input name="code" autocomplete="one-time-code" required></label>
    <button type="submit">Turn two-factor sign-in off</button>
  </form>
  <form id="mfa-reauth-form" hidden>
    <p>Confirm it is you first.</p>
    <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
    <label>Code (if two-factor sign-in is on) <input name="code" autocomplete="one-time-code"></label>
    <button type="submit">Confirm</button>
  </form>
  <h3>Passkeys</h3>
  <ul id="passkeys"></ul>
  <p><input id="passkey-name" placeholder="Name (e.g. Laptop)" maxlength="64">
     <button id="passkey-add" type="button">Add a passkey</button></p>`;

export function installMfa(client, { showSignedIn, say, explain }) {
  const $ = (selector) => document.querySelector(selector);
  $("#mfa-signed-out").innerHTML = SIGNED_OUT;
  $("#mfa-signed-in").innerHTML = SIGNED_IN;
  let mfaToken = null;

  // A sensitive operation after a stale sign-in: ask for the password (and code), then retry.
  async function sensitive(action) {
    try {
      return await action();
    } catch (error) {
      if (error instanceof TrikchiError && error.body && error.body.error === "fresh_signin_required") {
        $("#mfa-reauth-form").hidden = false;
        say("Please confirm it is you, then try again.");
        return undefined;
      }
      throw error;
    }
  }

  function guarded(selector, event, handler) {
    $(selector).addEventListener(event, async (e) => {
      e.preventDefault();
      say("");
      try { await handler(e); } catch (error) { say(explain(error)); }
    });
  }

  async function render() {
    try {
      const [status, passkeys] = await Promise.all([client.request("GET", "/auth/mfa"), client.request("GET", "/auth/passkeys")]);
      $("#mfa-status").textContent = status.totp
        ? `Authenticator app: on (${status.recovery_codes_left} recovery codes left).`
        : "Authenticator app: off.";
      $("#totp-setup").hidden = status.totp;
      $("#totp-disable-form").hidden = !status.totp;
      $("#passkeys").replaceChildren(...passkeys.map((passkey) => {
        const item = document.createElement("li");
        item.dataset.passkeyId = passkey.id;
        item.textContent = `${passkey.name} — added ${new Date(passkey.created_at).toLocaleString()}` +
          (passkey.last_used_at ? `, last used ${new Date(passkey.last_used_at).toLocaleString()} ` : " ");
        const remove = document.createElement("button");
        remove.textContent = "Remove";
        remove.className = "remove-passkey";
        remove.addEventListener("click", async () => {
          try {
            await sensitive(() => client.request("DELETE", `/auth/passkeys/${encodeURIComponent(passkey.id)}`));
            await render();
          } catch (error) { say(explain(error)); }
        });
        item.append(remove);
        return item;
      }));
    } catch (error) {
      say(explain(error));
    }
  }

  // Signed out: the second step of a sign-in (password, provider, Telegram), and passkey sign-in.
  guarded("#mfa-form", "submit", async (event) => {
    const code = new FormData(event.target).get("code").trim();
    const proof = /^\d{6}$/.test(code.replace(/\s/g, "")) ? { code: code.replace(/\s/g, "") } : { recoveryCode: code };
    await client.verifyMfa(mfaToken, proof);
    mfaToken = null;
    event.target.reset();
    event.target.hidden = true;
    await showSignedIn();
  });

  guarded("#passkey-sign-in", "click", async () => {
    const response = await fetch(client.baseUrl + "/auth/passkeys/authentication/options", { method: "POST", credentials: "include" });
    const options = await response.json();
    if (!response.ok) throw new TrikchiError(response.status, options);
    const assertion = await navigator.credentials.get({ publicKey: requestOptions(options) });
    await client.signInWith("/auth/passkeys/authentication/verify", credentialJSON(assertion));
    await showSignedIn();
  });

  // Signed in: TOTP setup, confirmation, recovery codes, turning it off; passkeys.
  guarded("#totp-setup", "click", async () => {
    const setup = await sensitive(() => client.request("POST", "/auth/mfa/totp/setup"));
    if (!setup) return;
    // As an image, not inline markup: nothing from the network runs in the page.
    $("#totp-qr").src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(setup.qr_svg);
    $("#totp-secret").textContent = setup.secret;
    $("#totp-enrol").hidden = false;
  });

  guarded("#totp-confirm-form", "submit", async (event) => {
    const { recovery_codes: codes } = await client.request("POST", "/auth/mfa/totp/confirm", {
      code: new FormData(event.target).get("code").trim(),
    });
    event.target.reset();
    $("#totp-enrol").hidden = true;
    $("#recovery-codes").replaceChildren(...codes.map((code) => Object.assign(document.createElement("li"), { textContent: code })));
    $("#recovery").hidden = false;
    await render();
  });

  guarded("#totp-disable-form", "submit", async (event) => {
    const code = new FormData(event.target).get("code").trim();
    await sensitive(() => client.request("DELETE", "/auth/mfa/totp", { code }));
    event.target.reset();
    $("#recovery").hidden = true;
    await render();
  });

  guarded("#mfa-reauth-form", "submit", async (event) => {
    const data = new FormData(event.target);
    await client.reauthenticate(data.get("password"), data.get("code").trim() || undefined);
    event.target.reset();
    event.target.hidden = true;
    say("Confirmed: try again.");
  });

  guarded("#passkey-add", "click", async () => {
    const options = await sensitive(() => client.request("POST", "/auth/passkeys/registration/options"));
    if (!options) return;
    const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
    const name = $("#passkey-name").value.trim();
    await client.request("POST", "/auth/passkeys/registration/verify", { ...credentialJSON(credential), ...(name ? { name } : {}) });
    $("#passkey-name").value = "";
    say("Passkey added.");
    await render();
  });

  return {
    render,
    /** The first step (password, provider, Telegram) was right and a second factor is on: ask for the code. */
    askForCode(answer) {
      mfaToken = answer.mfa_token;
      $("#mfa-form").hidden = false;
      $("#mfa-form input[name=code]").focus();
      say("Enter the code from your authenticator app.");
    },
  };
}
