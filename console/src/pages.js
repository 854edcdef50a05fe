// The console's pages. Each renders into ``page`` from the admin API; every action is an API call.
import { dailyChart, numberFigure } from "./charts.js";
import { dateTime, field, form, h, table } from "./dom.js";
import { language, t } from "./i18n.js";

const ROLES = ["customer", "admin", "guest"];
const EVENT_TYPES = [
  "registered", "login_succeeded", "login_failed", "logout", "logout_all", "session_revoked",
  "refresh_reuse_detected", "password_changed", "password_reset", "role_changed", "user_deactivated",
  "user_reactivated", "user_banned", "user_unbanned", "mfa_totp_enabled", "mfa_challenge_failed",
  "passkey_added", "passkey_login_failed", "identity_linked", "social_login_failed", "phone_code_sent",
  "phone_verified", "phone_changed", "email_changed", "account_deleted",
];

const when = (value) => dateTime(value, language());

function heading(text) {
  return h("h1", { tabindex: "-1" }, text);
}

/** Prev / next and where the page stands. */
function pager(data, go) {
  const pages = Math.max(1, Math.ceil(data.total / data.per_page));
  return h(
    "nav",
    { class: "pager", "aria-label": t("pager.label") },
    h("button", { type: "button", class: "secondary", disabled: data.page <= 1, onclick: () => go(data.page - 1) }, t("pager.prev")),
    h("span", { class: "pager-where" }, t("pager.where", { page: data.page, pages, total: data.total })),
    h("button", { type: "button", class: "secondary", disabled: data.page >= pages, onclick: () => go(data.page + 1) }, t("pager.next")),
  );
}

function select(name, options, current) {
  return h(
    "select",
    { name },
    options.map(([value, label]) => h("option", { value, selected: value === (current || "") }, label)),
  );
}

/** A user's state in words: active, deactivated, banned (until …). */
function userStatus(user) {
  if (isBanned(user)) return user.banned_until ? t("status.banned_until", { until: when(user.banned_until) }) : t("status.banned");
  return user.is_active ? t("status.active") : t("status.inactive");
}

function isBanned(user) {
  if (user.banned === true) return true;
  return Boolean(user.banned_until) && Date.parse(user.banned_until) > Date.now();
}

// --- overview ---------------------------------------------------------------------------------

async function overview(page, { api }) {
  page.append(heading(t("overview.title")), h("p", { class: "muted" }, t("overview.explain")));
  const stats = await api.get("/admin/stats", { days: 30 });
  const dates = stats.days.map((day) => day.date);
  const methods = [...new Set(stats.days.flatMap((day) => Object.keys(day.sign_ins)))].sort();
  const signInSeries = methods.flatMap((method) => [
    { key: `${method}:succeeded`, label: `${method} — ${t("overview.succeeded")}`, values: stats.days.map((d) => (d.sign_ins[method] || {}).succeeded || 0) },
    { key: `${method}:failed`, label: `${method} — ${t("overview.failed")}`, values: stats.days.map((d) => (d.sign_ins[method] || {}).failed || 0), dash: [6, 4] },
  ]);
  const dateLabel = t("overview.date");
  page.append(
    h(
      "section",
      { class: "tiles" },
      h("div", { class: "tile", dataset: { stat: "sign-ins-today" } }, h("span", { class: "tile-label" }, t("overview.sign_ins_today")), h("strong", { class: "tile-value" }, String(Object.values(stats.days.at(-1).sign_ins).reduce((n, c) => n + c.succeeded, 0)))),
      h("div", { class: "tile", dataset: { stat: "registrations-30" } }, h("span", { class: "tile-label" }, t("overview.registrations_30")), h("strong", { class: "tile-value" }, String(stats.days.reduce((n, d) => n + d.registrations, 0)))),
    ),
    h(
      "div",
      { class: "charts" },
      signInSeries.length
        ? dailyChart({ id: "sign-ins", title: t("overview.sign_ins"), dates, series: signInSeries, dateLabel })
        : h("figure", { class: "chart", dataset: { chart: "sign-ins" } }, h("figcaption", {}, t("overview.sign_ins")), h("p", { class: "muted" }, t("overview.none"))),
      dailyChart({ id: "registrations", title: t("overview.registrations"), dates, series: [{ key: "registrations", label: t("overview.registrations"), values: stats.days.map((d) => d.registrations), bars: true }], dateLabel }),
      dailyChart({ id: "sms", title: t("overview.sms"), dates, series: [{ key: "sms_sent", label: t("overview.sms"), values: stats.days.map((d) => d.sms_sent), bars: true }], dateLabel }),
      numberFigure({ id: "active-sessions", title: t("overview.active_sessions_now"), date: dates.at(-1), value: stats.active_sessions, dateLabel }),
    ),
  );
}

