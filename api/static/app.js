// The page of clickmuncher's api: top URLs for a range, a chart of clicks per window for the URL picked,
// both refreshed every few seconds from this service's own JSON API (nothing else is ever requested).
"use strict";

(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const TOP_LIMIT = 20;
  const CHART = { width: 800, height: 260, left: 52, right: 14, top: 14, bottom: 34 };
  const pollMs = Number(document.body.dataset.pollMs) || 2500;
  const state = { rangeMs: 86400000, url: null, timer: null, busy: false };

  const $ = (id) => document.getElementById(id);
  const number = (n) => n.toLocaleString("en-US");

  function query(path, params) {
    const search = new URLSearchParams(params);
    return fetch(`${path}?${search}`, { headers: { Accept: "application/json" } }).then(async (response) => {
      const body = await response.json();
      if (!response.ok) {
        throw new Error(body.detail || `${path}: HTTP ${response.status}`);
      }
      return body;
    });
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      node.setAttribute(name, value);
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      node.setAttribute(name, String(value));
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function renderTop(urls) {
    const body = $("top").tBodies[0];
    const rows = urls.map((item, index) => {
      const row = el("tr", { "data-url": item.url, "data-clicks": String(item.clicks), "data-live": String(item.live) });
      if (item.url === state.url) {
        row.className = "selected";
      }
      row.append(el("td", { class: "rank" }, String(index + 1)));
      const cell = el("td", { class: "url" });
      const pick = el("button", { type: "button", title: `Chart ${item.url}` }, item.url);
      pick.addEventListener("click", () => select(item.url));
      cell.append(pick);
      row.append(cell, el("td", { class: "num clicks" }, number(item.clicks)));
      row.append(el("td", { class: item.live ? "num live" : "num" }, item.live ? `+${number(item.live)}` : "–"));
      return row;
    });
    body.replaceChildren(...rows);
    $("top-empty").hidden = urls.length > 0;
  }

  function timeLabel(ms, spanMs) {
    const at = new Date(ms);
    const hm = at.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
    if (spanMs < 86400000) {
      return hm;
    }
    return `${at.toLocaleDateString("en-GB", { weekday: "short", day: "numeric" })} ${hm}`;
  }

  // The y axis: a round step (1, 2 or 5 times a power of ten) and as many steps as reach the largest count.
  function yScale(value) {
    const target = Math.max(value, 1) / 5;
    const power = 10 ** Math.floor(Math.log10(target));
    const step = Math.max(1, [1, 2, 5, 10].map((f) => f * power).find((s) => s >= target));
    const ticks = Math.max(1, Math.ceil(value / step));
    return { step, ticks, max: step * ticks };
  }

  function renderChart(windows, sinceMs, untilMs) {
    const c = CHART;
    const plotW = c.width - c.left - c.right;
    const plotH = c.height - c.top - c.bottom;
    const scale = yScale(Math.max(0, ...windows.map((w) => w.clicks)));
    const maxY = scale.max;
    const x = (ms) => c.left + ((ms - sinceMs) / (untilMs - sinceMs)) * plotW;
    const y = (n) => c.top + plotH - (n / maxY) * plotH;
    const root = svg("svg", {
      viewBox: `0 0 ${c.width} ${c.height}`, role: "img", "aria-label": "Clicks per window", class: "chart",
    });
    for (let i = 0; i <= scale.ticks; i += 1) {
      const value = scale.step * i;
      root.append(svg("line", { x1: c.left, x2: c.width - c.right, y1: y(value), y2: y(value), class: "grid" }));
      root.append(svg("text", { x: c.left - 6, y: y(value) + 4, class: "axis y" }, number(value)));
    }
    const xTicks = $("chart").clientWidth < 560 ? 2 : 4; // a phone's labels are drawn larger: fewer fit
    for (let i = 0; i <= xTicks; i += 1) {
      const ms = sinceMs + ((untilMs - sinceMs) * i) / xTicks;
      const anchor = i === 0 ? "start" : i === xTicks ? "end" : "middle";
      root.append(svg("text", { x: x(ms), y: c.height - 10, class: "axis x", "text-anchor": anchor },
        timeLabel(ms, untilMs - sinceMs)));
    }
    // A point at its window's start: the open window's start is in the range, its middle may not be.
    const points = windows.map((w) => ({ w, cx: x(Date.parse(w.window_start)), cy: y(w.clicks) }));
    if (points.length > 1) {
      const d = points.map((p, i) => `${i ? "L" : "M"}${p.cx.toFixed(1)},${p.cy.toFixed(1)}`).join(" ");
      root.append(svg("path", { d, class: "line" }));
    }
    for (const p of points) {
      const dot = svg("circle", {
        cx: p.cx.toFixed(1), cy: p.cy.toFixed(1), r: 4,
        class: p.w.final ? "point final" : "point live",
        "data-window-start": p.w.window_start, "data-clicks": p.w.clicks,
      });
      const from = new Date(p.w.window_start).toLocaleString("en-GB");
      const to = new Date(p.w.window_end).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
      const visitors = p.w.uniques === null ? "" : `, ${number(p.w.uniques)} unique visitors`;
      const label = `${from}–${to}: ${number(p.w.clicks)} human clicks${visitors}${p.w.final ? "" : " so far (live)"}`;
      dot.append(svg("title", {}, label));
      root.append(dot);
    }
    if (!points.length) {
      root.append(svg("text", { x: c.width / 2, y: c.height / 2, class: "axis empty", "text-anchor": "middle" },
        "no windows in this range"));
    }
    $("chart").replaceChildren(root);
  }

  async function refreshChart(sinceMs, untilMs) {
    if (!state.url) {
      $("chart-url").textContent = "Pick a URL in the table.";
      $("chart-total").textContent = "";
      $("chart-uniques").textContent = "";
      $("chart").replaceChildren();
      return;
    }
    const range = { url: state.url, from: new Date(sinceMs).toISOString(), to: new Date(untilMs).toISOString() };
    const [series, total, uniques] = await Promise.all([
      query("/api/windows", range), query("/api/totals", { url: state.url }), query("/api/uniques", range),
    ]);
    $("chart-url").textContent = series.url;
    const live = total.live ? ` (${number(total.live)} live)` : "";
    $("chart-total").textContent = `All-time total: ${number(total.clicks)} human clicks${live}`;
    $("chart-uniques").textContent =
      `Unique visitors in this range: ${number(uniques.uniques)} (closed windows, ${number(uniques.human_clicks)} human clicks)`;
    renderChart(series.windows, sinceMs, untilMs);
  }

  async function refresh() {
    if (state.busy) {
      return;
    }
    state.busy = true;
    clearTimeout(state.timer);
    const untilMs = Date.now();
    const sinceMs = untilMs - state.rangeMs;
    try {
      const top = await query("/api/top", {
        since: new Date(sinceMs).toISOString(), until: new Date(untilMs).toISOString(), limit: TOP_LIMIT,
      });
      if (!state.url && top.urls.length) {
        state.url = top.urls[0].url;
      }
      renderTop(top.urls);
      await refreshChart(sinceMs, untilMs);
      const status = $("status");
      status.className = "";
      status.textContent = `Updated ${new Date().toLocaleTimeString("en-GB")} · live, every ${pollMs / 1000}s`;
    } catch (error) {
      const status = $("status");
      status.className = "error";
      status.textContent = `Cannot read the counts (${error.message}); retrying…`;
    } finally {
      state.busy = false;
      state.timer = setTimeout(refresh, pollMs);
    }
  }

  function select(url) {
    state.url = url;
    for (const row of $("top").tBodies[0].rows) {
      row.classList.toggle("selected", row.dataset.url === url);
    }
    refresh();
  }

  for (const button of document.querySelectorAll("#ranges button")) {
    button.addEventListener("click", () => {
      state.rangeMs = Number(button.dataset.rangeMs);
      for (const other of document.querySelectorAll("#ranges button")) {
        other.setAttribute("aria-pressed", String(other === button));
      }
      refresh();
    });
  }
  refresh();
})();
