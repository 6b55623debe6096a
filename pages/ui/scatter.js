// The Explore map: one Plotly graph that stays mounted across Streamlit reruns.
//
// Streamlit calls this function on every render of the element with the latest `data`
// ({revision, paint, base_revision, base, script}) and the same `parentElement`. The map comes in
// two parts (pipeline/plots.py, map_layers): `base`, the points (positions, escaped texts, rows),
// and `paint`, what the clustering makes of them (each trace's members as positions in the base,
// the points' clusters, the clusters' names and colours, the layout); each is a JSON string, or
// null when this page got that revision already. `compose` joins them into the figure, as
// plots.compose does in Python. The graph is created once and then updated in place with
// Plotly.react, so a new clustering or an edit recolours the points of the existing WebGL context
// instead of building a new one (what st.plotly_chart does whenever its figure changes). A box or
// lasso selection goes back to Python as the state value `selection`: {revision, regions: [{box:
// [x0, x1, y0, y1]} or {lasso: [[x, y], ...]}, ...], points: [[trace, index], ...]}, the areas in
// the map's coordinates (Python selects every text inside them, drawn or not: a map of many texts
// draws a sample) and, only where no area is known, the points drawn inside; Python ignores a
// selection made on an older revision of the map. A graph made
// again without its parts asks for them with the trigger `need`.
// User text reaches Plotly only as hover text and annotation text, escaped by pipeline.plots.

function loadPlotly(src) {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!window.__clusterlabPlotly) {
    window.__clusterlabPlotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => {
        window.__clusterlabPlotly = undefined; // a later render tries again
        reject(new Error("plotly.js could not be loaded from " + src));
      };
      document.head.appendChild(script);
    });
  }
  return window.__clusterlabPlotly;
}

// The parts this page got, by revision: Python sends each once (the base is 5 MB of JSON at
// 100,000 texts) and then only its revision, so a graph made again (the Map tab opened again,
// Explore opened again) or an undo draws from here. Two of each are kept: the last two drawn.
const KEPT = 2;
function kept(name) {
  if (!window[name]) window[name] = new Map();
  return window[name];
}
function keep(store, revision, value) {
  store.delete(revision);
  store.set(revision, value);
  while (store.size > KEPT) store.delete(store.keys().next().value);
}

// The figure of a base and a paint: plots.compose's twin (tests/test_e2e.py holds them equal).
export function compose(base, paint) {
  const data = paint.traces.map((trace) => {
    const at = trace.at, n = at.length, faded = trace.faded;
    const x = new Array(n), y = new Array(n), text = new Array(n), rows = new Array(n);
    const colour = faded ? null : new Array(n);
    for (let i = 0; i < n; i++) {
      const j = at[i], c = String(trace.ids[i]);
      x[i] = base.x[j];
      y[i] = base.y[j];
      rows[i] = base.rows[j];
      text[i] = "<b>" + paint.names[c] + "</b><br>" + base.text[j];
      if (colour) colour[i] = paint.colours[c];
    }
    return {
      type: "scattergl",
      x, y,
      mode: "markers",
      name: faded ? "not matching the search" : "texts",
      marker: {
        size: faded ? (paint.small ? 3 : 5) : (paint.small ? 5 : 7),
        color: faded ? "#b8b8b8" : colour,
        opacity: faded ? 0.2 : 0.8,
      },
      text,
      customdata: rows,
      hovertemplate: "%{text}<br>rows: %{customdata}<extra></extra>",
    };
  });
  return { data, layout: paint.layout };
}

// Box selection with the mouse, dragged here rather than by plotly.js: plotly.js selects and
// recolours every point at each step of the drag (a WebGL redraw per mouse move, which in a
// browser drawing WebGL in software was most of a box selection), where this moves a rectangle
// while the button is down and, once it is released, gives plotly.js the box as
// layout.selections: plotly.js then selects the points inside once, dims the others and reports
// them (plotly_selected), as after its own box. Shift adds a box to the selection; a double
// click clears it. The lasso, zoom and pan (the toolbar) and touch screens are plotly.js's own.
const MIN_DRAG = 3; // pixels: less is a click, which selects nothing (as in plotly.js)

