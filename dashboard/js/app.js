// The dashboard: threads list, one thread live, interventions, history and forks.
import { ASSISTANT, api, hasToken, streamRun } from "./api.js";
import { h, replace } from "./dom.js";
import { applyEvent, runMetrics, runOverrides, taskRows, threadSummary } from "./model.js";
import {
  answerView, dagView, ganttView, historyTable, interruptCard, planVersionsView, taskDetail,
  tasksTable, threadHeader, threadsTable, whyView,
} from "./views.js";

const $ = (id) => document.getElementById(id);

const ui = {
  threads: [],
  selected: null, // thread id
  thread: null, // GET /threads/{id}
  state: null, // GET /threads/{id}/state
  why: null, // {key, data}: POST /dashboard/diagnosis for the state's checkpoint
  live: {}, // thread id -> {task id -> live status}
  log: {}, // thread id -> recent custom events
  streams: new Set(), // thread ids with a stream open from this page
  selectedTask: null,
  interruptKey: "",
  history: null,
  historyFor: null,
  error: "",
  answered: new Set(), // interrupt ids answered from this page, until the state drops them
  usesContext: false,
  channelReady: Promise.resolve(),
};

function setError(message) {
  ui.error = message || "";
  const banner = $("error");
  banner.textContent = ui.error;
  banner.hidden = !ui.error;
}

function note(message) {
  $("status-line").textContent = message;
}

// -- data ---------------------------------------------------------------------------------

async function refreshThreads() {
  try {
    const threads = await api.searchThreads(50);
    ui.threads = threads.map(threadSummary);
    renderThreads();
    // A run started elsewhere (CLI, SDK, another tab) changes the thread: follow it.
    const mine = threads.find((t) => t.thread_id === ui.selected);
    if (mine && ui.thread && mine.updated_at !== ui.thread.updated_at && !ui.streams.has(ui.selected)) refreshThread();
    $("conn").textContent = "connected";
    $("conn").className = "conn ok";
  } catch (err) {
    const refused = err.status === 401 || !hasToken();
    $("conn").textContent = refused ? "no access token" : "server unreachable";
    $("conn").className = "conn bad";
    if (refused) setError("This page needs the server's access token: open the address `make serve` printed (it ends in #token=…).");
  }
}

async function refreshThread() {
  const id = ui.selected;
  if (!id) return;
  try {
    const [thread, state] = await Promise.all([api.getThread(id), api.getState(id)]);
    if (id !== ui.selected) return;
    const moved = state.checkpoint && ui.state && ui.state.checkpoint
      && state.checkpoint.checkpoint_id !== ui.state.checkpoint.checkpoint_id;
    ui.thread = thread;
    ui.state = state;
    renderThread();
    if (moved || !ui.history) loadHistory().catch(() => {});
    loadWhy().catch(() => {});
  } catch (err) {
    if (id === ui.selected) setError(err.message);
  }
}

async function loadHistory() {
  const id = ui.selected;
  if (!id) return;
  const states = await api.getHistory(id, 200);
  if (id !== ui.selected) return;
  ui.history = states;
  ui.historyFor = state_checkpoint();
  renderHistory();
}

// The diagnosis of the shown state, fetched again only when the checkpoint changes.
async function loadWhy() {
  const id = ui.selected;
  const key = `${id}:${state_checkpoint()}`;
  if (!id || (ui.why && ui.why.key === key)) return;
  let data;
  try {
    data = await api.diagnose((ui.state && ui.state.values) || {});
  } catch (err) {
    data = { error: String(err.message || err) }; // said in the panel, not over the page
  }
  if (id !== ui.selected) return;
  ui.why = { key, data };
  renderThread();
}

function state_checkpoint() {
  return ui.state && ui.state.checkpoint ? ui.state.checkpoint.checkpoint_id : null;
}

function busy(id) {
  return ui.streams.has(id) || (ui.selected === id && ui.thread && ui.thread.status === "busy");
}

// -- runs ---------------------------------------------------------------------------------

