// One orchestrator run driven by the JavaScript SDK (@langchain/langgraph-sdk), as a JS client
// would: create a thread, stream a run, answer the plan review (edited to a support task) and
// the tool approvals it leads to (HITL decisions), read the history, fork and run the fork.
// Prints one JSON summary line for tests/test_js_sdk.py to check.
import { Client } from "@langchain/langgraph-sdk";

// The server's token (LANGGRAPH_API_KEY; the SDK sends it as x-api-key); a server without auth ignores it.
const client = new Client({ apiUrl: process.env.ORCH_URL, apiKey: process.env.LANGGRAPH_API_KEY });
const review = { plan: true, high_risk_tools: true, final_answer: false, failures: false };
const limits = { max_concurrency: 6 };
const goal = "Customer C001 asks for a refund of order O1001 because it arrived damaged.";
const summary = { events: [], kinds: [], tool_requests: [] };

async function runStream(threadId, payload) {
  for await (const part of client.runs.stream(threadId, "orchestrator", {
    ...payload, streamMode: ["updates", "custom"],
  })) {
    if (part.event === "error") throw new Error(JSON.stringify(part.data));
    if (part.event === "custom") summary.events.push(part.data.event);
  }
  return client.threads.getState(threadId);
}

const thread = await client.threads.create({ metadata: { client: "js-sdk" } });
const tid = thread.thread_id;
let state = await runStream(tid, { input: { goal }, context: { model: "test", review, limits } });

const plan = state.interrupts[0];
summary.kinds.push(plan.value.type);
summary.plan_action = plan.value.action_requests[0].name;
// Several support tasks that may act (the test model picks each step's tool from its prompt).
const tasks = [1, 2, 3, 4, 5, 6].map((i) => ({ id: `t${i}`, agent: "support",
  instruction: `Issue a refund for order O-200${i} and update ticket T-20${i}.` }));
state = await runStream(tid, { command: { resume: { [plan.id]: {
  decisions: [{ type: "edit", edited_action: { name: "plan", args: { tasks } } }] } } } });

for (let i = 0; i < 12 && state.interrupts.length; i++) {
  const resume = {};
  for (const pause of state.interrupts) {
    summary.kinds.push(pause.value.type);
    summary.tool_requests.push(pause.value.action_requests[0]);
    resume[pause.id] = { decisions: [{ type: "approve" }] };
  }
  state = await runStream(tid, { command: { resume } });  // no context: the thread remembers
}
summary.status = state.values.status;
summary.answer = state.values.answer;
summary.last_message = state.values.messages.at(-1);
summary.tasks = state.values.tasks.map((t) => t.instruction);

const history = await client.threads.getHistory(tid, { limit: 200 });
summary.history_length = history.length;
const approved = history.filter((h) => h.next.length === 1 && h.next[0] === "dispatch").at(-1);
summary.fork_from = approved.checkpoint.checkpoint_id;
const copy = await client.threads.updateState(tid, {
  values: null, checkpointId: approved.checkpoint.checkpoint_id, asNode: "__copy__" });
const forkId = copy.checkpoint.checkpoint_id;
const branch = await client.threads.getState(tid, forkId);
summary.fork_source = branch.metadata.source;
summary.fork_next = branch.next;
console.log(JSON.stringify(summary));
