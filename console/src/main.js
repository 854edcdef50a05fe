// The staff console: sign-in (password + second step, or a passkey), then the admin API's pages.
import "./style.css";
import { Api, ApiError } from "./api.js";
import { h, form, field } from "./dom.js";
import { LANGUAGES, pickLanguage, setLanguage, t, language } from "./i18n.js";
import { routes } from "./pages.js";
import { credentialJSON, requestOptions } from "./webauthn.js";

const $ = (selector) => document.querySelector(selector);
const main = () => $("#main");

const api = new Api({ language: pickLanguage() });
api.onSignedOut(() => showSignIn(t("signed_out_elsewhere")));

/** The state the page is in: loading, signed-out, second-step, refused or signed-in (tests wait on it). */
function setState(state) {
  document.body.dataset.state = state;
}

/** Say something to screen readers (and show it, for errors). */
function announce(text) {
  $("#status").textContent = text || "";
}

/** An error from the API with its code: "message (error_code)". The API writes its messages in the
 *  console's language (the requests' Accept-Language). */
export function explain(error) {
  if (error instanceof ApiError) {
    const message = error.status === 0 ? t("network_error") : error.message;
    const fields = Object.entries(error.body.errors || {})
      .map(([name, messages]) => `${name}: ${[].concat(messages).join(" ")}`)
      .join("; ");
    return `${message}${fields ? ` — ${fields}` : ""} (${error.code})`;
  }
  return String(error && error.message ? error.message : error);
}

export function alertBox(text) {
  return h("p", { class: "alert", role: "alert" }, text);
}

// --- the frame: navigation, language, sign-out ------------------------------------------------

function renderFrame() {
  document.documentElement.lang = language();
  document.title = t("title");
  $("#brand-sub").textContent = t("console");
  $("#lang-label").textContent = t("language");
  $("#lang").value = language();
  $("#sign-out").textContent = t("sign_out");
  $(".skip").textContent = t("skip");
  const current = (location.hash.slice(1) || "/").split("?")[0];
  const links = [
    ["/", t("nav.overview")],
    ["/users", t("nav.users")],
    ["/audit", t("nav.audit")],
    ["/deliveries", t("nav.deliveries")],
  ];
  $("#nav").replaceChildren(
    h(
      "ul",
      {},
      links.map(([path, label]) => {
        const active = path === "/" ? current === "/" : current.startsWith(path);
        return h("li", {}, h("a", { href: `#${path}`, "aria-current": active ? "page" : null }, label));
      }),
    ),
  );
}

$("#lang").addEventListener("change", (event) => {
  setLanguage(event.target.value);
  api.language = language();
  renderFrame();
  if (api.signedIn && document.body.dataset.state === "signed-in") route();
  else if (document.body.dataset.state === "signed-out") showSignIn();
});

$("#sign-out").addEventListener("click", async () => {
  await api.logout();
  showSignIn(t("signed_out"));
});

// --- signing in ------------------------------------------------------------------------------

