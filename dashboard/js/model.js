// What the page shows, computed from a thread's state values (pure functions, no DOM).
// State shape: graph/state.py (goal, tasks, results blackboard of TaskRecord with TaskMetrics,
// plan_versions, answer, status, started_at, finished_at, usage).

export const STATUSES = ["pending", "running", "done", "failed", "skipped"];

function num(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

// Run totals, as graph/metrics.py run_metrics computes them.
export function runMetrics(values, now = Date.now() / 1000) {
  const results = Object.values((values && values.results) || {});
  const taskMetrics = results.map((r) => r.metrics || {});
  const every = [...taskMetrics, ...((values && values.usage) || [])];
  const tokensIn = every.reduce((s, m) => s + num(m.tokens_in), 0);
  const tokensOut = every.reduce((s, m) => s + num(m.tokens_out), 0);
  const ends = taskMetrics.map((m) => num(m.ended_at)).filter(Boolean);
  if (values && values.finished_at) ends.push(num(values.finished_at));
  const started = values && values.started_at ? num(values.started_at) : null;
  const running = values && !values.finished_at && ["running", "planning"].includes(values.status);
  const end = running ? now : ends.length ? Math.max(...ends) : now;
  const count = (status) => results.filter((r) => r.status === status).length;
  return {
    tasks_total: ((values && values.tasks) || []).length,
    tasks_completed: count("done"),
    tasks_failed: count("failed"),
    tasks_skipped: count("skipped"),
    tokens_in: tokensIn,
    tokens_out: tokensOut,
    tokens: tokensIn + tokensOut,
    cost_usd: every.reduce((s, m) => s + num(m.cost_usd), 0),
    model_calls: every.reduce((s, m) => s + num(m.model_calls), 0),
    cache_hits: taskMetrics.filter((m) => m.cache_hit).length,
    retries: taskMetrics.reduce((s, m) => s + num(m.retries), 0),
    wall_s: started ? Math.max(0, end - started) : null,
  };
}

// One line of the threads list.
export function threadSummary(thread) {
  const values = thread.values || {};
  const metrics = runMetrics(values);
  return {
    id: thread.thread_id,
    threadStatus: thread.status || "idle",
    runStatus: values.status || (thread.status === "busy" ? "running" : "—"),
    goal: values.goal || (thread.metadata && thread.metadata.goal) || "",
    cost: metrics.cost_usd,
    tokens: metrics.tokens,
    wall: metrics.wall_s,
    pending: Object.keys(thread.interrupts || {}).length,
    updated: thread.updated_at || thread.created_at || "",
  };
}

// Live task starts seen on the custom stream: task id -> {status, agent, started, attempt}.
export function applyEvent(live, event) {
  if (!event || typeof event !== "object") return live;
  const id = event.task_id;
  if (event.event === "task_started" && id) {
    live[id] = { ...(live[id] || {}), status: "running", agent: event.agent, started: num(event.ts), attempt: event.attempt };
  } else if (event.event === "task_finished" && id) {
    live[id] = { ...(live[id] || {}), status: event.status, agent: event.agent, ended: num(event.ts), error: event.error };
  } else if (event.event === "plan" || event.event === "planning") {
    for (const key of Object.keys(live)) delete live[key];
  }
  return live;
}

// The tasks to draw: the current plan in order, then blackboard entries from earlier plans.
export function taskRows(values, live = {}) {
  const plan = (values && values.tasks) || [];
  const results = (values && values.results) || {};
  const rows = [];
  const seen = new Set();
  const add = (planned, record) => {
    const task = { ...(planned || {}), ...((record && record.task) || {}) };
    if (!task.id || seen.has(task.id)) return;
    seen.add(task.id);
    const metrics = (record && record.metrics) || {};
    const seenLive = live[task.id] || {};
    let status = (record && record.status) || "pending";
    // The blackboard says "running" from dispatch on; a live finish is newer than the state.
    if (status === "running" && seenLive.status && seenLive.status !== "running" && seenLive.ended) status = seenLive.status;
    const finished = status !== "running" && status !== "pending";
    const started = status === "pending" ? null : num(metrics.started_at) || seenLive.started || null;
    const ended = finished ? num(metrics.ended_at) || seenLive.ended || null : null;
    rows.push({
      id: task.id,
      agent: task.agent || seenLive.agent || "?",
      plannedAgent: (planned && planned.agent) || task.agent,
      instruction: task.instruction || "",
      criteria: task.acceptance_criteria || "",
      dependsOn: task.depends_on || [],
      inPlan: Boolean(planned),
      status,
      model: metrics.model || "",
      latency: metrics.latency_s !== undefined ? num(metrics.latency_s) : null,
      tokensIn: num(metrics.tokens_in),
      tokensOut: num(metrics.tokens_out),
      cost: num(metrics.cost_usd),
      retries: num(metrics.retries),
      cacheHit: Boolean(metrics.cache_hit),
      calls: num(metrics.model_calls),
      attempts: num(record && record.attempts),
      error: (record && record.error) || "",
      history: (record && record.history) || [],
      failedAgents: (record && record.failed_agents) || [],
      output: (record && record.output) || "",
      citations: (record && record.citations) || [],
      artifacts: (record && record.artifacts) || [],
      started,
      ended,
    });
  };
  for (const task of plan) add(task, results[task.id]);
  for (const [id, record] of Object.entries(results)) add(null, { ...record, task: { id, ...(record.task || {}) } });
  return rows;
}

// Columns of the DAG: a task's column is the length of its longest dependency chain.
export function dagLayers(rows) {
  const byId = new Map(rows.map((r) => [r.id, r]));
  const depth = new Map();
  const visit = (id, trail) => {
    if (depth.has(id)) return depth.get(id);
    if (trail.has(id)) return 0; // a cycle: should never pass plan validation
    trail.add(id);
    const row = byId.get(id);
    const deps = row ? row.dependsOn.filter((d) => byId.has(d)) : [];
    const d = deps.length ? 1 + Math.max(...deps.map((x) => visit(x, trail))) : 0;
    trail.delete(id);
    depth.set(id, d);
    return d;
  };
  const layers = [];
  for (const row of rows) {
    const d = visit(row.id, new Set());
    (layers[d] = layers[d] || []).push(row);
  }
  return layers.map((layer) => layer || []);
}

// Gantt geometry: each timed task as [left, width] fractions of the run's span.
export function ganttBars(rows, now = Date.now() / 1000) {
  const timed = rows.filter((r) => r.started);
  if (!timed.length) return { span: 0, bars: [] };
  const origin = Math.min(...timed.map((r) => r.started));
  const endOf = (r) => r.ended || (r.status === "running" ? now : r.started);
  const span = Math.max(0.001, Math.max(...timed.map(endOf)) - origin);
  const bars = timed.map((r) => ({
    id: r.id,
    status: r.status,
    start: r.started - origin,
    end: endOf(r) - origin,
    left: (r.started - origin) / span,
    width: Math.max(0.004, (endOf(r) - r.started) / span),
  }));
  return { span, bars };
}

// -- interrupts ---------------------------------------------------------------------------

const LEGACY = new Set(["plan_review", "tool_approval", "task_failure", "answer_review"]);

// One pending interrupt, in the form the page renders it.
// HITL (LangChain's schema): {action_requests: [{name, args, description}], review_configs: [...]}.
export function normalizeInterrupt(intr) {
  const value = intr && intr.value;
  const id = (intr && (intr.id || intr.interrupt_id)) || "";
  if (value && Array.isArray(value.action_requests)) {
    const configs = Array.isArray(value.review_configs) ? value.review_configs : [];
    const actions = value.action_requests.map((req, i) => {
      const config = configs.find((c) => c && c.action_name === req.name) || configs[i] || {};
      return {
        name: req.name || "action",
        args: req.args === undefined ? {} : req.args,
        description: String(req.description || ""),
        allowed: Array.isArray(config.allowed_decisions) && config.allowed_decisions.length
          ? config.allowed_decisions
          : ["approve", "reject"],
      };
    });
    return { id, kind: "hitl", actions, value };
  }
  if (value && typeof value === "object" && LEGACY.has(value.type)) return { id, kind: value.type, value };
  return { id, kind: "raw", value };
}

// The resume value for a HITL interrupt: one decision per action request, in order.
export function hitlResume(decisions) {
  return { decisions };
}

export function hitlDecision(type, action, { args, message } = {}) {
  if (type === "approve") return { type: "approve" };
  if (type === "edit") return { type: "edit", edited_action: { name: action.name, args } };
  if (type === "reject") return message ? { type: "reject", message } : { type: "reject" };
  return { type };
}

// Resume values of the interrupts the graph raised before the HITL shape (core/review.py).
export function legacyResume(kind, decision, { tasks, text = "" } = {}) {
  if (kind === "plan_review") {
    if (decision === "edit") return { action: "edit", tasks };
    return { action: decision, feedback: text };
  }
  if (kind === "tool_approval") return { approved: decision === "approve", feedback: text };
  if (kind === "answer_review") return { action: decision, answer: text, feedback: text };
  if (kind === "task_failure") return { action: decision, instruction: text };
  throw new Error(`unknown interrupt kind ${kind}`);
}

// The setting overrides a thread was started with (kept in state), for its later runs.
export function runOverrides(values) {
  const stored = values && (values.run_settings || values.options);
  return stored && typeof stored === "object" ? stored : {};
}

// -- the answer ---------------------------------------------------------------------------

// Which task each part of the answer came from: state "attributions" when the graph keeps
// them, else the [task id] markers the synthesizer writes, matched against the tasks.
export function attributions(values, rows) {
  const stated = values && values.attributions;
  if (Array.isArray(stated)) {
    return stated.map((a) => ({
      text: a.text || a.part || a.claim || a.sentence || "",
      tasks: [].concat(a.task_ids || a.tasks || a.task_id || a.source || []).map(String),
    }));
  }
  if (stated && typeof stated === "object") {
    return Object.entries(stated).map(([key, val]) => ({ text: typeof val === "string" ? val : key, tasks: [key] }));
  }
  const answer = (values && values.answer) || "";
  const ids = new Set(rows.map((r) => r.id));
  const found = [];
  for (const paragraph of answer.split(/\n\s*\n/)) {
    const tasks = [...new Set([...paragraph.matchAll(/\[([^\]\n]{1,40})\]/g)].map((m) => m[1].trim()).filter((t) => ids.has(t)))];
    if (tasks.length) found.push({ text: paragraph.trim(), tasks });
  }
  return found;
}

// -- formatting ---------------------------------------------------------------------------

export function fmtSeconds(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return "—";
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, "0")}s`;
}

export function fmtCost(c) {
  return `$${num(c).toFixed(num(c) && num(c) < 0.01 ? 5 : 2)}`;
}

export function fmtInt(n) {
  return num(n).toLocaleString("en-US");
}
