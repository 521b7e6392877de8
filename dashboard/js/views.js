// Rendering: each function returns elements for one part of the page.
import { h, pretty } from "./dom.js";
import {
  attributions, dagLayers, fmtCost, fmtInt, fmtSeconds, ganttBars, hitlDecision, hitlResume,
  legacyResume, normalizeInterrupt,
} from "./model.js";

const badge = (status, extra = "") => h("span", { class: `badge s-${status} ${extra}`, "data-status": status }, status);

// -- threads ----------------------------------------------------------------------------

export function threadsTable(summaries, selected, onOpen) {
  if (!summaries.length) return h("p", { class: "muted" }, "No threads yet: start a run above.");
  return h("table", { class: "threads", "data-testid": "threads" },
    h("thead", {}, h("tr", {}, ["goal", "status", "cost", "tokens", "wall"].map((c) => h("th", {}, c)))),
    h("tbody", {}, summaries.map((t) =>
      h("tr", {
        class: t.id === selected ? "selected" : "", "data-thread": t.id, tabindex: 0,
        onclick: () => onOpen(t.id), onkeydown: (e) => e.key === "Enter" && onOpen(t.id),
      },
      h("td", { class: "goal", title: `${t.goal}\n${t.id}` }, t.goal || h("span", { class: "muted" }, t.id)),
      h("td", { title: `run ${t.runStatus}, thread ${t.threadStatus}` },
        t.pending ? badge("waiting") : badge(t.threadStatus === "busy" ? "running" : t.runStatus)),
      h("td", { class: "num" }, fmtCost(t.cost)),
      h("td", { class: "num" }, fmtInt(t.tokens)),
      h("td", { class: "num" }, fmtSeconds(t.wall))))));
}

// -- one thread's header ------------------------------------------------------------------

export function threadHeader(threadId, values, thread, metrics) {
  return h("div", { class: "thread-head" },
    h("h2", { "data-testid": "goal" }, values.goal || "(no goal yet)"),
    h("div", { class: "meta" },
      h("code", {}, threadId), " ",
      badge(values.status || "—", "run-status"), " ",
      thread ? badge(thread.status || "idle", "thread-status") : null,
      values.stop_reason ? h("span", { class: "stop" }, ` stopped: ${values.stop_reason}`) : null),
    h("dl", { class: "metrics", "data-testid": "metrics" },
      metric("tasks", `${metrics.tasks_completed}/${metrics.tasks_total} done` +
        (metrics.tasks_failed ? `, ${metrics.tasks_failed} failed` : "") +
        (metrics.tasks_skipped ? `, ${metrics.tasks_skipped} skipped` : "")),
      metric("tokens", `${fmtInt(metrics.tokens)} (${fmtInt(metrics.tokens_in)} in / ${fmtInt(metrics.tokens_out)} out)`),
      metric("cost", fmtCost(metrics.cost_usd)),
      metric("model calls", fmtInt(metrics.model_calls)),
      metric("cache hits", fmtInt(metrics.cache_hits)),
      metric("retries", fmtInt(metrics.retries)),
      metric("wall time", fmtSeconds(metrics.wall_s))));
}

const metric = (label, value) => h("div", {}, h("dt", {}, label), h("dd", {}, value));

// -- the task DAG ------------------------------------------------------------------------

const NODE_W = 150, NODE_H = 46, COL_GAP = 60, ROW_GAP = 18, PAD = 12;

