// The page: every API call goes through TrikchiClient.
import { TrikchiClient, TrikchiError } from "./trikchi-client.js";
import { installProfile } from "./profile.js";
import { installMfa } from "./mfa.js";
import * as social from "./social.js";

// The API on port 5000 of the same host (localhost or 127.0.0.1: the same site, so cookies flow).
const apiBase = new URLSearchParams(location.search).get("api") || `http://${location.hostname}:5000`;
const client = new TrikchiClient(apiBase);
const $ = (selector) => document.querySelector(selector);

function say(text) { $("#message").textContent = text || ""; }

function explain(error) {
  if (error instanceof TrikchiError) {
    const fields = Object.entries(error.errors).map(([field, messages]) => `${field}: ${[].concat(messages).join(" ")}`);
    return [error.message, ...fields].join(" ");
  }
  return String(error);
}

async function showSignedIn() {
  const [user, sessions] = await Promise.all([client.me(), client.sessions()]);
  $("#profile-name").textContent = user.name;
  $("#profile-email").textContent = user.email || "";
  $("#profile-phone").textContent = user.phone || "";
  profile.show(user);
  const list = $("#sessions");
  list.replaceChildren(...sessions.map((session) => {
    const item = document.createElement("li");
    item.dataset.sessionId = session.id;
    item.className = session.current ? "current" : "";
    item.textContent = `${session.user_agent || "unknown device"} — ${session.ip || "?"} — since ${new Date(session.created_at).toLocaleString()}${session.current ? " (this device)" : ""} `;
    if (!session.current) {
      const end = document.createElement("button");
      end.textContent = "End";
      end.className = "end-session";
      end.addEventListener("click", async () => {
        await client.endSession(session.id);
        await showSignedIn();
      });
      item.append(end);
    }
    return item;
  }));
  await social.renderIdentities(client, say);
  // Everything is drawn before the status says so: "Signed in" means the page is complete.
  await mfa.render();
  $("#signed-out").hidden = true;
  $("#signed-in").hidden = false;
  $("#status").textContent = "Signed in";
}

function showSignedOut() {
  $("#signed-in").hidden = true;
  $("#signed-out").hidden = false;
  $("#status").textContent = "Signed out";
}

client.onChange((signedIn) => { if (!signedIn) showSignedOut(); });
const mfa = installMfa(client, { showSignedIn, say, explain });

const profile = installProfile(client, $("#self-service"), {
  onUpdated: (user) => { $("#profile-name").textContent = user.name; profile.show(user); },
  onDeleted: () => { showSignedOut(); say("Your account was deleted."); },
  say,
  explain,
});

function form(selector, handler) {
  $(selector).addEventListener("submit", async (event) => {
    event.preventDefault();
    say("");
    const data = Object.fromEntries(new FormData(event.target));
    try {
      await handler(data);
      event.target.reset();
    } catch (error) {
      say(explain(error));
    }
  });
}

// Every first step (password, Telegram, a provider's redirect) ends here: signed in, or asked
// for the second factor.
async function afterSignIn(answer) {
  if (answer.mfa_required) return mfa.askForCode(answer); // a second factor is on
  await showSignedIn();
}

form("#login-form", async ({ email, password }) => afterSignIn(await client.login(email, password)));

// Phone sign-in: the number, then the code of the SMS.
let phoneNumber = null;
form("#phone-form", async ({ phone }) => {
  await client.requestPhoneCode(phone);
  phoneNumber = phone;
  $("#phone-code-form").hidden = false;
  $("#phone-code-form input[name=code]").focus();
  say("A code is on its way by SMS.");
});
form("#phone-code-form", async ({ code }) => {
  const answer = await client.verifyPhoneCode(phoneNumber, code);
  $("#phone-code-form").hidden = true;
  say("");
  await afterSignIn(answer);
});

form("#register-form", async ({ name, email, password }) => {
  await client.register(name, email, password);
  await client.login(email, password);
  await showSignedIn();
});

form("#password-form", async ({ current, new: next }) => {
  await client.changePassword(current, next);
  await showSignedIn(); // drawn first: the message means the form is ready again
  say("Password changed; your other sessions were signed out.");
});

$("#reload-profile").addEventListener("click", async () => {
  try { await showSignedIn(); } catch (error) { say(explain(error)); }
});
$("#logout").addEventListener("click", async () => { await client.logout(); showSignedOut(); });
$("#logout-all").addEventListener("click", async () => { await client.logoutAll(); showSignedOut(); });

// Silent sign-in on load: the HttpOnly refresh cookie is all a returning visitor needs (and all
// a visitor coming back from a social sign-in has, with the CSRF value in the URL fragment).
// Back from a provider with a second factor on, there is no cookie yet: ask for the code.
const secondStep = social.acceptRedirect(client, say);
social.renderButtons(client, afterSignIn, say);
(async () => {
  if (secondStep) {
    showSignedOut();
    await afterSignIn(secondStep);
    return;
  }
  if (await client.refresh()) {
    try { await showSignedIn(); return; } catch (error) { say(explain(error)); }
  }
  showSignedOut();
})();

window.trikchi = client; // for the browser tests and the curious
