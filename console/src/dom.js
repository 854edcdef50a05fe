// Building the page from data without markup strings: text is always text (no innerHTML).

/** An element: ``h("a", {href: "#/", class: "x", onclick: fn}, "text", child, …)``. */
export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(element, child);
    else element.append(child instanceof Node ? child : String(child));
  }
}

/** A form whose submit (a button or Enter) runs ``handler(values, form)`` instead of navigating. */
export function form(attributes, children, handler) {
  const element = h("form", { ...attributes, novalidate: false }, children);
  element.addEventListener("submit", (event) => {
    event.preventDefault();
    handler(Object.fromEntries(new FormData(element)), element);
  });
  return element;
}

/** A labelled field: ``field(label, input)``. */
export function field(label, input) {
  return h("label", { class: "field" }, h("span", { class: "label" }, label), input);
}

/** A table whose rows scroll sideways on a narrow screen. */
export function table(caption, headers, rows, attributes = {}) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      attributes,
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, rows),
    ),
  );
}

export function dateTime(value, language) {
  if (!value) return "—";
  return new Date(value).toLocaleString(language, { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" }) + " UTC";
}