export function dagView(rows, selected, onSelect) {
  if (!rows.length) return h("p", { class: "muted" }, "No plan yet.");
  const layers = dagLayers(rows);
  const pos = new Map();
  layers.forEach((layer, col) => layer.forEach((row, i) => {
    pos.set(row.id, { x: PAD + col * (NODE_W + COL_GAP), y: PAD + i * (NODE_H + ROW_GAP) });
  }));
  const width = PAD * 2 + layers.length * NODE_W + (layers.length - 1) * COL_GAP;
  const height = PAD * 2 + Math.max(...layers.map((l) => l.length)) * (NODE_H + ROW_GAP) - ROW_GAP;
  const edges = [];
  for (const row of rows) {
    for (const dep of row.dependsOn) {
      const a = pos.get(dep), b = pos.get(row.id);
      if (!a || !b) continue;
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2, mx = (x1 + x2) / 2;
      edges.push(h("path", { class: "edge", d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, "marker-end": "url(#arrow)" }));
    }
  }
  const nodes = rows.map((row) => {
    const p = pos.get(row.id);
    const label = row.id.length > 18 ? `${row.id.slice(0, 17)}…` : row.id;
    return h("g", {
      class: `node s-${row.status}${row.id === selected ? " selected" : ""}`, "data-task": row.id, "data-status": row.status,
      transform: `translate(${p.x},${p.y})`, tabindex: 0, role: "button",
      onclick: () => onSelect(row.id), onkeydown: (e) => e.key === "Enter" && onSelect(row.id),
    },
    h("title", {}, `${row.id} · ${row.agent} · ${row.status}\n${row.instruction}`),
    h("rect", { width: NODE_W, height: NODE_H, rx: 7 }),
    h("text", { x: 10, y: 19, class: "node-id" }, label),
    h("text", { x: 10, y: 36, class: "node-agent" }, `${row.agent} · ${row.status}`));
  });
  return h("svg", { class: "dag", "data-testid": "dag", width, height, viewBox: `0 0 ${width} ${height}` },
    h("defs", {}, h("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      h("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }))),
    edges, nodes);
}

// -- the Gantt timeline ---------------------------------------------------------------------

export function ganttView(rows, now) {
  const { span, bars } = ganttBars(rows, now);
  if (!bars.length) return h("p", { class: "muted", "data-testid": "gantt-empty" }, "No task has started yet.");
  // 0s is the first task's start: planning and time spent waiting for a human come before.
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => h("span", { class: "tick", style: { left: `${f * 100}%` } }, fmtSeconds(f * span)));
  return h("div", { class: "gantt", "data-testid": "gantt" },
    h("div", { class: "gantt-row axis" }, h("span", { class: "gantt-label" }, ""), h("div", { class: "gantt-track" }, ticks)),
    bars.map((b) => h("div", { class: "gantt-row", "data-task": b.id },
      h("span", { class: "gantt-label", title: b.id }, b.id),
      h("div", { class: "gantt-track" },
        h("div", {
          class: `bar s-${b.status}`, "data-status": b.status, title: `${b.id}: ${fmtSeconds(b.start)} → ${fmtSeconds(b.end)}`,
          style: { left: `${(b.left * 100).toFixed(3)}%`, width: `${(b.width * 100).toFixed(3)}%` },
        }, fmtSeconds(b.end - b.start))))));
}

// -- the tasks table and one task -------------------------------------------------------------

export function tasksTable(rows, selected, onSelect) {
  if (!rows.length) return null;
  const cols = ["task", "agent", "model", "status", "latency", "tokens in/out", "cost", "retries", "cache", "attempts", "error"];
  return h("table", { class: "tasks", "data-testid": "tasks" },
    h("thead", {}, h("tr", {}, cols.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {
      class: r.id === selected ? "selected" : "", "data-task": r.id, onclick: () => onSelect(r.id),
    },
    h("td", {}, h("code", {}, r.id), r.inPlan ? null : h("span", { class: "muted", title: "from an earlier plan version" }, " (earlier plan)")),
    h("td", {}, r.agent, r.plannedAgent && r.plannedAgent !== r.agent ? h("span", { class: "muted" }, ` (planned ${r.plannedAgent})`) : null),
    h("td", {}, r.model || "—"),
    h("td", {}, badge(r.status)),
    h("td", { class: "num" }, fmtSeconds(r.latency)),
    h("td", { class: "num" }, `${fmtInt(r.tokensIn)} / ${fmtInt(r.tokensOut)}`),
    h("td", { class: "num" }, fmtCost(r.cost)),
    h("td", { class: "num" }, String(r.retries)),
    h("td", {}, r.cacheHit ? "hit" : "—"),
    h("td", { class: "num" }, String(r.attempts || 0)),
    h("td", { class: "error" }, r.error ? r.error.slice(0, 120) : "")))));
}

