// Drives the dashboard in Debian's chromium (playwright-core, no downloaded browser) through
// the customer-service scenario; tests/test_dashboard.py starts the server and checks what
// this prints. Usage: node driver.mjs '<json: {url, outDir, goal, chromium, userDataDir}>'
// Prints one JSON object on stdout: {ok, error?, steps, screenshots, samples, offsite, requests}.
import { chromium } from "playwright-core";
import path from "node:path";

const args = JSON.parse(process.argv[2]);
const STEP_TIMEOUT = args.stepTimeoutMs || 30000;
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--disable-dev-shm-usage",
];

const report = { ok: false, steps: [], screenshots: [], samples: [], offsite: [], requests: [], console: [] };

function loopback(url) {
  const u = new URL(url);
  if (["data:", "blob:", "about:"].includes(u.protocol)) return true;
  return ["127.0.0.1", "localhost", "[::1]", "::1"].includes(u.hostname);
}

async function shot(page, name) {
  const file = path.join(args.outDir, `${String(report.screenshots.length + 1).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  report.screenshots.push(file);
}

function step(name, detail = {}) {
  report.steps.push({ name, t: Date.now() / 1000, ...detail });
}

// What the page shows right now: each DAG node's status and the timeline's bars.
async function sample(page) {
  const s = await page.evaluate(() => ({
    nodes: Object.fromEntries([...document.querySelectorAll("svg.dag .node")].map((n) => [n.dataset.task, n.dataset.status])),
    bars: Object.fromEntries([...document.querySelectorAll(".gantt .bar")].map((b) => [b.parentElement.parentElement.dataset.task, b.dataset.status])),
    runStatus: document.querySelector(".run-status")?.dataset.status || null,
    threadStatus: document.querySelector(".thread-status")?.dataset.status || null,
    answer: Boolean(document.querySelector("[data-testid=answer]")),
    head: document.querySelector("[data-testid=history] tbody tr td:nth-child(3)")?.textContent || null,
    waiting: document.querySelector("#interrupts")?.textContent || "",
    forks: [...document.querySelectorAll("[data-testid=history] tbody tr td:nth-child(2)")].filter((td) => td.textContent === "fork").length,
    interrupts: [...document.querySelectorAll("[data-testid=interrupt]")].map((i) => i.dataset.kind),
  }));
  const last = report.samples[report.samples.length - 1];
  if (!last || JSON.stringify(last.view) !== JSON.stringify(s)) report.samples.push({ t: Date.now() / 1000, view: s });
  return s;
}

// Poll the page (recording every change) until ready(view) holds.
// Scroll a part of the page into view for a screenshot; the page re-renders as it polls, so
// an element can be replaced under the action: find it again and retry.
async function scrollTo(page, selector) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await page.locator(selector).first().scrollIntoViewIfNeeded({ timeout: 5000 });
    } catch (err) {
      if (attempt >= 5 || !String(err).includes("not attached")) throw err;
      await page.waitForTimeout(100);
    }
  }
}

async function until(page, what, ready) {
  const deadline = Date.now() + STEP_TIMEOUT;
  for (;;) {
    const view = await sample(page);
    if (ready(view)) return view;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; the page shows ${JSON.stringify(view)}`);
    await page.waitForTimeout(100);
  }
}

// The one pending card that holds this interrupt; click its decision.
async function decide(page, kinds, decision) {
  const card = page.locator("[data-testid=interrupt]").filter({ has: page.locator(`button[data-decision=${decision}]`) }).first();
  const kind = await card.getAttribute("data-kind");
  if (!kinds.includes(kind)) throw new Error(`expected a ${kinds.join("/")} interrupt, found ${kind}`);
  await card.locator(`button[data-decision=${decision}]`).first().click();
  return card;
}