// the data rectangle of a drag from `start` to `end` (client pixels) over the plot `area`
function dragBox(start, end, area, xa, ya) {
  const clamp = (v, n) => Math.max(0, Math.min(n, v));
  const px = [start.x, end.x].map((v) => clamp(v - area.left, xa._length));
  const py = [start.y, end.y].map((v) => clamp(v - area.top, ya._length));
  return {
    type: "rect", xref: "x", yref: "y",
    x0: xa.p2d(Math.min(...px)), x1: xa.p2d(Math.max(...px)),
    y0: ya.p2d(Math.max(...py)), y1: ya.p2d(Math.min(...py)),
  };
}

function wireBox(graph, Plotly, report) {
  const outline = document.createElement("div");
  outline.className = "clusterlab-box";
  outline.style.cssText =
    "position:absolute;display:none;pointer-events:none;z-index:10;" +
    "border:1px dashed #444;background:rgba(120,120,120,0.08)";
  let drag = null;
  const at = (event) => ({ x: event.clientX, y: event.clientY });
  const move = (event) => {
    event.stopPropagation(); // no hover labels under a drag
    const a = drag.start, b = at(event), frame = graph.getBoundingClientRect();
    outline.style.left = Math.min(a.x, b.x) - frame.left + "px";
    outline.style.top = Math.min(a.y, b.y) - frame.top + "px";
    outline.style.width = Math.abs(b.x - a.x) + "px";
    outline.style.height = Math.abs(b.y - a.y) + "px";
    outline.style.display = "block";
  };
  const up = (event) => {
    window.removeEventListener("mousemove", move, true);
    window.removeEventListener("mouseup", up, true);
    outline.style.display = "none";
    const { start, area, add } = drag, end = at(event);
    drag = null;
    if (Math.abs(end.x - start.x) < MIN_DRAG && Math.abs(end.y - start.y) < MIN_DRAG) return;
    const layout = graph._fullLayout;
    const box = dragBox(start, end, area, layout.xaxis, layout.yaxis);
    const before = add ? (graph.layout.selections || []) : [];
    Plotly.relayout(graph, { selections: [...before, box] }); // plotly_selected reports the points
  };
  graph.addEventListener(
    "mousedown",
    (event) => {
      const layout = graph._fullLayout;
      const cover = graph.querySelector(".nsewdrag"); // the plot area, under what is drawn on it
      if (!layout || !cover || layout.dragmode !== "select" || event.button !== 0) return;
      if (event.target.closest(".modebar")) return;
      const area = cover.getBoundingClientRect();
      const inside = (v, low, size) => v >= low && v <= low + size;
      if (!inside(event.clientX, area.left, area.width) || !inside(event.clientY, area.top, area.height)) return;
      event.stopPropagation(); // plotly.js starts no selection of its own (nor moves the last box)
      event.preventDefault();
      drag = { start: at(event), area, add: event.shiftKey };
      if (Plotly.Fx) Plotly.Fx.unhover(graph);
      window.addEventListener("mousemove", move, true);
      window.addEventListener("mouseup", up, true);
    },
    true,
  );
  graph.addEventListener("dblclick", () => {
    if (!graph._fullLayout || graph._fullLayout.dragmode !== "select") return;
    if (!(graph.layout.selections || []).length) return;
    Plotly.relayout(graph, { selections: [] });
    report([], []);
  });
  if (getComputedStyle(graph).position === "static") graph.style.position = "relative";
  graph.appendChild(outline);
}

