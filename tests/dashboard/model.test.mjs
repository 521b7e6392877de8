// The page's logic without a browser: node --test tests/dashboard/model.test.mjs
import assert from "node:assert/strict";
import test from "node:test";
import { adoptToken, readEvents } from "../../dashboard/js/api.js";
import {
  applyEvent, attributions, dagLayers, ganttBars, hitlDecision, hitlResume, legacyResume,
  normalizeInterrupt, runOverrides, taskRows, threadSummary,
} from "../../dashboard/js/model.js";

const values = {
  goal: "g",
  status: "running",
  started_at: 100,
  tasks: [
    { id: "a", agent: "researcher", instruction: "find", depends_on: [] },
    { id: "b", agent: "coder", instruction: "code", depends_on: [] },
    { id: "c", agent: "writer", instruction: "write", depends_on: ["a", "b"] },
  ],
  results: {
    a: { task: { id: "a", agent: "analyst" }, status: "done", attempts: 2, history: ["escalation: reassigned to analyst"],
      metrics: { model: "m", started_at: 101, ended_at: 103, latency_s: 2, tokens_in: 10, tokens_out: 5, cost_usd: 0.5, retries: 1, cache_hit: false, model_calls: 2 } },
    b: { task: { id: "b", agent: "coder" }, status: "running", attempts: 1 },
    old: { task: { id: "old", agent: "writer" }, status: "failed", error: "boom" },
  },
  usage: [{ tokens_in: 3, tokens_out: 1, cost_usd: 0.25, model_calls: 1 }],
};

test("task rows: plan order, actual agent, metrics, then earlier plans' entries", () => {
  const rows = taskRows(values, {});
  assert.deepEqual(rows.map((r) => [r.id, r.status, r.inPlan]), [["a", "done", true], ["b", "running", true], ["c", "pending", true], ["old", "failed", false]]);
  assert.equal(rows[0].agent, "analyst");
  assert.equal(rows[0].plannedAgent, "researcher");
  assert.deepEqual([rows[0].retries, rows[0].tokensIn, rows[0].cost, rows[0].started, rows[0].ended], [1, 10, 0.5, 101, 103]);
  assert.equal(rows[1].started, null); // running, but no start seen yet
});

test("live events start a running bar and finish it before the state catches up", () => {
  const live = {};
  applyEvent(live, { event: "task_started", task_id: "b", agent: "coder", ts: 104 });
  let b = taskRows(values, live)[1];
  assert.deepEqual([b.status, b.started, b.ended], ["running", 104, null]);
  applyEvent(live, { event: "task_finished", task_id: "b", agent: "coder", status: "failed", ts: 106, error: "x" });
  b = taskRows(values, live)[1];
  assert.deepEqual([b.status, b.started, b.ended], ["failed", 104, 106]);
  const { span, bars } = ganttBars(taskRows(values, live), 200);
  assert.equal(span, 5); // 101 → 106: the first task's start is 0s
  assert.deepEqual(bars.map((x) => [x.id, x.left, x.width]), [["a", 0, 0.4], ["b", 0.6, 0.4]]);
});

test("DAG columns are the longest dependency chain", () => {
  const layers = dagLayers(taskRows(values, {}));
  assert.deepEqual(layers.map((l) => l.map((r) => r.id)), [["a", "b", "old"], ["c"]]);
});

test("threads list line: goal, status, cost, tokens, wall time", () => {
  const s = threadSummary({ thread_id: "t", status: "idle", values: { ...values, status: "completed", finished_at: 110 }, interrupts: {} });
  assert.deepEqual([s.goal, s.runStatus, s.cost, s.tokens, s.wall], ["g", "completed", 0.75, 19, 10]);
});

