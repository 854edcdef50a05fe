// The overview's charts (uPlot), each with its numbers beside it as a table that screen readers
// (and the tests) read: the chart is drawn from exactly the table's data.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h } from "./dom.js";

// Colours apart for people with the common colour-vision deficiencies (Okabe–Ito).
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];

const charts = new Set();
let resizeObserved = false;

function widthOf(container) {
  return Math.max(260, Math.floor(container.getBoundingClientRect().width || 320));
}

function observeResize() {
  if (resizeObserved) return;
  resizeObserved = true;
  window.addEventListener("resize", () => {
    for (const entry of charts) {
      if (!entry.container.isConnected) {
        entry.plot.destroy();
        charts.delete(entry);
      } else {
        entry.plot.setSize({ width: widthOf(entry.container), height: 220 });
      }
    }
  });
}

function dataTable(id, title, dates, series, dateLabel) {
  // A table is as wide as its content whatever its own width says: hidden inside a box.
  return h(
    "div",
    { class: "visually-hidden" },
    h(
      "table",
      { class: "chart-data", dataset: { chart: id } },
      h("caption", {}, title),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, dateLabel), series.map((s) => h("th", { scope: "col", dataset: { series: s.key } }, s.label)))),
      h("tbody", {}, dates.map((date, i) => h("tr", {}, h("th", { scope: "row" }, date), series.map((s) => h("td", {}, String(s.values[i])))))),
    ),
  );
}

/** One number as of today (the sessions live now), with the same kind of table as the charts. */
export function numberFigure({ id, title, date, value, dateLabel }) {
  return h(
    "figure",
    { class: "chart number", dataset: { chart: id } },
    h("figcaption", {}, title),
    h("p", { class: "big-number", "aria-hidden": "true" }, String(value)),
    dataTable(id, title, [date], [{ key: id.replace(/-/g, "_"), label: title, values: [value] }], dateLabel),
  );
}

/**
 * A chart of daily values with its data table.
 * ``id``: the chart's name (data-chart); ``dates``: ISO dates; ``series``: [{label, values, bars?, dash?}].
 */
export function dailyChart({ id, title, dates, series, dateLabel }) {
  const figure = h("figure", { class: "chart", dataset: { chart: id } });
  const heading = h("figcaption", {}, title);
  const plotBox = h("div", { class: "plot", "aria-hidden": "true" });
  figure.append(heading, plotBox, dataTable(id, title, dates, series, dateLabel));

  // uPlot measures its container: draw once the figure is in the page.
  requestAnimationFrame(() => {
    const x = dates.map((date) => Date.parse(`${date}T00:00:00Z`) / 1000);
    const bars = uPlot.paths.bars({ size: [0.6, 40] });
    const plot = new uPlot(
      {
        width: widthOf(plotBox),
        height: 220,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
        // Half a day either side, so that the first and last days' bars are whole.
        scales: {
          x: { time: true, range: (_u, min, max) => [min - 43200, max + 43200] },
          y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
        },
        axes: [{}, { values: (_u, ticks) => ticks.map((v) => (Number.isInteger(v) ? v : "")) }],
        legend: { show: series.length > 1 },
        series: [
          { label: dateLabel, value: (_u, ts) => (ts == null ? "" : new Date(ts * 1000).toISOString().slice(0, 10)) },
          ...series.map((s, i) => ({
            label: s.label,
            stroke: PALETTE[i % PALETTE.length],
            fill: s.bars ? PALETTE[i % PALETTE.length] + "99" : undefined,
            width: 2,
            dash: s.dash,
            paths: s.bars ? bars : undefined,
            points: { show: !s.bars },
          })),
        ],
      },
      [x, ...series.map((s) => s.values)],
      plotBox,
    );
    charts.add({ plot, container: plotBox });
    observeResize();
  });
  return figure;
}