// the areas of a selection in data coordinates: plotly.js keeps each box ("rect") and lasso
// ("path", "M x,y L x,y ... Z") in layout.selections; its event's range or lassoPoints otherwise
function regionsOf(graph, event) {
  const regions = [];
  for (const shape of (event && event.selections) || graph.layout.selections || []) {
    if (shape.type === "rect") {
      regions.push({ box: [shape.x0, shape.x1, shape.y0, shape.y1].map(Number) });
    } else if (shape.type === "path" && typeof shape.path === "string") {
      const corners = shape.path.replace(/[MLZ]/g, " ").trim().split(/\s+/);
      regions.push({ lasso: corners.map((corner) => corner.split(",").map(Number)) });
    }
  }
  if (!regions.length && event && event.range && event.range.x && event.range.y) {
    regions.push({ box: [...event.range.x, ...event.range.y].map(Number) });
  }
  if (!regions.length && event && event.lassoPoints && event.lassoPoints.x) {
    const { x, y } = event.lassoPoints;
    regions.push({ lasso: x.map((value, i) => [Number(value), Number(y[i])]) });
  }
  return regions;
}

// The clusters' names, written at their centres: plotly.js's annotations would be the plain way,
// but plotly.js draws every annotation again on each update and measures each one's text in the
// page's layout (about 2,300 DOM changes for 40 names, 0.1-0.14 s of the browser's main thread
// on every merge or undo at 10,000 texts). Here they are plain elements over the plot, placed
// from the axes after each draw, zoom or pan; the figure still carries them as
// layout.annotations (compose, as in Python), taken out before plotly.js sees the layout.
// Their text is set as text, never as markup: Python escaped it for plotly.js, so it is
// unescaped here first (html.escape without quotes: &amp; &lt; &gt;).
const CHAR_PIXELS = 7.5, LINE_PIXELS = 18; // plots.py's

