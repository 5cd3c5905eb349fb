// The panel on a Train Embedding node: loss chart, step / total, the word's norm, learning rate, time, the
// trainer's warnings, and the latest preview.

import { api } from "../../scripts/api.js";
import { drawLossChart, formatLoss } from "./loss_chart.js";

const WIDGET_NAME = "training_progress";
const CHART_HEIGHT = 160;
const TEXT_HEIGHT = 40;
const WARNING_HEIGHT = 30; // each warning: two lines, the whole text on hover
const PREVIEW_HEIGHT = 180;
const MIN_NODE_WIDTH = 400;

const STYLE = `
.ti-panel { display: flex; flex-direction: column; gap: 2px; box-sizing: border-box; padding: 2px 4px;
  color: var(--descrip-text, #aaa); font: 11px/1.35 sans-serif; overflow: hidden; }
.ti-panel canvas { flex: 1 1 ${CHART_HEIGHT}px; min-height: 0; width: 100%; display: block; }
.ti-panel .ti-summary, .ti-panel .ti-timing { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.ti-panel .ti-summary { color: var(--input-text, #ddd); }
.ti-panel[data-status="failed"] .ti-timing { color: var(--error-text, #f66); }
.ti-panel .ti-warning { color: #e8b04a; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical;
  overflow: hidden; flex: 0 0 auto; }
.ti-panel figure { margin: 0; flex: 0 0 ${PREVIEW_HEIGHT}px; display: flex; flex-direction: column; min-height: 0; }
.ti-panel figure[hidden] { display: none; }
.ti-panel figure img { flex: 1 1 auto; min-height: 0; object-fit: contain; }
.ti-panel figcaption { display: flex; align-items: center; justify-content: center; gap: 6px; }
.ti-panel figcaption button { font: inherit; padding: 0 6px; cursor: pointer; }
.ti-panel figcaption button:disabled { opacity: 0.3; cursor: default; }
`;

function addStyleOnce() {
  if (document.getElementById("ti-panel-style")) return;
  const style = document.createElement("style");
  style.id = "ti-panel-style";
  style.textContent = STYLE;
  document.head.append(style);
}

class TrainingPanel {
  constructor() {
    addStyleOnce();
    this.run = null;
    this.element = document.createElement("div");
    this.element.className = "ti-panel";
    this.canvas = document.createElement("canvas");
    this.summary = document.createElement("div");
    this.summary.className = "ti-summary";
    this.timing = document.createElement("div");
    this.timing.className = "ti-timing";
    this.warnings = document.createElement("div");
    this.figure = document.createElement("figure");
    this.figure.hidden = true;
    this.image = document.createElement("img");
    this.image.alt = "preview";
    // Temp pictures are gone after a server restart: hide the preview rather than show a broken picture.
    this.image.addEventListener("error", () => (this.figure.hidden = true));
    // The latest validation grid, or an earlier one the user steps back to: which step did best?
    this.caption = document.createElement("figcaption");
    this.earlier = navigationButton("◀", "an earlier validation", () => this.pick(-1));
    this.later = navigationButton("▶", "a later validation", () => this.pick(+1));
    this.captionText = document.createElement("span");
    this.caption.append(this.earlier, this.captionText, this.later);
    this.picked = null; // index into run.previews; null follows the latest
    this.figure.append(this.image, this.caption);
    this.element.append(this.canvas, this.summary, this.timing, this.warnings, this.figure);
    new ResizeObserver(() => this.draw()).observe(this.canvas);
  }

  get height() {
    return CHART_HEIGHT + TEXT_HEIGHT + WARNING_HEIGHT * (this.run?.warnings?.length ?? 0) +
      (this.figure.hidden ? 0 : PREVIEW_HEIGHT);
  }

  show(run) {
    this.run = run;
    this.summary.textContent = this.summary.title = summaryText(run);
    this.timing.textContent = this.timing.title = timingText(run); // the title: all of a long path on hover
    this.element.dataset.status = run.status;
    const warnings = run.warnings ?? [];
    if (this.warnings.childElementCount !== warnings.length) {
      this.warnings.replaceChildren(...warnings.map(({ step, message }) => {
        const line = document.createElement("div");
        line.className = "ti-warning";
        line.textContent = `step ${step}: ${message}`;
        line.title = line.textContent;
        return line;
      }));
    }
    this.showPreview();
    if (!this.drawPending) {
      this.drawPending = true;
      requestAnimationFrame(() => {
        this.drawPending = false;
        this.draw();
      });
    }
  }