export function taskDetail(row) {
  if (!row) return h("p", { class: "muted" }, "Select a task in the graph or the table.");
  return h("div", { class: "task-detail", "data-testid": "task-detail", "data-task": row.id },
    h("h3", {}, `${row.id} · ${row.agent}`, " ", badge(row.status)),
    h("p", {}, h("b", {}, "Instruction: "), row.instruction),
    row.criteria ? h("p", {}, h("b", {}, "Acceptance: "), row.criteria) : null,
    row.dependsOn.length ? h("p", {}, h("b", {}, "Depends on: "), row.dependsOn.join(", ")) : null,
    h("p", { class: "muted" },
      `model ${row.model || "—"} · ${fmtSeconds(row.latency)} · ${fmtInt(row.tokensIn)} in / ${fmtInt(row.tokensOut)} out · ` +
      `${fmtCost(row.cost)} · ${row.calls} model calls · ${row.retries} retries · cache ${row.cacheHit ? "hit" : "miss"} · attempt ${row.attempts || 0}`),
    row.error ? h("p", { class: "error" }, h("b", {}, "Error: "), row.error) : null,
    row.failedAgents.length ? h("p", {}, h("b", {}, "Failed agents: "), row.failedAgents.join(", ")) : null,
    row.history.length ? h("div", {}, h("b", {}, "Escalation and verification history"),
      h("ol", { class: "history-steps", "data-testid": "task-history" }, row.history.map((s) => h("li", {}, s)))) : null,
    row.output ? h("div", {}, h("b", {}, "Output"), h("pre", { class: "output" }, row.output)) : null,
    row.citations.length ? h("div", {}, h("b", {}, "Citations"), h("ul", {}, row.citations.map((c) => h("li", {}, h("code", {}, c))))) : null,
    row.artifacts.length ? h("div", {}, h("b", {}, "Artifacts"), h("ul", {}, row.artifacts.map((c) => h("li", {}, h("code", {}, c))))) : null);
}

// -- the answer, plan versions ---------------------------------------------------------------

export function answerView(values, rows, onSelect) {
  if (!values.answer) return h("p", { class: "muted" }, "No answer yet.");
  const parts = attributions(values, rows);
  const byId = new Map(rows.map((r) => [r.id, r]));
  return h("div", { class: "answer", "data-testid": "answer" },
    h("pre", { class: "output" }, values.answer),
    parts.length ? h("div", { class: "attributions", "data-testid": "attributions" },
      h("b", {}, "Attributions"),
      h("ul", {}, parts.map((p) => h("li", {},
        p.tasks.map((t) => h("button", { class: "link", onclick: () => onSelect(t) },
          `${t}${byId.has(t) ? ` (${byId.get(t).agent})` : ""}`)),
        " ", h("span", { class: "muted" }, p.text.length > 240 ? `${p.text.slice(0, 240)}…` : p.text)))))
      : h("p", { class: "muted" }, "The answer names no task ids; see each task's output."));
}