test("HITL interrupts: one decision per action request, keyed by the interrupt id", () => {
  const it = normalizeInterrupt({ id: "i1", value: {
    action_requests: [{ name: "issue_refund", args: { order_id: "O1" }, description: "refund" }, { name: "update_ticket", args: {} }],
    review_configs: [{ action_name: "update_ticket", allowed_decisions: ["approve", "reject"] }, { action_name: "issue_refund", allowed_decisions: ["approve", "edit", "reject"] }],
  } });
  assert.equal(it.kind, "hitl");
  assert.deepEqual(it.actions.map((a) => [a.name, a.allowed]), [["issue_refund", ["approve", "edit", "reject"]], ["update_ticket", ["approve", "reject"]]]);
  assert.deepEqual(hitlResume([
    hitlDecision("edit", it.actions[0], { args: { order_id: "O2" } }),
    hitlDecision("reject", it.actions[1], { message: "no" }),
  ]), { decisions: [{ type: "edit", edited_action: { name: "issue_refund", args: { order_id: "O2" } } }, { type: "reject", message: "no" }] });
  assert.deepEqual(hitlDecision("approve", it.actions[0]), { type: "approve" });
});

test("the graph's own interrupts and any other shape", () => {
  assert.equal(normalizeInterrupt({ id: "p", value: { type: "plan_review", tasks: [] } }).kind, "plan_review");
  assert.equal(normalizeInterrupt({ id: "r", value: "what now?" }).kind, "raw");
  assert.equal(normalizeInterrupt({ id: "r", value: { type: "mystery" } }).kind, "raw");
  assert.deepEqual(legacyResume("plan_review", "approve"), { action: "approve", feedback: "" });
  assert.deepEqual(legacyResume("plan_review", "edit", { tasks: [1] }), { action: "edit", tasks: [1] });
  assert.deepEqual(legacyResume("tool_approval", "reject", { text: "no" }), { approved: false, feedback: "no" });
  assert.deepEqual(legacyResume("task_failure", "skip"), { action: "skip", instruction: "" });
  assert.throws(() => legacyResume("nope", "approve"));
});

test("attributions: stated ones, else the [task id] markers of the answer", () => {
  const rows = taskRows(values, {});
  const answer = "Point one [a].\n\nPoint two [b][c] and [zz].\n\nNo source.";
  assert.deepEqual(attributions({ answer }, rows), [{ text: "Point one [a].", tasks: ["a"] }, { text: "Point two [b][c] and [zz].", tasks: ["b", "c"] }]);
  assert.deepEqual(attributions({ answer, attributions: [{ text: "x", task_ids: ["a"] }] }, rows), [{ text: "x", tasks: ["a"] }]);
});

test("run overrides: the context the thread stored, else its options", () => {
  assert.deepEqual(runOverrides({ run_settings: { model: "test" }, options: { model: "x" } }), { model: "test" });
  assert.deepEqual(runOverrides({ options: { model: "x" } }), { model: "x" });
  assert.deepEqual(runOverrides(null), {});
});

test("server-sent events: split across chunks, multi-line data, comments", async () => {
  const chunks = ["event: metadata\ndata: {\"run_id\"", ": \"r\"}\n\n: ping\n\nevent: custom\r\ndata: {\"event\":", "\"plan\"}\r\n\r\nevent: end\ndata: null\n\n"];
  const body = new ReadableStream({ start(c) { for (const x of chunks) c.enqueue(new TextEncoder().encode(x)); c.close(); } });
  const seen = [];
  await readEvents(body, (event, data) => seen.push([event, data]));
  assert.deepEqual(seen, [["metadata", { run_id: "r" }], ["custom", { event: "plan" }], ["end", null]]);
});

test("the token moves from the address's fragment to this tab's storage", () => {
  for (const [hash, left] of [["#token=a%2Fb", ""], ["#thread=t1&token=a%2Fb", "#thread=t1"], ["#token=a%2Fb&thread=t1", "#thread=t1"]]) {
    const stored = {};
    let url = null;
    adoptToken({ hash, pathname: "/dashboard/", search: "" }, { setItem: (k, v) => { stored[k] = v; } },
      { replaceState: (_s, _t, u) => { url = u; } });
    assert.deepEqual(Object.values(stored), ["a/b"], hash);
    assert.equal(url, `/dashboard/${left}`, hash);
  }
  let touched = false;
  adoptToken({ hash: "#thread=t1", pathname: "/dashboard/", search: "" }, { setItem: () => { touched = true; } },
    { replaceState: () => { touched = true; } });
  assert.equal(touched, false);
});