function plainText(escaped) {
  return String(escaped).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function drawNames(graph) {
  const layout = graph._fullLayout;
  let layer = graph.querySelector(".clusterlab-names");
  if (!layer) {
    layer = document.createElement("div");
    layer.className = "clusterlab-names";
    layer.style.cssText = "position:absolute;left:0;top:0;width:0;height:0;pointer-events:none";
    // under plotly.js's top layer (hover labels, selection outlines), over the points
    const hover = graph.querySelector(".hoverlayer");
    const top = hover && hover.ownerSVGElement;
    if (top && top.parentNode) top.parentNode.insertBefore(layer, top);
    else graph.appendChild(layer);
  }
  const names = graph.__clusterlabNames || [];
  while (layer.children.length > names.length) layer.lastChild.remove();
  while (layer.children.length < names.length) {
    const name = document.createElement("div");
    name.className = "clusterlab-name";
    name.style.cssText =
      "position:absolute;transform:translate(-50%,-50%);white-space:nowrap;font-size:12px;" +
      "color:#1f1f1f;background:rgba(255,255,255,0.75);padding:2px;line-height:1.2";
    layer.appendChild(name);
  }
  if (!layout || !layout.xaxis || !layout.yaxis) return;
  const xa = layout.xaxis, ya = layout.yaxis;
  // a name at the map's edge stays whole, its size estimated as Python estimates it to keep names
  // apart (plots.CHAR_PIXELS, LINE_PIXELS): measuring it would make the browser lay out the whole
  // page there and then, in the middle of Streamlit's updates
  const clamp = (v, half, size) => Math.max(half, Math.min(size - half, v));
  names.forEach((spec, i) => {
    const name = layer.children[i];
    const text = plainText(spec.text);
    if (name.textContent !== text) name.textContent = text;
    const x = xa._offset + xa.d2p(spec.x), y = ya._offset + ya.d2p(spec.y);
    const inside = x >= xa._offset && x <= xa._offset + xa._length && y >= ya._offset && y <= ya._offset + ya._length;
    name.style.display = inside ? "" : "none";
    if (!inside) return;
    name.style.left = clamp(x, (text.length * CHAR_PIXELS + 8) / 2, layout.width) + "px";
    name.style.top = clamp(y, LINE_PIXELS / 2, layout.height) + "px";
  });
}

export default function (component) {
  const { data, parentElement, setStateValue, setTriggerValue } = component;
  let graph = parentElement.querySelector(".clusterlab-map");
  if (!graph) {
    graph = document.createElement("div");
    graph.className = "clusterlab-map";
    parentElement.appendChild(graph);
    window.__clusterlabMapsMade = (window.__clusterlabMapsMade || 0) + 1; // tests: a remount shows here
  }
  // Streamlit calls what this returns when the map goes (another page, a closed tab): plotly.js
  // keeps a graph it drew alive through its window resize listener (`responsive`), WebGL
  // contexts and all, until Plotly.purge; without it every visit to Explore kept one more (6 MB
  // of heap at 100,000 texts, and the browser's oldest WebGL contexts lost past 16). Only a graph
  // out of the page is purged: a render Streamlit gave up on calls this too, the map still shown.
  const cleanup = () =>
    setTimeout(() => {
      if (graph.isConnected || !window.Plotly) return;
      window.Plotly.purge(graph);
      graph.__clusterlabWired = false;
      delete graph.dataset.revision;
    }, 0);
  if (!data || graph.dataset.revision === data.revision) return cleanup; // nothing new to draw
  const revision = data.revision;
  const bases = kept("__clusterlabBases"), paints = kept("__clusterlabFigures");
  const base = data.base ? JSON.parse(data.base) : bases.get(data.base_revision); // kept parsed
  const paint = data.paint || paints.get(revision);
  if (!base || !paint) {
    setTriggerValue("need", revision); // Python sends both with the next run
    return cleanup;
  }
  // the last two drawn, the most recent last, as Python counts what this page keeps
  // (scatter.py, _used): an undo draws the revision before from here, not sent again
  keep(bases, data.base_revision, base);
  keep(paints, revision, paint);
  graph.dataset.pending = revision;
  loadPlotly(data.script)
    .then((Plotly) => {
      if (graph.dataset.pending !== revision) return; // a newer render came meanwhile
      if (!graph.isConnected) return; // the map left while plotly.js loaded: nothing to purge later
      const figure = compose(base, JSON.parse(paint));
      graph.__clusterlabNames = figure.layout.annotations || [];
      figure.layout = { ...figure.layout, annotations: [] }; // drawn by drawNames
      figure.layout.uirevision = "map"; // keep the reader's zoom and pan across updates
      figure.layout.font = { family: '"Source Sans", "Source Sans Pro", sans-serif' };
      return Plotly.react(graph, figure.data, figure.layout, {
        displaylogo: false,
        responsive: true,
        // the screen's own pixel ratio: plotly.js draws WebGL at 2x by default (its setting for
        // image export), 4 times the pixels on a screen of ratio 1, every redraw and every step
        // of a box drag; in a browser drawing WebGL in software that was most of a selection
        plotGlPixelRatio: Math.min(4, Math.max(1, window.devicePixelRatio || 1)),
      }).then(() => {
        graph.dataset.revision = revision;
        graph.removeAttribute("data-error");
        drawNames(graph);
        if (!graph.__clusterlabWired) {
          graph.__clusterlabWired = true;
          // a zoom, a pan (while dragging too), a new size: the names follow their clusters
          for (const event of ["plotly_afterplot", "plotly_relayout", "plotly_relayouting"]) {
            graph.on(event, () => drawNames(graph));
          }
          let last = null; // what went to Python last: the same selection twice is one rerun
          const report = (points, regions) => {
            // the areas say it all: the points drawn inside go only where no area is known
            const selection = { revision: graph.dataset.revision, regions, points: regions.length ? [] : points };
            const said = JSON.stringify(selection);
            if (said === last) return;
            last = said;
            setStateValue("selection", selection);
          };
          // the lasso (and plotly.js's own box, on touch screens) report through plotly.js
          graph.on("plotly_selected", (event) => {
            if (event && event.points) {
              report(event.points.map((p) => [p.curveNumber, p.pointIndex]), regionsOf(graph, event));
            }
          });
          graph.on("plotly_deselect", () => report([], []));
          wireBox(graph, Plotly, report);
        }
      });
    })
    .catch((error) => {
      graph.dataset.error = String(error);
      graph.textContent = "The map could not be drawn: " + error.message;
    });
  return cleanup;
}