function showSignIn(message) {
  setState("signed-out");
  $("#nav").hidden = true;
  $("#sign-out").hidden = true;
  renderFrame();
  const error = h("div", { class: "messages" }, message ? h("p", { class: "note" }, message) : null);
  const fail = (e) => error.replaceChildren(alertBox(explain(e)));
  const passwordForm = form(
    { id: "sign-in-form", class: "card" },
    [
      h("h1", { tabindex: "-1" }, t("sign_in.title")),
      field(t("sign_in.email"), h("input", { name: "email", type: "email", autocomplete: "username", required: true })),
      field(t("sign_in.password"), h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
      h("button", { type: "submit" }, t("sign_in.submit")),
    ],
    async ({ email, password }) => {
      error.replaceChildren();
      try {
        const answer = await api.login(email, password);
        if (answer.mfa_required) showSecondStep(answer);
        else await afterSignIn();
      } catch (e) {
        fail(e);
      }
    },
  );
  const passkey = h(
    "button",
    {
      type: "button",
      id: "passkey-sign-in",
      class: "secondary",
      onclick: async () => {
        error.replaceChildren();
        try {
          if (!window.PublicKeyCredential) throw new Error(t("sign_in.no_passkeys"));
          const options = await api.passkeyOptions();
          const assertion = await navigator.credentials.get({ publicKey: requestOptions(options) });
          await api.passkeyVerify(credentialJSON(assertion));
          await afterSignIn();
        } catch (e) {
          fail(e);
        }
      },
    },
    t("sign_in.passkey"),
  );
  main().replaceChildren(h("section", { class: "sign-in" }, passwordForm, h("p", { class: "or" }, t("sign_in.or")), passkey, error));
  passwordForm.querySelector("input").focus();
}

function showSecondStep(answer) {
  setState("second-step");
  const error = h("div", { class: "messages" });
  const codeForm = form(
    { id: "mfa-form", class: "card" },
    [
      h("h1", { tabindex: "-1" }, t("mfa.title")),
      h("p", {}, t("mfa.explain")),
      field(t("mfa.code"), h("input", { name: "code", autocomplete: "one-time-code", required: true, inputmode: "text" })),
      h("button", { type: "submit" }, t("mfa.submit")),
      h("button", { type: "button", class: "link", onclick: () => showSignIn() }, t("mfa.back")),
    ],
    async ({ code }) => {
      error.replaceChildren();
      try {
        await api.verifyMfa(answer.mfa_token, code);
        await afterSignIn();
      } catch (e) {
        error.replaceChildren(alertBox(explain(e)));
        if (e instanceof ApiError && e.code === "mfa_token_invalid") showSignIn(explain(e));
      }
    },
  );
  main().replaceChildren(h("section", { class: "sign-in" }, codeForm, error));
  codeForm.querySelector("input").focus();
}

/** Signed in: only a role the admin API allows goes on; anyone else sees its refusal, signed out. */
async function afterSignIn() {
  try {
    await api.get("/admin/users", { per_page: 1 });
  } catch (e) {
    if (e instanceof ApiError && e.status === 403) {
      await api.logout();
      return showRefusal(e);
    }
    throw e;
  }
  setState("signed-in");
  $("#nav").hidden = false;
  $("#sign-out").hidden = false;
  await route();
}

function showRefusal(error) {
  setState("refused");
  $("#nav").hidden = true;
  $("#sign-out").hidden = true;
  main().replaceChildren(
    h(
      "section",
      { class: "card refusal", id: "refusal" },
      h("h1", { tabindex: "-1" }, t("refused.title")),
      alertBox(explain(error)),
      h("p", {}, t("refused.explain")),
      h("button", { type: "button", onclick: () => showSignIn() }, t("refused.back")),
    ),
  );
  main().querySelector("h1").focus();
}

// --- pages -----------------------------------------------------------------------------------

let routing = 0;

async function route() {
  if (document.body.dataset.state !== "signed-in") return;
  renderFrame();
  const [path, search] = (location.hash.slice(1) || "/").split("?");
  const query = Object.fromEntries(new URLSearchParams(search || ""));
  const match = routes.find((r) => r.pattern.test(path)) || routes[0];
  const params = (path.match(match.pattern) || []).slice(1);
  const run = ++routing;
  const page = h("div", { class: "page", dataset: { page: match.name } });
  main().replaceChildren(page);
  try {
    await match.render(page, { api, params, query, explain, alertBox, navigate, refresh: route });
  } catch (e) {
    if (run !== routing) return;
    page.append(alertBox(explain(e)));
  }
  if (run !== routing) return;
  page.dataset.ready = "true";
  const heading = page.querySelector("h1");
  if (heading && !page.contains(document.activeElement)) heading.focus({ preventScroll: true });
  announce(heading ? heading.textContent : "");
}

/** Go to ``#path?query`` (a new history entry, so Back works). */
function navigate(path, query) {
  const search = new URLSearchParams(Object.entries(query || {}).filter(([, v]) => v !== undefined && v !== null && v !== "")).toString();
  const target = `#${path}${search ? `?${search}` : ""}`;
  if (location.hash === target) route();
  else location.hash = target;
}

window.addEventListener("hashchange", route);

// --- start -----------------------------------------------------------------------------------

(async () => {
  for (const option of $("#lang").options) option.hidden = !LANGUAGES.includes(option.value);
  renderFrame();
  // A returning member of staff: the refresh cookie is all it takes.
  if (document.cookie.includes("csrf_refresh_token=") && (await api.refresh())) {
    try {
      await afterSignIn();
      return;
    } catch (e) {
      showSignIn();
      main().querySelector(".messages").append(alertBox(explain(e)));
      return;
    }
  }
  showSignIn();
})();

window.trikchiConsole = { api }; // for the browser tests and the curious