  draw() {
    if (this.run) drawLossChart(this.canvas, this.run);
  }

  pick(direction) {
    const previews = this.run?.previews ?? [];
    const current = this.picked ?? previews.length - 1;
    const next = Math.min(previews.length - 1, Math.max(0, current + direction));
    this.picked = next === previews.length - 1 ? null : next;
    this.showPreview();
  }

  showPreview() {
    const previews = this.run.previews?.length ? this.run.previews : this.run.preview ? [this.run.preview] : [];
    if (!previews.length) return;
    const index = this.picked ?? previews.length - 1;
    const { step, image, saved } = previews[index];
    if (!this.image.src.endsWith(previewQuery(image))) {
      this.figure.hidden = false;
      this.image.src = api.apiURL(`/view?${previewQuery(image)}`);
    }
    const which = previews.length > 1 ? ` (${index + 1} of ${previews.length})` : "";
    this.captionText.textContent = `validation at step ${step}${which}${saved ? ` · kept as ${saved}` : ""}`;
    this.earlier.disabled = index === 0;
    this.later.disabled = index === previews.length - 1;
  }
}

function navigationButton(label, title, onClick) {
  const button = document.createElement("button");
  button.textContent = label;
  button.title = title;
  button.addEventListener("click", (event) => {
    event.stopPropagation(); // a click on the node's panel is not a click on the canvas
    onClick();
  });
  return button;
}

function previewQuery({ filename, subfolder, type }) {
  return new URLSearchParams({ filename, subfolder: subfolder ?? "", type: type ?? "temp" }).toString();
}

function summaryText(run) {
  const loss = run.lastLoss === null ? "" : ` · loss ${formatLoss(run.lastLoss)} (smoothed ${formatLoss(run.lastSmoothed)})`;
  const norm = run.norm == null ? "" : ` · norm ${run.norm.toFixed(2)}× a word's`;
  return `step ${run.step} / ${run.total}${loss}${norm}`;
}

function timingText(run) {
  const lr = run.lr === null ? "" : `lr ${Number(run.lr.toPrecision(3))} · `;
  switch (run.status) {
    case "running":
      return `${lr}${formatDuration(run.elapsed)} elapsed · ${run.eta === null ? "–" : formatDuration(run.eta)} left`;
    case "done":
      return `${lr}done in ${formatDuration(run.elapsed)}`;
    case "stopped":
      return `stopped at step ${run.step} after ${formatDuration(run.elapsed)}` +
        (run.detail ? ` · kept as ${run.detail}` : "");
    default:
      return `failed at step ${run.step}${run.detail ? `: ${run.detail}` : ""}`;
  }
}

function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds ?? 0));
  const [h, m] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60)];
  const mmss = `${String(m).padStart(h ? 2 : 1, "0")}:${String(s % 60).padStart(2, "0")}`;
  return h ? `${h}:${mmss}` : mmss;
}

// The node's panel, added the first time the node has a run to show. It is not a widget value: nothing of it
// goes into the prompt or the workflow's widgets_values.
export function showRun(node, run) {
  let widget = node.widgets?.find((w) => w.name === WIDGET_NAME);
  const created = !widget;
  if (created) {
    const panel = new TrainingPanel();
    widget = node.addDOMWidget(WIDGET_NAME, "textual_inversion_progress", panel.element, {
      serialize: false,
      hideOnZoom: false,
      getMinHeight: () => panel.height,
    });
    widget.serialize = false;
    widget.panel = panel;
  }
  const heightBefore = created ? 0 : widget.panel.height;
  widget.panel.show(run);
  node.trainingRun = run; // what the page shows, for scripts and tests: node.trainingRun.points etc.
  if (created || widget.panel.height !== heightBefore) fitNode(node);
}

function fitNode(node) {
  const needed = node.computeSize();
  node.setSize([Math.max(node.size[0], MIN_NODE_WIDTH, needed[0]), Math.max(node.size[1], needed[1])]);
  node.setDirtyCanvas(true, true);
}