// --- users ------------------------------------------------------------------------------------

async function users(page, { api, query, navigate }) {
  const search = form(
    { class: "filters", role: "search", id: "user-search" },
    [
      field(t("users.q"), h("input", { name: "q", type: "search", value: query.q || "", placeholder: t("users.q_hint") })),
      field(t("users.role"), select("role", [["", t("any")], ...ROLES.map((r) => [r, t(`role.${r}`)])], query.role)),
      field(t("users.status"), select("status", [["", t("any")], ["active", t("status.active")], ["inactive", t("status.inactive")]], query.status)),
      h("button", { type: "submit" }, t("users.search")),
    ],
    (values) => navigate("/users", values),
  );
  page.append(heading(t("users.title")), search);
  const pageNumber = Number(query.page) || 1;
  const data = await api.get("/admin/users", { q: query.q, role: query.role, status: query.status, page: pageNumber, per_page: 20 });
  const showPhone = data.items.some((user) => "phone" in user);
  const headers = [t("user.id"), t("user.name"), t("user.email"), showPhone ? t("user.phone") : null, t("user.role"), t("user.status"), t("user.created")].filter(Boolean);
  const rows = data.items.map((user) =>
    h(
      "tr",
      { dataset: { userId: user.id } },
      h("td", {}, String(user.id)),
      h("td", {}, h("a", { href: `#/users/${user.id}` }, user.name || t("user.no_name"))),
      h("td", {}, user.email || "—"),
      showPhone ? h("td", {}, user.phone || "—") : null,
      h("td", {}, t(`role.${user.role}`, user.role)),
      h("td", {}, userStatus(user)),
      h("td", {}, when(user.created_at)),
    ),
  );
  page.append(
    data.items.length ? table(t("users.found", { total: data.total }), headers, rows, { id: "users-table" }) : h("p", { class: "muted", id: "users-none" }, t("users.none")),
    pager(data, (n) => navigate("/users", { ...query, page: n })),
  );
}

// --- one user ---------------------------------------------------------------------------------