export function planVersionsView(versions) {
  if (!versions || !versions.length) return h("p", { class: "muted" }, "No plan versions yet.");
  return h("ol", { class: "plan-versions", "data-testid": "plan-versions" }, versions.map((v, i) => {
    const prev = i ? new Set(versions[i - 1].tasks.map((t) => t.id)) : new Set();
    const now = new Set(v.tasks.map((t) => t.id));
    const added = i ? [...now].filter((x) => !prev.has(x)) : [];
    const removed = i ? [...prev].filter((x) => !now.has(x)) : [];
    return h("li", {},
      h("details", {},
        h("summary", {}, `v${v.version}: ${v.tasks.length} tasks — ${v.reason}`,
          added.length ? h("span", { class: "added" }, ` +${added.join(", +")}`) : null,
          removed.length ? h("span", { class: "removed" }, ` −${removed.join(", −")}`) : null),
        h("ul", {}, v.tasks.map((t) => h("li", {}, h("code", {}, t.id), ` ${t.agent}: ${t.instruction}`,
          t.depends_on && t.depends_on.length ? h("span", { class: "muted" }, ` ← ${t.depends_on.join(", ")}`) : null)))));
  }));
}

// -- interrupts -----------------------------------------------------------------------------

// One card per pending interrupt; answering it calls onResume(interruptId, resumeValue).
export function interruptCard(intr, onResume) {
  const it = normalizeInterrupt(intr);
  const card = h("div", { class: `interrupt k-${it.kind}`, "data-testid": "interrupt", "data-kind": it.kind, "data-interrupt": it.id });
  const status = h("p", { class: "interrupt-status" });
  const send = async (value, button) => {
    card.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    status.textContent = `sending ${button || "answer"}…`;
    try {
      await onResume(it.id, value);
    } catch (err) {
      status.textContent = String(err.message || err);
      card.querySelectorAll("button").forEach((b) => { b.disabled = false; });
    }
  };
  const body = ({
    hitl: () => hitlBody(it, send),
    plan_review: () => planBody(it, send),
    tool_approval: () => toolBody(it, send),
    task_failure: () => failureBody(it, send),
    answer_review: () => answerBody(it, send),
  }[it.kind] || (() => rawBody(it, send)))();
  card.append(...[].concat(body).filter(Boolean), status);
  return card;
}

function jsonArea(value, rows = 6, testid = "edit-json") {
  return h("textarea", { class: "json", rows, spellcheck: "false", "data-testid": testid, value: pretty(value) });
}

function parseJson(area, status) {
  try {
    return JSON.parse(area.value);
  } catch (err) {
    throw new Error(`not valid JSON: ${err.message}`);
  }
}

function decisionButton(label, decision, onClick) {
  return h("button", { class: `decide d-${decision}`, "data-decision": decision, onclick: onClick }, label);
}

const HITL_TITLES = {
  plan_review: "Plan review",
  tool_approval: "Tool action needs approval",
  answer_review: "Final answer review",
  task_failure: "A task failed",
};

function hitlBody(it, send) {
  const chosen = new Array(it.actions.length).fill(null);
  const title = HITL_TITLES[it.value.type] || (it.actions.length === 1 ? "Review this action" : `Review ${it.actions.length} actions`);
  const out = [h("h4", {}, title)];
  it.actions.forEach((action, i) => {
    const args = jsonArea(action.args, 5);
    const note = h("input", { type: "text", placeholder: "why (for reject)", "data-testid": "reject-message" });
    const mark = h("span", { class: "chosen muted" });
    const decide = (type) => () => {
      try {
        chosen[i] = hitlDecision(type, action, { args: type === "edit" ? parseJson(args) : undefined, message: note.value.trim() });
      } catch (err) {
        mark.textContent = err.message;
        return;
      }
      mark.textContent = `→ ${type}`;
      if (chosen.every(Boolean)) send(hitlResume(chosen), type);
    };
    out.push(h("div", { class: "action", "data-action": action.name },
      h("p", {}, h("b", { "data-testid": "action-name" }, action.name),
        action.description && !action.description.includes("\n") ? ` — ${action.description}` : ""),
      action.description.includes("\n") ? h("pre", { class: "description", "data-testid": "action-description" }, action.description) : null,
      action.allowed.includes("edit") ? args : h("pre", { class: "args", "data-testid": "action-args" }, pretty(action.args)),
      h("div", { class: "buttons" },
        action.allowed.map((type) => decisionButton(type === "edit" ? "Edit & approve" : type[0].toUpperCase() + type.slice(1), type, decide(type))),
        action.allowed.includes("reject") ? note : null, mark)));
  });
  return out;
}

