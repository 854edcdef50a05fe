// Social sign-in on the reference page: a button per OpenID Connect provider (a plain link to
// the API's authorize endpoint), Telegram's Login widget when the API has a bot configured, and
// the list of linked identities.
import { TrikchiError } from "./trikchi-client.js";

const $ = (selector) => document.querySelector(selector);

const ERRORS = {
  invalid_state: "The sign-in took too long or was started elsewhere; try again.",
  provider_denied: "The sign-in was cancelled at the provider.",
  account_disabled: "This account is disabled.",
};

/** Show the result of a provider redirect, if this page load is one; returns its second step
 *  (``{mfa_required, mfa_token, methods}``) when the account has a second factor on. */
export function acceptRedirect(client, say) {
  const { error, mfa } = client.acceptSocialRedirect();
  if (error) say(ERRORS[error] || `The sign-in did not work (${error}); try again.`);
  return mfa;
}

/** Render the sign-in buttons the API offers. ``afterSignIn`` gets a Telegram sign-in's answer
 *  (the tokens, or the second step when a second factor is on). */
export async function renderButtons(client, afterSignIn, say) {
  let providers;
  try {
    providers = await client.providers();
  } catch {
    return; // an older API without social sign-in: no buttons
  }
  const box = $("#social-buttons");
  // Land back on this very page (without a stale ?error=).
  const query = new URLSearchParams(location.search);
  query.delete("error");
  const here = location.pathname + (query.toString() ? `?${query}` : "");
  box.replaceChildren(...providers.oidc.map((name) => {
    const link = document.createElement("a");
    link.className = "social-button";
    link.dataset.provider = name;
    link.href = client.authorizeUrl(name, here);
    link.textContent = `Sign in with ${name[0].toUpperCase()}${name.slice(1)}`;
    return link;
  }));
  if (providers.telegram_bot) {
    // The widget calls this with the Telegram user, signed by Telegram for our bot.
    window.onTelegramAuth = async (user) => {
      try {
        await afterSignIn(await client.telegramLogin(user));
      } catch (error) {
        say(error instanceof TrikchiError ? error.message : String(error));
      }
    };
    const widget = document.createElement("script");
    widget.async = true;
    widget.src = "https://telegram.org/js/telegram-widget.js?22";
    widget.dataset.telegramLogin = providers.telegram_bot;
    widget.dataset.size = "large";
    widget.dataset.onauth = "onTelegramAuth(user)";
    widget.dataset.requestAccess = "write";
    $("#telegram-widget").replaceChildren(widget);
  }
  box.hidden = box.childElementCount === 0 && !providers.telegram_bot;
}

/** The signed-in user's linked identities, each with an Unlink button. */
export async function renderIdentities(client, say) {
  const list = $("#identities");
  const identities = await client.identities();
  list.replaceChildren(...identities.map((identity) => {
    const item = document.createElement("li");
    item.dataset.identityId = identity.id;
    item.textContent = `${identity.provider}${identity.email ? ` (${identity.email})` : ""} `;
    const unlink = document.createElement("button");
    unlink.type = "button";
    unlink.className = "unlink";
    unlink.textContent = "Unlink";
    unlink.addEventListener("click", async () => {
      try {
        await client.unlinkIdentity(identity.id);
        await renderIdentities(client, say);
      } catch (error) {
        say(error instanceof TrikchiError ? error.message : String(error));
      }
    });
    item.append(unlink);
    return item;
  }));
  $("#identities-section").hidden = identities.length === 0;
}