function overridesFromForm() {
  const overrides = {};
  const model = $("model").value.trim();
  if (model) overrides.model = model;
  overrides.review = {
    plan: $("review-plan").checked,
    high_risk_tools: $("review-tools").checked,
    final_answer: $("review-answer").checked,
    failures: $("review-failures").checked,
  };
  const extra = $("extra").value.trim();
  if (extra) {
    let parsed;
    try {
      parsed = JSON.parse(extra);
    } catch (err) {
      throw new Error(`more settings: not valid JSON (${err.message})`);
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("more settings: expected a JSON object");
    Object.assign(overrides, parsed, parsed.review ? { review: { ...overrides.review, ...parsed.review } } : {});
  }
  return overrides;
}

// Setting overrides travel as the run's LangGraph runtime context when the graph declares a
// context schema (the thread then stores them, secrets left out, and a resume or fork sent
// with no context reuses them); older servers take them in configurable.settings and the
// input's "options", and need them again on every resume.
function startBody(goal, overrides) {
  return ui.usesContext
    ? { input: { goal }, context: overrides }
    : { input: { goal, options: overrides }, config: { configurable: { settings: overrides } } };
}

function continueBody(values) {
  return ui.usesContext ? {} : { config: { configurable: { settings: runOverrides(values) } } };
}

async function detectSettingsChannel() {
  try {
    const [assistant] = await api.findAssistant(ASSISTANT);
    const schemas = assistant ? await api.assistantSchemas(assistant.assistant_id) : null;
    ui.usesContext = Boolean(schemas && schemas.context_schema);
  } catch {
    ui.usesContext = false;
  }
}

async function runStream(threadId, makeBody, label) {
  await ui.channelReady;
  const body = makeBody();
  ui.streams.add(threadId);
  ui.live[threadId] = ui.live[threadId] || {};
  ui.log[threadId] = ui.log[threadId] || [];
  note(`${label}…`);
  renderThread();
  try {
    await streamRun(threadId, body, (event, data) => onStreamEvent(threadId, event, data));
    note(`${label}: stream ended`);
  } catch (err) {
    setError(err.message);
  } finally {
    ui.streams.delete(threadId);
    await Promise.all([refreshThread(), refreshThreads()]);
    if (ui.selected === threadId) await loadHistory().catch(() => {});
  }
}

function onStreamEvent(threadId, event, data) {
  if (event === "custom") {
    applyEvent(ui.live[threadId], data);
    const log = ui.log[threadId];
    log.push(data);
    if (log.length > 200) log.splice(0, log.length - 200);
  } else if (event === "values" && data && typeof data === "object" && ui.selected === threadId && ui.state) {
    ui.state = { ...ui.state, values: data };
  } else if (event === "error") {
    setError(`run error: ${typeof data === "string" ? data : JSON.stringify(data)}`);
  } else {
    return;
  }
  if (ui.selected === threadId) renderThread();
}

async function startRun(event) {
  event.preventDefault();
  setError("");
  const goal = $("goal").value.trim();
  if (!goal) {
    setError("the goal is empty");
    return;
  }
  let overrides;
  try {
    overrides = overridesFromForm();
  } catch (err) {
    setError(err.message);
    return;
  }
  const thread = await api.createThread({ goal }).catch((err) => setError(err.message));
  if (!thread) return;
  select(thread.thread_id);
  await refreshThreads();
  runStream(thread.thread_id, () => startBody(goal, overrides), "run");
}

async function resume(interruptId, value) {
  const id = ui.selected;
  const values = ui.state && ui.state.values;
  setError("");
  ui.answered.add(interruptId);
  ui.interruptKey = "";
  runStream(id, () => ({ command: { resume: { [interruptId]: value } }, ...continueBody(values) }), "resumed");
  // The card stays disabled until the next state shows the interrupt answered.
}

async function fork(snapshot) {
  const id = ui.selected;
  setError("");
  const checkpointId = snapshot.checkpoint.checkpoint_id;
  let edits = null;
  const raw = $("fork-edits").value.trim();
  if (raw) {
    try {
      edits = JSON.parse(raw);
    } catch (err) {
      setError(`fork edits: not valid JSON (${err.message})`);
      return;
    }
  }
  try {
    const copy = await api.copyCheckpoint(id, checkpointId);
    const copyId = copy.checkpoint.checkpoint_id;
    const body = () => {
      const b = { checkpoint_id: copyId, ...continueBody(snapshot.values) };
      if (edits && (snapshot.next || []).length) b.command = { update: edits, goto: snapshot.next[0] };
      else b.input = null;
      return b;
    };
    ui.live[id] = {};
    note(`forked ${checkpointId.slice(-12)} → ${copyId.slice(-12)}`);
    await runStream(id, body, "fork");
  } catch (err) {
    setError(err.message);
  }
}

// -- rendering ---------------------------------------------------------------------------

function renderThreads() {
  replace($("threads"), threadsTable(ui.threads, ui.selected, select));
}

function selectTask(taskId) {
  ui.selectedTask = taskId;
  renderThread();
  $("task-detail").scrollIntoView({ block: "nearest" });
}

function renderThread() {
  const main = $("thread");
  if (!ui.selected) {
    main.hidden = true;
    $("empty").hidden = false;
    return;
  }
  main.hidden = false;
  $("empty").hidden = true;
  const values = (ui.state && ui.state.values) || {};
  const live = ui.live[ui.selected] || {};
  const now = Date.now() / 1000;
  const rows = taskRows(values, live);
  replace($("head"), threadHeader(ui.selected, values, ui.thread, runMetrics(values, now)));
  replace($("dag"), dagView(rows, ui.selectedTask, selectTask));
  replace($("gantt"), ganttView(rows, now));
  replace($("tasks"), tasksTable(rows, ui.selectedTask, selectTask));
  replace($("task-detail"), taskDetail(rows.find((r) => r.id === ui.selectedTask)));
  replace($("answer"), answerView(values, rows, selectTask));
  replace($("why"), whyView(ui.why && ui.why.key.startsWith(`${ui.selected}:`) ? ui.why.data : null, selectTask));
  replace($("plan-versions"), planVersionsView(values.plan_versions));
  renderInterrupts();
  renderLog();
  $("live").textContent = busy(ui.selected) ? "● live" : "";
}

function renderInterrupts() {
  const all = (ui.state && ui.state.interrupts) || [];
  const pending = all.filter((i) => !ui.answered.has(i.id));
  for (const id of ui.answered) if (!all.some((i) => i.id === id)) ui.answered.delete(id);
  const key = `${ui.selected}:${pending.map((i) => i.id).join(",")}:${all.length}`;
  if (key === ui.interruptKey) return; // keep what the user is typing
  ui.interruptKey = key;
  const box = $("interrupts");
  if (!pending.length) {
    replace(box, h("p", { class: "muted" }, all.length ? "Answer sent; the run goes on." : "Nothing waits for you."));
    return;
  }
  replace(box, pending.map((i) => interruptCard(i, resume)));
}

function renderLog() {
  const events = (ui.log[ui.selected] || []).slice(-30).reverse();
  replace($("log"), events.map((e) => h("li", {}, h("code", {}, new Date((e.ts || 0) * 1000).toLocaleTimeString()), " ",
    h("b", {}, e.event), " ", JSON.stringify(Object.fromEntries(Object.entries(e).filter(([k]) => !["event", "ts", "tasks"].includes(k)))))));
}

function renderHistory() {
  replace($("history"), ui.history ? historyTable(ui.history, state_checkpoint(), fork) : h("p", { class: "muted" }, ""));
}

function select(threadId) {
  if (ui.selected !== threadId) {
    ui.selected = threadId;
    ui.thread = null;
    ui.state = null;
    ui.selectedTask = null;
    ui.interruptKey = "";
    ui.history = null;
    setError("");
  }
  if (location.hash !== `#thread=${threadId}`) history.replaceState(null, "", `#thread=${encodeURIComponent(threadId)}`);
  renderThreads();
  renderThread();
  refreshThread().catch((err) => setError(err.message));
}

// -- wiring -------------------------------------------------------------------------------

function fromHash() {
  const match = /^#thread=(.+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

async function tick() {
  if (ui.selected && busy(ui.selected)) await refreshThread();
  else if (ui.selected) renderThread(); // advance running bars
}

function main() {
  $("new-run").addEventListener("submit", startRun);
  $("reload-history").addEventListener("click", () => loadHistory().catch((err) => setError(err.message)));
  $("refresh").addEventListener("click", () => Promise.all([refreshThreads(), refreshThread()]));
  window.addEventListener("hashchange", () => {
    const id = fromHash();
    if (id && id !== ui.selected) select(id);
  });
  ui.channelReady = detectSettingsChannel();
  refreshThreads();
  const initial = fromHash();
  if (initial) select(initial);
  setInterval(tick, 1000);
  setInterval(refreshThreads, 3000);
}

main();