function planBody(it, send) {
  const v = it.value;
  const area = jsonArea(v.tasks || [], Math.min(18, 3 + (v.tasks || []).length * 6), "plan-json");
  const feedback = h("input", { type: "text", placeholder: "feedback for the planner (reject)", "data-testid": "reject-message" });
  const out = h("p", { class: "error" });
  return [
    h("h4", {}, `Plan review (version ${v.version ?? "?"}): ${(v.tasks || []).length} tasks`),
    v.error ? h("p", { class: "error" }, v.error) : null,
    h("ol", { class: "plan-list" }, (v.tasks || []).map((t) => h("li", {}, h("code", {}, t.id), ` ${t.agent}: ${t.instruction}`,
      t.depends_on && t.depends_on.length ? h("span", { class: "muted" }, ` ← ${t.depends_on.join(", ")}`) : null))),
    h("details", {}, h("summary", {}, "Edit the tasks (JSON)"), area),
    h("div", { class: "buttons" },
      decisionButton("Approve plan", "approve", () => send(legacyResume("plan_review", "approve"), "approve")),
      decisionButton("Save edited plan", "edit", () => {
        try {
          send(legacyResume("plan_review", "edit", { tasks: parseJson(area) }), "edit");
        } catch (err) {
          out.textContent = err.message;
        }
      }),
      decisionButton("Reject", "reject", () => send(legacyResume("plan_review", "reject", { text: feedback.value.trim() }), "reject")),
      feedback),
    out,
  ];
}

function toolBody(it, send) {
  const v = it.value;
  const feedback = h("input", { type: "text", placeholder: "why (optional)", "data-testid": "reject-message" });
  return [
    h("h4", {}, "Tool action needs approval"),
    h("p", {}, h("b", { "data-testid": "action-name" }, v.tool), ` requested by ${v.agent || "?"} for task `, h("code", {}, v.task_id || "?")),
    h("pre", { class: "args", "data-testid": "action-args" }, pretty(v.args || {})),
    h("div", { class: "buttons" },
      decisionButton("Approve", "approve", () => send(legacyResume("tool_approval", "approve", { text: feedback.value.trim() }), "approve")),
      decisionButton("Reject", "reject", () => send(legacyResume("tool_approval", "reject", { text: feedback.value.trim() }), "reject")),
      feedback),
  ];
}

function failureBody(it, send) {
  const v = it.value;
  const task = v.task || {};
  const instruction = h("textarea", { rows: 3, "data-testid": "instruction", value: task.instruction || "" });
  const actions = v.actions || ["retry", "edit", "skip", "abort"];
  return [
    h("h4", {}, "A task failed"),
    h("p", {}, h("code", {}, task.id || "?"), ` (${task.agent || "?"}): `, h("span", { class: "error" }, v.error || "")),
    (v.history || []).length ? h("ol", { class: "history-steps" }, v.history.map((s) => h("li", {}, s))) : null,
    h("label", {}, "Instruction (for edit)", instruction),
    h("div", { class: "buttons" }, actions.map((a) => decisionButton(a[0].toUpperCase() + a.slice(1), a,
      () => send(legacyResume("task_failure", a, { text: a === "edit" ? instruction.value : "" }), a)))),
  ];
}