async function main() {
  const context = await chromium.launchPersistentContext(args.userDataDir, {
    executablePath: args.chromium,
    headless: true,
    args: FLAGS,
    viewport: { width: 1400, height: 1000 },
    serviceWorkers: "block",
  });
  try {
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (loopback(url)) return route.continue();
      report.offsite.push(url);
      return route.abort("blockedbyclient");
    });
    context.on("request", (r) => report.requests.push(`${r.method()} ${r.url()}`));
    const page = context.pages()[0] || (await context.newPage());
    page.on("console", (m) => { if (["error", "warning"].includes(m.type())) report.console.push(`${m.type()}: ${m.text()}`); });
    page.on("pageerror", (e) => report.console.push(`pageerror: ${e.message}`));

    // The address make serve prints: the token in the fragment (never sent to the server).
    await page.goto(args.token ? `${args.url}/dashboard/#token=${args.token}` : `${args.url}/dashboard`, { waitUntil: "load" });
    await page.locator("#conn.ok").waitFor({ timeout: STEP_TIMEOUT });
    step("opened", { address: page.url() });
    await shot(page, "opened");

    // Start a run on the test model, pausing for the plan and for high-risk tools.
    await page.fill("#goal", args.goal);
    await page.fill("#model", "test");
    await page.check("#review-plan");
    await page.check("#review-tools");
    await page.click("#start");
    step("started");
    const planned = await until(page, "the plan review", (v) => v.interrupts.length === 1 && Object.keys(v.nodes).length > 0);
    step("plan_review", { nodes: planned.nodes, kind: planned.interrupts[0] });
    const planText = await page.locator("[data-testid=interrupt]").first().innerText();
    step("plan_card", { text: planText.slice(0, 2000) });
    await shot(page, "plan-review");

    // Approve the plan: the DAG and the timeline must change while tasks run.
    await decide(page, ["plan_review", "hitl"], "approve");
    step("plan_approved");
    const running = await until(page, "a running task", (v) => Object.values(v.nodes).includes("running") && Object.keys(v.bars).length > 0);
    step("running", { nodes: running.nodes, bars: running.bars });
    await shot(page, "running");

    // The refund pauses for approval: the card shows the tool and its arguments.
    await until(page, "the refund approval", (v) => v.interrupts.length === 1 && v.interrupts[0] !== "plan_review");
    const card = page.locator("[data-testid=interrupt]").first();
    const tool = await card.locator("[data-testid=action-name]").first().innerText();
    const toolArgs = await card.locator("[data-testid=action-args], textarea.json").first().evaluate((el) => el.value || el.textContent);
    step("tool_approval", { tool, args: toolArgs, nodes: (await sample(page)).nodes });
    await shot(page, "refund-approval");
    await decide(page, ["tool_approval", "hitl"], "approve");
    step("refund_approved");

    const done = await until(page, "the completed run", (v) => v.runStatus === "completed" && v.threadStatus === "idle"
      && v.answer && v.head === "—" && v.interrupts.length === 0 && Object.values(v.nodes).every((s) => s === "done"));
    step("completed", { nodes: done.nodes, bars: done.bars });
    await page.locator("[data-testid=answer]").waitFor({ timeout: STEP_TIMEOUT });
    const answer = await page.locator("[data-testid=answer]").innerText();
    const attributions = await page.locator("[data-testid=attributions] li").count();
    const metrics = await page.locator("[data-testid=metrics]").innerText();
    step("answer", { answer: answer.slice(0, 2000), attributions, metrics });
    await shot(page, "completed");

    // One task's detail: agent, model, usage, history, output.
    await page.locator("svg.dag .node[data-task=refund]").click();
    const detail = await page.locator("[data-testid=task-detail]").innerText();
    step("task_detail", { text: detail.slice(0, 2000) });
    await scrollTo(page, "[data-testid=task-detail]");
    await shot(page, "task-detail");

    // History: every checkpoint, newest first, each with a fork button where a step is next.
    await page.locator("[data-testid=history] tbody tr").first().waitFor({ timeout: STEP_TIMEOUT });
    const checkpoints = await page.locator("[data-testid=history] tbody tr").count();
    const forkable = await page.locator("[data-testid=history] [data-testid=fork]").count();
    const threads = await page.locator("[data-testid=threads] tbody tr").count();
    step("history", { checkpoints, forkable, threads });
    await scrollTo(page, "[data-testid=history]");
    await shot(page, "history");

    // Fork from the checkpoint just after the plan was approved: a new branch runs the tasks
    // again; the old branch stays in the history.
    const before = checkpoints;
    await page.locator("[data-testid=history] tbody tr", { has: page.locator("td:nth-child(3)", { hasText: /^dispatch$/ }) })
      .last().locator("[data-testid=fork]").click();
    step("forked");
    await until(page, "the fork in the history", (v) => v.forks === 1);
    await until(page, "the forked run to finish", (v) => v.runStatus === "completed" && v.threadStatus === "idle"
      && v.answer && v.head === "—" && v.interrupts.length === 0);
    await page.waitForFunction((n) => document.querySelectorAll("[data-testid=history] tbody tr").length > n + 3, before, { timeout: STEP_TIMEOUT });
    const sources = await page.locator("[data-testid=history] tbody tr td:nth-child(2)").allInnerTexts();
    step("fork_done", { sources, nodes: (await sample(page)).nodes });
    await scrollTo(page, "[data-testid=history]");
    await shot(page, "forked");

    // Interrupts in LangChain's HITL shape (and any other shape) render from the value alone:
    // each card answers its own interrupt id with the decision the user clicked.
    await page.evaluate(async () => {
      const { interruptCard } = await import("./js/views.js");
      window.__resumes = [];
      const onResume = async (id, value) => { window.__resumes.push({ id, value }); };
      const box = document.createElement("section");
      box.id = "hitl-fixture";
      box.className = "panel";
      const hitl = (id, allowed) => ({
        id,
        value: {
          action_requests: [{ name: "issue_refund", args: { order_id: "O1002", amount: 10 }, description: "Refund an order" }],
          review_configs: [{ action_name: "issue_refund", allowed_decisions: allowed }],
        },
      });
      box.append(
        interruptCard(hitl("hitl-edit", ["approve", "edit", "reject"]), onResume),
        interruptCard(hitl("hitl-reject", ["approve", "reject"]), onResume),
        interruptCard({ id: "raw-1", value: "Pick a colour" }, onResume),
      );
      document.querySelector("main").prepend(box);
    });
    const fixture = page.locator("#hitl-fixture");
    const editCard = fixture.locator("[data-interrupt=hitl-edit]");
    await editCard.locator("textarea.json").fill('{"order_id": "O1002", "amount": 5}');
    await editCard.locator("button[data-decision=edit]").click();
    const rejectCard = fixture.locator("[data-interrupt=hitl-reject]");
    const rejectButtons = await rejectCard.locator("button.decide").allInnerTexts();
    await rejectCard.locator("[data-testid=reject-message]").fill("too much");
    await rejectCard.locator("button[data-decision=reject]").click();
    const rawCard = fixture.locator("[data-interrupt=raw-1]");
    const rawShown = await rawCard.locator("[data-testid=raw-value]").innerText();
    await rawCard.locator("[data-testid=raw-resume]").fill('"blue"');
    await rawCard.locator("button[data-decision=resume]").click();
    await page.waitForFunction(() => window.__resumes.length === 3, null, { timeout: STEP_TIMEOUT });
    const resumes = await page.evaluate(() => window.__resumes);
    step("hitl", { resumes, rejectButtons, rawShown, kinds: await fixture.locator("[data-testid=interrupt]").evaluateAll((els) => els.map((e) => e.dataset.kind)) });
    await fixture.scrollIntoViewIfNeeded();
    const cards = path.join(args.outDir, `${String(report.screenshots.length + 1).padStart(2, "0")}-hitl-cards.png`);
    await fixture.screenshot({ path: cards });
    report.screenshots.push(cards);
    report.ok = true;
  } finally {
    await context.close();
  }
}

main()
  .catch((err) => {
    report.error = String(err && err.stack ? err.stack : err);
  })
  .finally(() => {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  });
