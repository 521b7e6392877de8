// A page of another origin (another loopback port) tries the API of the orchestrator's server
// in Debian's chromium (playwright-core): read the threads, read a paused thread, answer its
// pause with every body a page can send without a preflight. Then the dashboard, opened at
// the address `make serve` prints (token in the fragment), shows the same thread.
// Usage: node cross_origin.mjs '<json: {attacker, target, threadId, interruptId, token, chromium, userDataDir}>'
// Prints one JSON object: {attempts: {name: outcome}, dashboard: {conn, threads, address}, requests}.
import { chromium } from "playwright-core";

const args = JSON.parse(process.argv[2]);
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"];
const out = { attempts: {}, dashboard: {}, requests: [] };

const context = await chromium.launchPersistentContext(args.userDataDir, {
  executablePath: args.chromium, headless: true, args: FLAGS,
});
try {
  context.on("request", (r) => out.requests.push(`${r.method()} ${r.url()}`));
  const page = context.pages()[0] || (await context.newPage());
  await page.goto(args.attacker, { waitUntil: "load" });
  // What the page's own script can do: each attempt reports what the page could see.
  out.attempts = await page.evaluate(async ({ target, threadId, interruptId }) => {
    const resume = JSON.stringify({ assistant_id: "orchestrator",
      command: { resume: { [interruptId]: { decisions: [{ type: "approve" }] } } } });
    const tries = {
      search_json: () => fetch(`${target}/threads/search`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }),
      search_plain: () => fetch(`${target}/threads/search`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "{}" }),
      state: () => fetch(`${target}/threads/${threadId}/state`),
      resume_plain: () => fetch(`${target}/threads/${threadId}/runs/wait`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: resume }),
      resume_plain_no_cors: () => fetch(`${target}/threads/${threadId}/runs/wait`, { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: resume }),
      resume_form_no_cors: () => fetch(`${target}/threads/${threadId}/runs/wait`, { method: "POST", mode: "no-cors", body: new URLSearchParams({ [resume]: "" }) }),
      resume_untyped_no_cors: () => fetch(`${target}/threads/${threadId}/runs/wait`, { method: "POST", mode: "no-cors", body: new Blob([resume]) }),
    };
    const seen = {};
    for (const [name, attempt] of Object.entries(tries)) {
      try {
        const response = await attempt();
        const text = await response.text();
        seen[name] = { type: response.type, status: response.status, readable: text.length > 0, text: text.slice(0, 200) };
      } catch (err) {
        seen[name] = { error: String(err) };
      }
    }
    return seen;
  }, { target: args.target, threadId: args.threadId, interruptId: args.interruptId });

  // The dashboard, same origin, with the token from the printed address.
  await page.goto(`${args.target}/dashboard/#token=${args.token}`, { waitUntil: "load" });
  await page.locator("#conn.ok").waitFor({ timeout: 20000 });
  const row = page.locator(`[data-thread="${args.threadId}"]`);
  await row.waitFor({ timeout: 20000 });
  out.dashboard = {
    conn: await page.locator("#conn").textContent(),
    row: await row.innerText(),
    address: page.url(),
    stored: await page.evaluate(() => Object.keys(sessionStorage)),
  };
} catch (err) {
  out.error = String(err && err.stack ? err.stack : err);
} finally {
  await context.close();
}
console.log(JSON.stringify(out));
