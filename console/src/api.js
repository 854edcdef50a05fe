// The console's client of trikchi's API, on the page's own origin.
//
// - The access token lives in this module's memory only (never storage, never a cookie).
// - The refresh token is the HttpOnly cookie; POST /auth/refresh_token and /auth/logout send the
//   CSRF header, read from the csrf_refresh_token cookie (same origin: readable, and always the
//   latest another tab set).
// - The access token is renewed shortly before it expires; a request answered 401 is retried once
//   after a refresh. Refreshes are one at a time across tabs (Web Locks).

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
    this.code = (body && body.error) || (status === 0 ? "network_error" : `http_${status}`);
  }
}

const LOCK = "trikchi-console-refresh";

function csrfCookie() {
  const found = document.cookie.split("; ").find((item) => item.startsWith("csrf_refresh_token="));
  return found ? decodeURIComponent(found.slice("csrf_refresh_token=".length)) : "";
}

export class Api {
  #token = null;
  #csrf = "";
  #timer = null;
  #onSignedOut = () => {};

  constructor({ language, earlySeconds = 60 }) {
    this.language = language;
    this.earlySeconds = earlySeconds;
  }

  get signedIn() { return this.#token !== null; }

  /** Called once the session is gone (refresh refused, sign-out). */
  onSignedOut(listener) { this.#onSignedOut = listener; }

  /** Password sign-in: the tokens, or ``{mfa_required, mfa_token, methods}`` for the second step. */
  async login(email, password) {
    const body = await this.#call("POST", "/auth/login", { email, password });
    if (!body.mfa_required) this.#accept(body);
    return body;
  }

  /** The second step: a 6-digit code or a recovery code, with the login's ``mfa_token``. */
  async verifyMfa(mfaToken, code) {
    const compact = code.replace(/\s/g, "");
    const proof = /^\d{6}$/.test(compact) ? { code: compact } : { recovery_code: code.trim() };
    this.#accept(await this.#call("POST", "/auth/mfa/verify", { mfa_token: mfaToken, ...proof }));
  }

  passkeyOptions() { return this.#call("POST", "/auth/passkeys/authentication/options"); }

  async passkeyVerify(credential) {
    this.#accept(await this.#call("POST", "/auth/passkeys/authentication/verify", credential));
  }

  /** Renew the access token from the refresh cookie; false (signed out) when the session ended. */
  async refresh() {
    const run = async () => {
      let response;
      try {
        response = await fetch("/auth/refresh_token", {
          method: "POST",
          credentials: "same-origin",
          headers: { "X-CSRF-TOKEN": csrfCookie() || this.#csrf, "Accept-Language": this.language },
        });
      } catch {
        return false;
      }
      if (!response.ok) {
        this.#clear();
        return false;
      }
      this.#accept(await response.json());
      return true;
    };
    return navigator.locks ? navigator.locks.request(LOCK, run) : run();
  }

  /** Sign out: the server ends the session and deletes the cookies. */
  async logout() {
    try {
      await fetch("/auth/logout", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-TOKEN": csrfCookie() || this.#csrf },
      });
    } catch {
      // Offline: the token is forgotten all the same.
    } finally {
      this.#clear();
    }
  }

  /** An authenticated call; refreshes first when needed and once more after a 401. */
  async request(method, path, body) {
    if (!this.#token && !(await this.refresh())) throw new ApiError(401, null);
    let response = await this.#send(method, path, body, this.#token);
    if (response.status === 401 && (await this.refresh())) {
      response = await this.#send(method, path, body, this.#token);
    }
    return this.#read(response);
  }

  get(path, query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") params.set(key, value);
    }
    const search = params.toString();
    return this.request("GET", search ? `${path}?${search}` : path);
  }

  #accept(body) {
    this.#token = body.access_token;
    this.#csrf = body.csrf_token || "";
    clearTimeout(this.#timer);
    // Renewed before it expires: a minute early, or a third of the lifetime for short tokens.
    const early = Math.min(this.earlySeconds, body.expires_in / 3);
    this.#timer = setTimeout(() => this.refresh(), Math.max(1, body.expires_in - early) * 1000);
  }

  #clear() {
    const was = this.#token !== null;
    this.#token = null;
    clearTimeout(this.#timer);
    if (was) this.#onSignedOut();
  }

  async #send(method, path, body, token) {
    const headers = { "Accept-Language": this.language };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    try {
      return await fetch(path, {
        method,
        credentials: "same-origin",
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, null);
    }
  }

  async #call(method, path, body) {
    return this.#read(await this.#send(method, path, body, null));
  }

  async #read(response) {
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { body = null; }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }
}