function answerBody(it, send) {
  const area = h("textarea", { rows: 8, "data-testid": "answer-edit", value: it.value.answer || "" });
  const feedback = h("input", { type: "text", placeholder: "what to change (reject)", "data-testid": "reject-message" });
  return [
    h("h4", {}, "Final answer review"),
    area,
    h("div", { class: "buttons" },
      decisionButton("Approve", "approve", () => send(legacyResume("answer_review", "approve"), "approve")),
      decisionButton("Save edit", "edit", () => send({ action: "edit", answer: area.value, feedback: "" }, "edit")),
      decisionButton("Reject", "reject", () => send({ action: "reject", answer: "", feedback: feedback.value.trim() }, "reject")),
      feedback),
  ];
}

function rawBody(it, send) {
  const area = jsonArea({}, 4, "raw-resume");
  const out = h("p", { class: "error" });
  return [
    h("h4", {}, "Pending interrupt"),
    h("pre", { class: "args", "data-testid": "raw-value" }, pretty(it.value)),
    h("label", {}, "Resume value (JSON)", area),
    h("div", { class: "buttons" }, decisionButton("Resume", "resume", () => {
      try {
        send(parseJson(area), "resume");
      } catch (err) {
        out.textContent = err.message;
      }
    })),
    out,
  ];
}

// -- history --------------------------------------------------------------------------------

export function historyTable(states, currentId, onFork) {
  if (!states.length) return h("p", { class: "muted" }, "No checkpoints.");
  return h("table", { class: "history", "data-testid": "history" },
    h("thead", {}, h("tr", {}, ["step", "source", "next", "status", "tasks done", "checkpoint", "created", ""].map((c) => h("th", {}, c)))),
    h("tbody", {}, states.map((s) => {
      const id = s.checkpoint && s.checkpoint.checkpoint_id;
      const values = s.values || {};
      const done = Object.values(values.results || {}).filter((r) => r.status === "done").length;
      const meta = s.metadata || {};
      return h("tr", { "data-checkpoint": id, class: id === currentId ? "selected" : "" },
        h("td", { class: "num" }, String(meta.step ?? "")),
        h("td", {}, meta.source || ""),
        h("td", {}, (s.next || []).join(", ") || "—"),
        h("td", {}, values.status || ""),
        h("td", { class: "num" }, String(done)),
        h("td", {}, h("code", { title: id }, (id || "").slice(-12))),
        h("td", {}, (s.created_at || "").replace("T", " ").slice(0, 19)),
        h("td", {}, (s.next || []).length ? h("button", { class: "fork", "data-testid": "fork", onclick: () => onFork(s) }, "Fork & run from here") : null));
    })));
}

// -- why: the failure diagnosis ------------------------------------------------------------

// The run's failure mode and each failed or escalated task's, with evidence and a suggestion
// (`why` is POST /dashboard/diagnosis's answer; null while it loads; {error} if it failed).
export function whyView(why, onSelect) {
  if (!why) return h("p", { class: "muted" }, "…");
  if (why.error) return h("p", { class: "muted" }, `No diagnosis: ${why.error}`);
  const d = why.diagnosis;
  const items = d ? [d.run, ...(d.tasks || [])].filter(Boolean) : [];
  if (!items.length) return h("p", { class: "muted", "data-testid": "why-none" }, "No failures diagnosed.");
  return h("ul", { class: "why", "data-testid": "why" }, items.map((x) =>
    h("li", { class: `why-${x.scope}`, "data-mode": x.mode },
      x.scope === "run"
        ? h("b", {}, "run")
        : h("a", { href: "#", onclick: (e) => { e.preventDefault(); onSelect(x.task_id); } }, `task ${x.task_id}`),
      x.recovered ? h("span", { class: "muted" }, " (recovered)") : null, ": ",
      h("span", { class: "badge s-failed mode" }, x.mode), " ",
      h("span", { class: "muted" }, x.category + (x.mast ? ` · ${x.mast}` : "")),
      h("div", { class: "evidence" }, x.evidence, " ", h("code", { class: "muted" }, x.source)),
      h("div", { class: "suggestion" }, "→ ", x.suggestion))));
}
