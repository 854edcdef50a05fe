// trikchi-client.js — a small browser client for the trikchi auth API. Copy it into a shop frontend.
//
// - The access token lives in memory only (never localStorage, never a cookie).
// - The refresh token is an HttpOnly cookie the browser sends itself (credentials: "include").
// - The CSRF value from the login/refresh body is sent as X-CSRF-TOKEN. It is kept in
//   localStorage: it is not a credential on its own, and every tab needs the latest one.
// - Refreshes are serialised across tabs with the Web Locks API, so two tabs never race
//   one single-use refresh token; the access token is renewed shortly before it expires,
//   and a request answered 401 is retried once after a refresh.

const CSRF_KEY = "trikchi.csrf";

export class TrikchiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.errors = (body && body.errors) || {};
  }
}

export class TrikchiClient {
  #accessToken = null;
  #timer = null;
  #listeners = new Set();

  constructor(baseUrl, { lockName = "trikchi-refresh", earlySeconds = 60 } = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.lockName = lockName;
    this.earlySeconds = earlySeconds;
  }

  get signedIn() {
    return this.#accessToken !== null;
  }

  /** Call ``listener(signedIn)`` whenever the signed-in state changes. */
  onChange(listener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async register(name, email, password) {
    return this.#json("POST", "/auth/register", { name, email, password });
  }

  /** Start as a guest: a user id for the cart, signed in before any account (role ``guest``). */
  async startGuest() {
    const body = await this.#json("POST", "/auth/guest", {});
    this.#accept(body);
    return body;
  }

  /** The signed-in guest registers: it becomes this customer, keeping its id (and so its cart).
   *  The access token is renewed at once, so that it says ``customer``. */
  async upgrade(name, email, password) {
    const user = await this.request("POST", "/auth/register", { name, email, password });
    await this.refresh();
    return user;
  }

  /** Password sign-in. With a second factor on, the answer is ``{mfa_required, mfa_token, methods}``:
   *  nothing is signed in yet; finish with ``verifyMfa``. */
  async login(email, password) {
    const body = await this.#json("POST", "/auth/login", { email, password });
    if (!body.mfa_required) this.#accept(body);
    return body;
  }

  /** The second step: ``{code}`` (6 digits) or ``{recovery_code}`` with the login's ``mfa_token``. */
  async verifyMfa(mfaToken, { code, recoveryCode } = {}) {
    const body = code ? { mfa_token: mfaToken, code } : { mfa_token: mfaToken, recovery_code: recoveryCode };
    return this.signInWith("/auth/mfa/verify", body);
  }

  /** POST a sign-in proof (second factor, passkey assertion) and keep the tokens it answers. */
  async signInWith(path, body) {
    const tokens = await this.#json("POST", path, body);
    this.#accept(tokens);
    return tokens;
  }

  /** Make this session's sign-in fresh again (``code`` too when TOTP is on). */
  async reauthenticate(password, code) {
    const tokens = await this.request("POST", "/auth/reauthenticate", code ? { password, code } : { password });
    this.#accept(tokens);
    return tokens;
  }

  /** Sign in with the Telegram Login widget's user object, passed on unchanged. With a second
   *  factor on, the answer is ``{mfa_required, mfa_token, methods}``, as for ``login``. A guest
   *  signing in this way becomes (or is merged into) the Telegram user's account. */
  async telegramLogin(user) {
    // With the CSRF header, a guest's refresh cookie counts: the guest becomes that account.
    const csrf = { "X-CSRF-TOKEN": localStorage.getItem(CSRF_KEY) || "" };
    const body = await this.#read(await this.#send("POST", "/auth/telegram", user, null, csrf));
    if (!body.mfa_required) this.#accept(body);
    return body;
  }

  /** Ask for a sign-in code by SMS (the answer is the same whether or not the number has an
   *  account): ``{expires_in, resend_after}``. ``captchaToken`` when the API asks for a CAPTCHA. */
  async requestPhoneCode(phone, captchaToken) {
    return this.#json("POST", "/auth/phone/code", captchaToken ? { phone, captcha_token: captchaToken } : { phone });
  }

  /** Sign in with the code of the SMS (a new number gets an account, named ``name``). With a second
   *  factor on, the answer is ``{mfa_required, mfa_token, methods}``, as for ``login``. */
  async verifyPhoneCode(phone, code, name) {
    const body = await this.#json("POST", "/auth/phone/verify", name ? { phone, code, name } : { phone, code });
    if (!body.mfa_required) this.#accept(body);
    return body;
  }

  /** The signed-in account's number: a code to the new one, then ``confirmPhoneChange`` with it. */
  requestPhoneChange(phone) { return this.request("POST", "/auth/phone", { phone }); }
  confirmPhoneChange(phone, code) { return this.request("POST", "/auth/phone/confirm", { phone, code }); }
  removePhone() { return this.request("DELETE", "/auth/phone"); }

  /** Where to send the browser to sign in with an OpenID Connect provider (a page, not a fetch). */
  authorizeUrl(provider, redirectTo) {
    const query = new URLSearchParams({ redirect_to: redirectTo });
    return `${this.baseUrl}/auth/oauth/${encodeURIComponent(provider)}/authorize?${query}`;
  }

  /**
   * Back from a provider: keep the CSRF value of the URL fragment (#csrf_token=…) for the first
   * refresh, or read the second step of an account with a second factor on
   * (#mfa_token=…&methods=…, and no cookie), and take either out of the address bar.
   * Returns ``{error, mfa}``: the callback's ?error=, if any, and the second step shaped like
   * ``login``'s answer (``{mfa_required, mfa_token, methods}``; finish with ``verifyMfa``), if any.
   */
  acceptSocialRedirect() {
    const fragment = new URLSearchParams(location.hash.slice(1));
    const query = new URLSearchParams(location.search);
    const error = query.get("error");
    const mfa = fragment.has("mfa_token")
      ? { mfa_required: true, mfa_token: fragment.get("mfa_token"), methods: (fragment.get("methods") || "").split(",").filter(Boolean) }
      : null;
    if (fragment.has("csrf_token")) localStorage.setItem(CSRF_KEY, fragment.get("csrf_token"));
    if (fragment.has("csrf_token") || mfa || error) {
      query.delete("error");
      const search = query.toString();
      history.replaceState(null, "", location.pathname + (search ? `?${search}` : ""));
    }
    return { error, mfa };
  }

  providers() { return this.#json("GET", "/auth/providers"); }
  identities() { return this.request("GET", "/auth/identities"); }
  unlinkIdentity(id) { return this.request("DELETE", `/auth/identities/${encodeURIComponent(id)}`); }

  /** Renew the access token from the refresh cookie; false (and signed out) if the session ended. */
  async refresh() {
    const run = async () => {
      const response = await fetch(this.baseUrl + "/auth/refresh_token", {
        method: "POST",
        credentials: "include",
        headers: { "X-CSRF-TOKEN": localStorage.getItem(CSRF_KEY) || "" },
      });
      if (!response.ok) {
        this.#clear();
        return false;
      }
      this.#accept(await response.json());
      return true;
    };
    // One refresh at a time across every tab of this origin.
    return navigator.locks ? navigator.locks.request(this.lockName, run) : run();
  }

  /** An authenticated request: refreshes first if needed, and once more after a 401. */
  async request(method, path, body) {
    if (!this.#accessToken && !(await this.refresh())) throw new TrikchiError(401, null);
    let response = await this.#send(method, path, body, this.#accessToken);
    if (response.status === 401 && !(await TrikchiClient.#stillSignedIn(response)) && (await this.refresh())) {
      response = await this.#send(method, path, body, this.#accessToken);
    }
    if (response.status === 401 && !(await TrikchiClient.#stillSignedIn(response))) this.#clear();
    return this.#read(response);
  }

  me() { return this.request("GET", "/auth/me"); }
  sessions() { return this.request("GET", "/auth/sessions"); }
  endSession(id) { return this.request("DELETE", `/auth/sessions/${encodeURIComponent(id)}`); }
  changePassword(currentPassword, newPassword) {
    return this.request("POST", "/auth/password", { current_password: currentPassword, new_password: newPassword });
  }
  async logoutAll() {
    try { await this.request("POST", "/auth/logout_all"); } finally { this.#clear(); }
  }

  /** Sign out this device: the server revokes the session and deletes the cookies. */
  async logout() {
    try {
      await fetch(this.baseUrl + "/auth/logout", {
        method: "POST",
        credentials: "include",
        headers: { "X-CSRF-TOKEN": localStorage.getItem(CSRF_KEY) || "" },
      });
    } finally {
      localStorage.removeItem(CSRF_KEY);
      this.#clear();
    }
  }

  // A 401 that does not end the session: a stale sign-in (re-authenticate), a wrong code.
  static async #stillSignedIn(response) {
    try {
      const { error } = await response.clone().json();
      return ["fresh_signin_required", "invalid_mfa_code", "invalid_credentials", "invalid_code"].includes(error);
    } catch {
      return false;
    }
  }

  #accept(body) {
    const wasSignedIn = this.signedIn;
    this.#accessToken = body.access_token;
    localStorage.setItem(CSRF_KEY, body.csrf_token);
    clearTimeout(this.#timer);
    // Renew shortly before expiry (a third of the lifetime early for very short tokens).
    const early = Math.min(this.earlySeconds, body.expires_in / 3);
    this.#timer = setTimeout(() => this.refresh(), Math.max(1, body.expires_in - early) * 1000);
    if (!wasSignedIn) this.#emit();
  }

  #clear() {
    const wasSignedIn = this.signedIn;
    this.#accessToken = null;
    clearTimeout(this.#timer);
    if (wasSignedIn) this.#emit();
  }

  #emit() {
    for (const listener of this.#listeners) listener(this.signedIn);
  }

  #send(method, path, body, token, extraHeaders = {}) {
    const headers = { ...extraHeaders };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(this.baseUrl + path, {
      method,
      credentials: "include",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  async #json(method, path, body) {
    return this.#read(await this.#send(method, path, body, null));
  }

  async #read(response) {
    const text = await response.text();
    const body = text ? JSON.parse(text) : null;
    if (!response.ok) throw new TrikchiError(response.status, body);
    return body;
  }
}
