// profile.js — self-service (SPEC §10): edit the profile, switch the language, change the
// email, delete the account. Operations that need a fresh sign-in ask for the password
// once, re-authenticate, and try again.
import { TrikchiError } from "./trikchi-client.js";

const API_KEY = "trikchi.api";
const LANGUAGES = [
  ["", "Browser language"],
  ["uz", "Oʻzbekcha"],
  ["ru", "Русский"],
  ["en", "English"],
];

const TEMPLATE = `
  <form id="profile-form">
    <h3>Profile</h3>
    <label>Name <input name="name" required maxlength="100"></label>
    <label>Language <select name="locale">${LANGUAGES.map(([v, l]) => `<option value="${v}">${l}</option>`).join("")}</select></label>
    <button type="submit">Save profile</button>
  </form>
  <form id="email-form">
    <h3>Change email</h3>
    <label>New email <input name="new_email" type="email" autocomplete="email" required></label>
    <button type="submit">Send confirmation link</button>
  </form>
  <form id="reauth-form" hidden>
    <h3>Confirm it is you</h3>
    <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
    <button type="submit">Confirm</button>
    <button type="button" id="reauth-cancel">Cancel</button>
  </form>
  <section id="danger-zone">
    <h3>Delete account</h3>
    <p>Deletes your account and personal data and signs you out everywhere.</p>
    <button type="button" id="delete-account">Delete my account</button>
  </section>`;

/**
 * Put the self-service forms into ``container``.
 * ``onUpdated(user)`` after a profile change, ``onDeleted()`` once the account is gone,
 * ``say(text)`` shows a message, ``explain(error)`` turns an error into text.
 */
export function installProfile(client, container, { onUpdated, onDeleted, say, explain }) {
  container.innerHTML = TEMPLATE;
  // The confirmation link opens another page of this origin: it finds the API here.
  localStorage.setItem(API_KEY, client.baseUrl);
  const $ = (selector) => container.querySelector(selector);

  // Run ``operation``; when the server wants a recent sign-in, ask for the password first.
  function withFreshSignIn(operation) {
    return operation().catch((error) => {
      if (!(error instanceof TrikchiError) || error.body?.error !== "fresh_signin_required") throw error;
      return new Promise((resolve, reject) => {
        const form = $("#reauth-form");
        form.hidden = false;
        form.password.focus();
        const done = () => { form.hidden = true; form.reset(); form.onsubmit = null; };
        $("#reauth-cancel").onclick = () => { done(); reject(new Error("Cancelled.")); };
        form.onsubmit = async (event) => {
          event.preventDefault();
          try {
            await client.reauthenticate(form.password.value);
            done();
            resolve(await operation());
          } catch (retryError) {
            say(explain(retryError));
          }
        };
      });
    });
  }

  function handle(selector, action) {
    $(selector).addEventListener("submit", async (event) => {
      event.preventDefault();
      say("");
      try {
        await action(Object.fromEntries(new FormData(event.target)), event.target);
      } catch (error) {
        say(explain(error));
      }
    });
  }

  handle("#profile-form", async ({ name, locale }) => {
    const user = await client.request("PATCH", "/auth/me", { name, locale: locale || null });
    say("Profile saved.");
    onUpdated(user);
  });

  handle("#email-form", async ({ new_email: newEmail }, form) => {
    const body = await withFreshSignIn(() => client.request("POST", "/auth/email", { new_email: newEmail }));
    form.reset();
    say(body.message);
  });

  $("#delete-account").addEventListener("click", async () => {
    say("");
    if (!window.confirm("Delete your account and all its data? This cannot be undone.")) return;
    try {
      await withFreshSignIn(() => client.request("DELETE", "/auth/me"));
      await client.logout(); // the cookies are gone already; this forgets the local state
      onDeleted();
    } catch (error) {
      say(explain(error));
    }
  });

  return {
    /** Fill the forms with the signed-in user. */
    show(user) {
      $("#profile-form").name.value = user.name;
      $("#profile-form").locale.value = user.locale || "";
      document.documentElement.lang = user.locale || navigator.language || "en";
    },
  };
}

/** The page a confirmation link opens: ``/confirm-email?token=…``. */
export async function confirmEmailFromLink(output) {
  const params = new URLSearchParams(location.search);
  const apiBase = params.get("api") || localStorage.getItem(API_KEY) || "http://127.0.0.1:5000";
  const token = params.get("token");
  if (!token) {
    output.textContent = "This link has no token.";
    return;
  }
  const response = await fetch(apiBase.replace(/\/$/, "") + "/auth/email/confirm", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }),
  });
  const body = await response.json();
  output.textContent = response.ok ? `Your email is now ${body.email}.` : body.message;
  output.dataset.result = response.ok ? "confirmed" : body.error;
}