async function user(page, { api, params, explain, alertBox, refresh }) {
  const id = Number(params[0]);
  const [detail, sessions, events] = await Promise.all([
    api.get(`/admin/users/${id}`),
    api.get(`/admin/users/${id}/sessions`),
    api.get("/admin/audit", { user_id: id, per_page: 10 }),
  ]);
  const u = detail.user;
  const messages = h("div", { class: "messages", id: "user-messages" });
  const act = (label, call) => async () => {
    messages.replaceChildren();
    try {
      await call();
      await refresh();
      document.querySelector("#user-messages")?.replaceChildren(h("p", { class: "note", role: "status" }, label));
    } catch (e) {
      messages.replaceChildren(alertBox(explain(e)));
    }
  };

  const profile = [
    [t("user.id"), String(u.id)],
    [t("user.name"), u.name || t("user.no_name")],
    [t("user.email"), u.email ? `${u.email} (${u.email_verified ? t("verified") : t("not_verified")})` : "—"],
    "phone" in u ? [t("user.phone"), u.phone ? `${u.phone} (${u.phone_verified ? t("verified") : t("not_verified")})` : "—"] : null,
    [t("user.role"), t(`role.${u.role}`, u.role)],
    [t("user.status"), userStatus(u)],
    [t("user.locale"), u.locale || "—"],
    [t("user.created"), when(u.created_at)],
  ].filter(Boolean);
  const ways = detail.sign_in;

  const roleForm = form(
    { class: "inline", id: "role-form" },
    [field(t("user.new_role"), select("role", ROLES.filter((r) => r !== "guest").map((r) => [r, t(`role.${r}`)]), u.role)), h("button", { type: "submit" }, t("user.change_role"))],
    ({ role }) => act(t("user.role_changed"), () => api.request("PATCH", `/admin/users/${id}`, { role }))(),
  );
  const activeButton = h(
    "button",
    { type: "button", id: "toggle-active", class: u.is_active ? "danger" : "", onclick: act(u.is_active ? t("user.deactivated") : t("user.activated"), () => api.request("PATCH", `/admin/users/${id}`, { is_active: !u.is_active })) },
    u.is_active ? t("user.deactivate") : t("user.activate"),
  );
  const banForm = form(
    { class: "inline", id: "ban-form" },
    [
      field(t("ban.until"), h("input", { name: "until", type: "datetime-local" })),
      field(t("ban.reason"), h("input", { name: "reason", maxlength: "500", required: true })),
      h("button", { type: "submit", class: "danger" }, t("ban.ban")),
    ],
    ({ until, reason }) =>
      act(t("ban.banned"), () =>
        api.request("POST", `/admin/users/${id}/ban`, { until: until ? new Date(`${until}:00Z`).toISOString() : null, reason }),
      )(),
  );
  const unban = h("button", { type: "button", id: "unban", onclick: act(t("ban.unbanned"), () => api.request("DELETE", `/admin/users/${id}/ban`)) }, t("ban.unban"));

  const sessionRows = sessions.map((s) =>
    h(
      "tr",
      { dataset: { sessionId: s.id } },
      h("td", {}, s.user_agent || "—"),
      h("td", {}, s.ip || "—"),
      h("td", {}, s.auth_method),
      h("td", {}, when(s.created_at)),
      h("td", {}, when(s.last_used_at)),
      h(
        "td",
        {},
        h(
          "button",
          { type: "button", class: "revoke danger", "aria-label": t("sessions.revoke_label", { agent: s.user_agent || "—", ip: s.ip || "—" }), onclick: act(t("sessions.revoked"), () => api.request("DELETE", `/admin/users/${id}/sessions/${encodeURIComponent(s.id)}`)) },
          t("sessions.revoke"),
        ),
      ),
    ),
  );
  const eventRows = events.items.map((e) =>
    h("tr", {}, h("td", {}, when(e.created_at)), h("td", {}, e.type), h("td", {}, e.ip || "—"), h("td", { class: "details" }, e.details ? JSON.stringify(e.details) : "")),
  );

  page.append(
    heading(t("user.title", { name: u.name || u.email || `#${u.id}` })),
    messages,
    h("section", { class: "card" }, h("h2", {}, t("user.profile")), h("dl", { class: "profile", id: "profile" }, profile.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
    h(
      "section",
      { class: "card", id: "ways" },
      h("h2", {}, t("ways.title")),
      h(
        "ul",
        {},
        h("li", {}, ways.password ? t("ways.password_set") : t("ways.no_password")),
        h("li", {}, t("ways.count", { count: ways.ways })),
        h("li", {}, `${t("ways.second_factors")}: ${ways.second_factors.length ? ways.second_factors.join(", ") : t("none")}`),
        h("li", {}, `${t("ways.used")}: ${ways.methods_used.length ? ways.methods_used.join(", ") : t("none")}`),
        "phone_verified" in u ? h("li", {}, u.phone_verified ? t("ways.phone_on") : t("ways.phone_off")) : null,
      ),
    ),
    h(
      "section",
      { class: "card", id: "sessions" },
      h("h2", {}, t("sessions.title")),
      sessions.length
        ? table(null, [t("sessions.device"), t("sessions.ip"), t("sessions.method"), t("sessions.since"), t("sessions.last_used"), t("actions")], sessionRows, { id: "sessions-table" })
        : h("p", { class: "muted" }, t("sessions.none")),
    ),
    h(
      "section",
      { class: "card", id: "actions" },
      h("h2", {}, t("actions")),
      roleForm,
      h("p", {}, activeButton),
      h("h3", {}, t("ban.title")),
      banForm,
      h("p", {}, unban),
    ),
    h(
      "section",
      { class: "card", id: "events" },
      h("h2", {}, t("events.recent")),
      events.items.length ? table(null, [t("events.time"), t("events.type"), t("events.ip"), t("events.details")], eventRows) : h("p", { class: "muted" }, t("events.none")),
      h("p", {}, h("a", { href: `#/audit?user_id=${id}` }, t("events.all"))),
    ),
  );
}

// --- audit log --------------------------------------------------------------------------------

async function audit(page, { api, query, navigate }) {
  const types = h("datalist", { id: "event-types" }, EVENT_TYPES.map((type) => h("option", { value: type })));
  const filters = form(
    { class: "filters", id: "audit-filters" },
    [
      field(t("audit.user_id"), h("input", { name: "user_id", type: "number", min: "1", value: query.user_id || "", inputmode: "numeric" })),
      field(t("audit.type"), h("input", { name: "type", list: "event-types", value: query.type || "", maxlength: "40" })),
      types,
      h("button", { type: "submit" }, t("audit.filter")),
    ],
    (values) => navigate("/audit", values),
  );
  page.append(heading(t("audit.title")), filters);
  const data = await api.get("/admin/audit", { user_id: query.user_id, type: query.type, page: Number(query.page) || 1, per_page: 50 });
  const rows = data.items.map((e) =>
    h(
      "tr",
      {},
      h("td", {}, when(e.created_at)),
      h("td", {}, e.type),
      h("td", {}, e.user_id ? h("a", { href: `#/users/${e.user_id}` }, String(e.user_id)) : "—"),
      h("td", {}, e.ip || "—"),
      h("td", {}, e.user_agent || "—"),
      h("td", { class: "details" }, e.details ? JSON.stringify(e.details) : ""),
    ),
  );
  page.append(
    data.items.length ? table(null, [t("events.time"), t("events.type"), t("audit.user"), t("events.ip"), t("events.agent"), t("events.details")], rows, { id: "audit-table" }) : h("p", { class: "muted" }, t("events.none")),
    pager(data, (n) => navigate("/audit", { ...query, page: n })),
  );
}

// --- deliveries -------------------------------------------------------------------------------

async function deliveries(page, { api, query, navigate, explain, alertBox, refresh }) {
  const status = query.status ?? "dead";
  const filters = form(
    { class: "filters", id: "delivery-filters" },
    [
      field(t("deliveries.status"), select("status", [["", t("any")], ...["dead", "pending", "delivering", "sent"].map((s) => [s, t(`delivery.${s}`)])], status)),
      field(t("deliveries.kind"), select("kind", [["", t("any")], ...["webhook", "mail", "sms"].map((k) => [k, t(`kind.${k}`)])], query.kind)),
      h("button", { type: "submit" }, t("audit.filter")),
    ],
    (values) => navigate("/deliveries", { ...values, status: values.status }),
  );
  const messages = h("div", { class: "messages", id: "delivery-messages" });
  page.append(heading(t("deliveries.title")), h("p", { class: "muted" }, t("deliveries.explain")), filters, messages);
  const data = await api.get("/admin/deliveries", { status, kind: query.kind, page: Number(query.page) || 1, per_page: 50 });
  const rows = data.items.map((d) =>
    h(
      "tr",
      { dataset: { deliveryId: d.id, status: d.status } },
      h("td", {}, String(d.id)),
      h("td", {}, t(`kind.${d.kind}`, d.kind)),
      h("td", {}, t(`delivery.${d.status}`, d.status)),
      h("td", {}, d.event_type || "—"),
      h("td", { class: "details" }, d.target || "—"),
      h("td", {}, String(d.attempts)),
      h("td", { class: "details" }, d.last_error || "—"),
      h("td", {}, when(d.created_at)),
      h(
        "td",
        {},
        d.status === "dead"
          ? h(
              "button",
              {
                type: "button",
                class: "retry",
                "aria-label": t("deliveries.retry_label", { id: d.id }),
                onclick: async () => {
                  messages.replaceChildren();
                  try {
                    await api.request("POST", `/admin/deliveries/${d.id}/retry`);
                    await refresh();
                    document.querySelector("#delivery-messages")?.replaceChildren(h("p", { class: "note", role: "status" }, t("deliveries.retried", { id: d.id })));
                  } catch (e) {
                    messages.replaceChildren(alertBox(explain(e)));
                  }
                },
              },
              t("deliveries.retry"),
            )
          : "",
      ),
    ),
  );
  page.append(
    data.items.length
      ? table(null, ["#", t("deliveries.kind"), t("deliveries.status"), t("events.type"), t("deliveries.target"), t("deliveries.attempts"), t("deliveries.last_error"), t("events.time"), t("actions")], rows, { id: "deliveries-table" })
      : h("p", { class: "muted", id: "deliveries-none" }, t("deliveries.none")),
    pager(data, (n) => navigate("/deliveries", { ...query, status, page: n })),
  );
}

export const routes = [
  { name: "overview", pattern: /^\/$/, render: overview },
  { name: "users", pattern: /^\/users$/, render: users },
  { name: "user", pattern: /^\/users\/(\d+)$/, render: user },
  { name: "audit", pattern: /^\/audit$/, render: audit },
  { name: "deliveries", pattern: /^\/deliveries$/, render: deliveries },
];
