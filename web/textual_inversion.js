// Watch an embedding learn: the Train Embedding (and Train Pivotal LoRA) node's websocket messages become a live loss chart on the
// node itself (training_panel.js); the last run of each node is kept so a page reload shows it again
// (training_run.js).

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { TrainingRun, nodeIdOfKey, runKey, storeRun, storedRun, storedRuns } from "./training_run.js";
import { showRun } from "./training_panel.js";

const TRAIN_NODES = new Set(["TextualInversionTrainEmbedding", "TextualInversionTrainPivotalLora"]);
const STORE_EVERY_MS = 2000; // while running; a reload loses at most this much of the curve

const liveRuns = new Map(); // run key -> TrainingRun heard on this page
const lastStored = new Map(); // run key -> Date.now() of its last store
const workflowOfPrompt = new Map(); // prompt id -> Promise of the id of the workflow it was queued from

// Messages name the node by its execution id, which is only unique within the prompt; the prompt names the
// workflow it came from (in its extra_pnginfo), so two open workflows with a node 3 each are not mixed up.
function workflowIdOf(promptId) {
  if (!workflowOfPrompt.has(promptId)) workflowOfPrompt.set(promptId, fetchWorkflowId(promptId));
  return workflowOfPrompt.get(promptId);
}

async function fetchWorkflowId(promptId) {
  const onScreen = app.rootGraph.id; // for a prompt queued without a workflow, e.g. through the API
  try {
    const queue = await (await api.fetchApi("/queue")).json();
    const item = [...queue.queue_running, ...queue.queue_pending].find((entry) => entry[1] === promptId);
    const extra = item?.[3] ?? (await promptHistory(promptId))?.prompt?.[3];
    return extra?.extra_pnginfo?.workflow?.id ?? onScreen;
  } catch (error) {
    console.warn("[textual inversion] could not tell which workflow a training belongs to:", error);
    return onScreen;
  }
}

async function promptHistory(promptId) {
  const history = await (await api.fetchApi(`/history/${encodeURIComponent(promptId)}`)).json();
  return history[promptId] ?? null;
}

// "12" is node 12 of the root graph; "5:12" is node 12 inside the subgraph of node 5, and so on down.
function trainNodeAt(graph, executionId) {
  const path = String(executionId).split(":");
  for (const id of path.slice(0, -1)) graph = graph?.getNodeById(id)?.subgraph;
  const node = graph?.getNodeById(path.at(-1));
  return TRAIN_NODES.has(node?.comfyClass) ? node : null;
}

function present(key, run) {
  const now = Date.now();
  if (run.status !== "running" || now - (lastStored.get(key) ?? 0) >= STORE_EVERY_MS) {
    storeRun(key, run);
    lastStored.set(key, now);
  }
  const graph = app.rootGraph;
  if (!graph || !key.startsWith(runKey(graph.id, ""))) return; // its workflow is not the one on screen
  const node = trainNodeAt(graph, nodeIdOfKey(key));
  if (node) showRun(node, run);
}

function onNodeMessage(update) {
  return ({ detail }) => {
    const promptId = detail.prompt_id;
    // Every message of a prompt waits on the same lookup, so they are applied in the order they came.
    workflowIdOf(promptId).then((workflowId) => {
      const key = runKey(workflowId, detail.node);
      let run = liveRuns.get(key) ?? storedRun(key); // stored: this page was reloaded during the run
      if (run?.promptId !== promptId) run = new TrainingRun(promptId);
      liveRuns.set(key, run);
      update(run, detail);
      present(key, run);
    });
  };
}

// ComfyUI's own word on a prompt that ended without the node saying so (an error, a stop between steps).
function onPromptEnded(status, reasonOf) {
  return ({ detail }) => {
    for (const [key, run] of liveRuns) {
      if (run.promptId !== detail.prompt_id || run.status !== "running") continue;
      run.end(status, reasonOf(detail));
      present(key, run);
    }
  };
}

// A run that was still going when the page closed: its messages went unheard, so ask the server how it ended.
async function settle(key, run) {
  const entry = await promptHistory(run.promptId);
  if (entry) {
    const kinds = new Map(entry.status?.messages ?? []);
    if (kinds.has("execution_interrupted")) run.end("stopped");
    else if (entry.status?.status_str === "error") run.end("failed", kinds.get("execution_error")?.exception_message);
    else run.end("done");
  } else {
    const queue = await (await api.fetchApi("/queue")).json();
    const queued = [...queue.queue_running, ...queue.queue_pending].some((item) => item[1] === run.promptId);
    if (queued) return; // still training: its next messages will carry on the curve
    run.end("failed", "the server no longer knows this run (restarted?)");
  }
  present(key, run);
}

function showRunsOf(graph) {
  const runs = new Map(storedRuns(graph.id));
  for (const [key, run] of liveRuns) if (key.startsWith(runKey(graph.id, ""))) runs.set(key, run);
  for (const [key, run] of runs) {
    const node = trainNodeAt(graph, nodeIdOfKey(key));
    if (!node) continue;
    showRun(node, run);
    if (run.status === "running" && !liveRuns.has(key)) {
      settle(key, run).catch((error) => console.warn("[textual inversion] could not settle a run:", error));
    }
  }
}

app.registerExtension({
  name: "textual_inversion.training_progress",
  setup() {
    api.addEventListener("textual_inversion.progress", onNodeMessage((run, m) => run.addStep(m)));
    api.addEventListener("textual_inversion.preview", onNodeMessage((run, m) => run.setPreview(m)));
    api.addEventListener("textual_inversion.warning", onNodeMessage((run, m) => run.addWarning(m)));
    api.addEventListener("textual_inversion.done", onNodeMessage((run, m) => run.finish(m)));
    api.addEventListener("execution_error", onPromptEnded("failed", (m) => m.exception_message));
    api.addEventListener("execution_interrupted", onPromptEnded("stopped", () => null));
  },
  // After a workflow is loaded, switched to, reloaded with the page, or changed by undo: its nodes are new.
  afterConfigureGraph() {
    showRunsOf(app.rootGraph);
  },
});
