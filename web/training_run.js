// One training as the Train Embedding node shows it, built from the node's websocket messages
// (textual_inversion.progress / .preview / .warning / .done), and kept in the browser so that a page reload shows the
// last run again.

const STORAGE_KEY = "textual_inversion.runs";
const MAX_STORED_RUNS = 20;
// Enough for a curve as wide as a node; a longer run is kept as every k-th step (the chart cannot show more).
const MAX_STORED_POINTS = 1000;
const MAX_PREVIEWS = 100; // the validation grids a run keeps to look back at, newest last

export class TrainingRun {
  constructor(promptId) {
    this.promptId = promptId;
    this.points = []; // [step, loss, smoothed loss]
    this.step = 0;
    this.total = 0;
    this.lr = null;
    this.elapsed = 0;
    this.eta = null;
    this.status = "running"; // running | done | stopped | failed
    this.detail = null; // why it failed, or where a stopped run's word was saved
    this.preview = null; // the latest validation: {step, image: {filename, subfolder, type}, saved}
    this.previews = []; // every validation so far, oldest first, so the user can see which step did best
    this.finalLoss = null;
    this.smoothing = null; // {average, weight, count}: the running average behind the smoothed curve
    this.norm = null; // the largest vector's norm over a typical word's (the vocabulary's median)
    this.warnings = []; // [{step, message}]: what the trainer advises changing, each said once
  }

  addStep({ step, total, loss, lr, elapsed, eta, norm }) {
    Object.assign(this, { step, total, lr, elapsed, eta, norm: norm ?? null, status: "running" });
    this.points.push([step, loss, this.#smooth(loss)]);
  }

  addWarning({ step, message }) {
    this.warnings.push({ step, message });
  }

  // An exponential moving average, debiased so that it starts at the first losses rather than at zero.
  // Diffusion losses swing with the sampled noise level; the span grows with the run so a long run's trend
  // stays readable while a short one still follows its few steps. The loss plot the node outputs draws the
  // same numbers (textual_inversion_core/loss_plot.py, smooth); a test holds the two together.
  #smooth(loss) {
    if (!Number.isFinite(loss)) return null;
    if (!this.smoothing) {
      const span = Math.min(100, Math.max(4, Math.round(this.total / 25)));
      this.smoothing = { average: 0, weight: 1 - 2 / (span + 1), count: 0 };
    }
    const s = this.smoothing;
    s.average = s.weight * s.average + (1 - s.weight) * loss;
    s.count += 1;
    return s.average / (1 - s.weight ** s.count);
  }

  setPreview({ step, image, saved }) {
    this.preview = { step, image, saved: saved ?? null };
    this.previews = [...(this.previews ?? []), this.preview].slice(-MAX_PREVIEWS);
  }

  finish({ steps, total, final_loss, stopped, saved }) {
    Object.assign(this, { step: steps, total, finalLoss: final_loss, eta: 0 });
    this.status = stopped ? "stopped" : "done";
    this.detail = saved ?? null;
  }

  // How a run ended that ComfyUI reports rather than the node (an error, or a stop before the node could say).
  end(status, detail) {
    if (this.status !== "running") return; // the node already said how it ended
    this.status = status;
    this.detail = detail ?? null;
    this.eta = 0;
  }

  get lastLoss() {
    return this.points.at(-1)?.[1] ?? null;
  }

  get lastSmoothed() {
    return this.points.at(-1)?.[2] ?? null;
  }

  toJSON() {
    const { promptId, step, total, lr, elapsed, eta, status, detail, preview, previews, finalLoss, smoothing, norm,
      warnings } = this;
    const every = Math.ceil(this.points.length / MAX_STORED_POINTS);
    const points = this.points.filter((_, i) => i % every === 0 || i === this.points.length - 1);
    return { promptId, points: points.map(compactPoint), step, total, lr, elapsed, eta, status, detail, preview,
      previews, finalLoss, smoothing, norm, warnings };
  }

  static fromJSON(data) {
    return Object.assign(new TrainingRun(data.promptId), data);
  }
}

const compactPoint = ([step, loss, smoothed]) => [step, significant(loss), significant(smoothed)];
const significant = (x) => (Number.isFinite(x) ? Number(x.toPrecision(5)) : null);

// Runs are kept per workflow and node, as "<workflow id>/<node execution id>", newest MAX_STORED_RUNS only.

export function runKey(workflowId, nodeId) {
  return `${workflowId}/${nodeId}`;
}

export function nodeIdOfKey(key) {
  return key.slice(key.indexOf("/") + 1);
}

export function storedRuns(workflowId) {
  const prefix = runKey(workflowId, "");
  return Object.entries(readStorage())
    .filter(([key]) => key.startsWith(prefix))
    .map(([key, entry]) => [key, TrainingRun.fromJSON(entry.run)]);
}

export function storedRun(key) {
  const entry = readStorage()[key];
  return entry ? TrainingRun.fromJSON(entry.run) : null;
}

export function storeRun(key, run) {
  const runs = readStorage();
  runs[key] = { savedAt: Date.now(), run: run.toJSON() };
  const newest = Object.entries(runs).sort(([, a], [, b]) => b.savedAt - a.savedAt).slice(0, MAX_STORED_RUNS);
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(Object.fromEntries(newest)));
  } catch (error) {
    // A full localStorage only costs the curve after a reload; the live chart goes on.
    console.warn("[textual inversion] could not keep the loss curve for after a reload:", error);
  }
}

function readStorage() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "{}") ?? {};
  } catch {
    return {}; // written by an older or broken version: start afresh rather than break the page
  }
}
