// The page: every API call goes through TrikchiClient.
import { TrikchiClient, TrikchiError } from "./trikchi-client.js";
import { installProfile } from "./profile.js";
import { installMfa } from "./mfa.js";
import * as social from "./social.js";

// The API on port 5000 of the same host (localhost or 127.0.0.1: the same site, so cookies flow).
const apiBase = new URLSearchParams(location.search).get("api") || `http://${location.hostname}:5000`;
const client = new TrikchiClient(apiBase);
const $ = (selector) => document.querySelector(selector);

// The pretend shop: a cart kept in localStorage under the user id, as a shop's cart service keeps
// it under the id in the access token. A visitor's first "Add to cart" starts a guest (SPEC §15);
// at checkout the guest registers and keeps its id, so the cart stays where it is.
const PRODUCTS = ["Striped chapan", "Doppi", "Suzani cushion", "Rishtan bowl"];
const GUEST_KEY = "trikchi.guest"; // the guest id this browser shopped as
const cart = {
  key: (userId) => `trikchi.cart.${userId}`,
  items: (userId) => JSON.parse(localStorage.getItem(cart.key(userId)) || "[]"),
  save: (userId, items) => localStorage.setItem(cart.key(userId), JSON.stringify(items)),
};
let currentUser = null; // the user the page shows (a guest or an account), null when signed out

function renderCart() {
  const items = currentUser ? cart.items(currentUser.id) : [];
  $("#cart").dataset.userId = currentUser ? String(currentUser.id) : "";
  $("#cart").replaceChildren(...items.map((name) => {
    const item = document.createElement("li");
    item.textContent = name;
    return item;
  }));
  $("#checkout-note").hidden = !currentUser?.is_guest;
}

// Signed in to an account with another id than the guest this browser shopped as (the guest was
// merged into an existing account): the shop moves the cart on the guest_merged webhook; the
// page moves its pretend cart the same way.
function adoptGuestCart(user) {
  const guestId = localStorage.getItem(GUEST_KEY);
  localStorage.removeItem(GUEST_KEY);
  if (guestId && guestId !== String(user.id)) {
    cart.save(user.id, [...cart.items(user.id), ...cart.items(guestId)]);
    localStorage.removeItem(cart.key(guestId));
  }
}

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
  if (user.is_guest) return showGuest(user);
  currentUser = user;
  adoptGuestCart(user);
  renderCart();
  $("#register-heading").textContent = "Create an account";
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

// A guest: the cart, and the sign-up form as the checkout (a registration keeps the guest's id).
function showGuest(user) {
  currentUser = user;
  localStorage.setItem(GUEST_KEY, String(user.id));
  renderCart();
  $("#register-heading").textContent = "Check out: create an account";
  $("#signed-in").hidden = true;
  $("#signed-out").hidden = false;
  $("#status").textContent = "Guest";
}

function showSignedOut() {
  currentUser = null;
  renderCart();
  $("#register-heading").textContent = "Create an account";
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
  if (currentUser?.is_guest) {
    await client.upgrade(name, email, password); // the guest becomes the account: same id, same cart
  } else {
    await client.register(name, email, password);
    await client.login(email, password);
  }
  await showSignedIn();
});

$("#add-to-cart").addEventListener("click", async () => {
  say("");
  try {
    if (!currentUser) {
      await client.startGuest();
      await showSignedIn(); // a guest now: shown as one
    }
    const items = cart.items(currentUser.id);
    cart.save(currentUser.id, [...items, PRODUCTS[items.length % PRODUCTS.length]]);
    renderCart();
  } catch (error) {
    say(explain(error));
  }
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
