// Run a goal on the orchestrator's LangGraph server with the JavaScript SDK (@langchain/langgraph-sdk).
//
//   npm install @langchain/langgraph-sdk
//   node examples/sdk_client.mjs --url http://127.0.0.1:8123 [--goal "..."] [--model test]
//
// The server answers only requests that carry its token: LANGGRAPH_API_KEY (the SDK's own
// variable), or — run from the repository the server runs in — .orchestrator/server-token,
// the file `make serve` made. The script creates a thread, streams the run (progress to
// stderr), approves every pause, and prints the answer. Exit code 0 when the run completed.
import { readFileSync, existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { Client } from "@langchain/langgraph-sdk";

const ASSISTANT = "orchestrator";
const APPROVE = { decisions: [{ type: "approve" }] };
const TOKEN_FILE = ".orchestrator/server-token";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    goal: { type: "string", default: "When should a retrieval system combine full-text and vector search?" },
    model: { type: "string" },
  },
});
if (!args.url) {
  console.error("usage: node examples/sdk_client.mjs --url http://127.0.0.1:8123 [--goal ...] [--model ...]");
  process.exit(2);
}
const token = process.env.LANGGRAPH_API_KEY || (existsSync(TOKEN_FILE) ? readFileSync(TOKEN_FILE, "utf8").trim() : undefined);
const client = new Client({ apiUrl: args.url, defaultHeaders: token ? { Authorization: `Bearer ${token}` } : {} });

const thread = await client.threads.create();
console.error(`thread ${thread.thread_id}`);
// Per-run settings go once, as the run's context; the thread keeps them for its resumes.
let context = { review: { plan: true } };
if (args.model) context.model = args.model;
let payload = { input: { goal: args.goal }, context };
let state;
for (;;) {
  for await (const part of client.runs.stream(thread.thread_id, ASSISTANT, { ...payload, streamMode: ["updates", "custom"] })) {
    if (part.event === "custom") console.error(`  · ${part.data.event}`);
    if (part.event === "error") {
      console.error(`run failed: ${JSON.stringify(part.data)}`);
      process.exit(1);
    }
  }
  state = await client.threads.getState(thread.thread_id);
  if (!state.interrupts.length) break;
  const resume = {};
  for (const pause of state.interrupts) {
    console.error(`paused: ${pause.value.type} → approving ${pause.value.action_requests[0].name}`);
    resume[pause.id] = APPROVE;
  }
  payload = { command: { resume } };
}
console.log(state.values.answer);
console.error(`status: ${state.values.status}`);
process.exit(state.values.status === "completed" ? 0 : 1);
