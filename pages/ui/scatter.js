// The Explore map: one Plotly graph that stays mounted across Streamlit reruns.
//
// Streamlit calls this function on every render of the element with the latest `data`
// ({revision, figure: a JSON string or null when this page already got it, script: the URL of
// plotly.min.js}) and the same `parentElement`. The graph is created once and then updated in
// place with Plotly.react, so a new clustering or an edit recolours the points of the existing
// WebGL context instead of building a new one (what st.plotly_chart does whenever its figure
// changes). A box or lasso selection goes back to Python as the state value `selection`:
// {revision, points: [[trace, index], ...]}; Python ignores a selection made on an older revision
// of the map. A graph made again without its figure asks for it with the trigger `need`.
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

// The figures this page got, by revision: Python sends a figure once per revision (it is 9 MB of
// JSON at 100,000 texts) and then only its revision, so a graph made again (the Map tab opened
// again, Explore opened again) draws from here. Two are kept: the current one and the one before.
const FIGURES_KEPT = 2;
function figures() {
  if (!window.__clusterlabFigures) window.__clusterlabFigures = new Map();
  return window.__clusterlabFigures;
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
  if (!data || graph.dataset.revision === data.revision) return; // nothing new to draw
  const revision = data.revision;
  const kept = figures();
  if (data.figure) {
    kept.delete(revision);
    kept.set(revision, data.figure);
    while (kept.size > FIGURES_KEPT) kept.delete(kept.keys().next().value);
  }
  const text = data.figure || kept.get(revision);
  if (!text) {
    setTriggerValue("need", revision); // Python sends it with the next run
    return;
  }
  graph.dataset.pending = revision;
  loadPlotly(data.script)
    .then((Plotly) => {
      if (graph.dataset.pending !== revision) return; // a newer render came meanwhile
      const figure = JSON.parse(text);
      figure.layout.uirevision = "map"; // keep the reader's zoom and pan across updates
      figure.layout.font = { family: '"Source Sans", "Source Sans Pro", sans-serif' };
      return Plotly.react(graph, figure.data, figure.layout, {
        displaylogo: false,
        responsive: true,
      }).then(() => {
        graph.dataset.revision = revision;
        graph.removeAttribute("data-error");
        if (!graph.__clusterlabWired) {
          graph.__clusterlabWired = true;
          const report = (points) =>
            setStateValue("selection", { revision: graph.dataset.revision, points });
          graph.on("plotly_selected", (event) => {
            if (event && event.points) report(event.points.map((p) => [p.curveNumber, p.pointIndex]));
          });
          graph.on("plotly_deselect", () => report([]));
        }
      });
    })
    .catch((error) => {
      graph.dataset.error = String(error);
      graph.textContent = "The map could not be drawn: " + error.message;
    });
}
