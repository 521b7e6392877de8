// The LangGraph HTTP API of the server that serves this page (same origin, no SDK build step).
// Endpoints: /threads, /threads/search, /threads/{id}/state, /threads/{id}/history,
// /threads/{id}/runs/stream — the same ones langgraph-sdk calls.

export const ASSISTANT = "orchestrator";

// The server's access token. `make serve` prints the page's address with it in the fragment
// (#token=…), which the browser never sends to the server; the page moves it to this tab's
// sessionStorage and takes it out of the address bar at once (no history entry, no bookmark).
const TOKEN_KEY = "orchestrator.token";
const TOKEN_IN_HASH = /(^#|&)token=([^&]*)/;

export function adoptToken(loc = location, storage = sessionStorage, hist = history) {
  const match = TOKEN_IN_HASH.exec(loc.hash);
  if (!match) return;
  if (match[2]) storage.setItem(TOKEN_KEY, decodeURIComponent(match[2]));
  const rest = loc.hash.replace(TOKEN_IN_HASH, "$1").replace(/^#&/, "#").replace(/&$/, "");
  hist.replaceState(null, "", loc.pathname + loc.search + (rest === "#" ? "" : rest));
}

const inPage = typeof window !== "undefined"; // node's tests import this module too

export function hasToken() {
  return inPage && Boolean(sessionStorage.getItem(TOKEN_KEY));
}

function authHeaders() {
  const token = inPage ? sessionStorage.getItem(TOKEN_KEY) : null;
  return token ? { Authorization: `Bearer ${token}` } : {};
}

if (inPage) adoptToken();

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function request(method, path, body) {
  const init = { method, headers: { Accept: "application/json", ...authHeaders() } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const data = text ? safeJson(text) : null;
  if (!response.ok) {
    const detail = data && (data.detail || data.message) ? data.detail || data.message : text;
    throw new ApiError(response.status, `${method} ${path}: ${response.status} ${String(detail).slice(0, 300)}`);
  }
  return data;
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const enc = encodeURIComponent;

export const api = {
  searchThreads: (limit = 50) =>
    request("POST", "/threads/search", { limit, sort_by: "updated_at", sort_order: "desc" }),
  createThread: (metadata) => request("POST", "/threads", { metadata }),
  getThread: (id) => request("GET", `/threads/${enc(id)}`),
  getState: (id) => request("GET", `/threads/${enc(id)}/state`),
  getHistory: (id, limit = 200) => request("POST", `/threads/${enc(id)}/history`, { limit }),
  copyCheckpoint: (id, checkpointId) =>
    request("POST", `/threads/${enc(id)}/state`, { values: null, checkpoint_id: checkpointId, as_node: "__copy__" }),
  listRuns: (id) => request("GET", `/threads/${enc(id)}/runs?limit=20`),
  findAssistant: (graphId) => request("POST", "/assistants/search", { graph_id: graphId, limit: 1 }),
  assistantSchemas: (assistantId) => request("GET", `/assistants/${enc(assistantId)}/schemas`),
  cancelRun: (id, runId) => request("POST", `/threads/${enc(id)}/runs/${enc(runId)}/cancel`, {}),
  // The failure diagnosis of a thread's state values (orchestrator/dashboard.py): the same
  // code as `orchestrator report`; the server reads nothing but what is sent.
  diagnose: (values) => request("POST", "/dashboard/diagnosis", values || {}),
};

// Start a run on a thread and read its server-sent events: onEvent(name, data) per event.
// Resolves when the stream ends; the run goes on if the page goes away (on_disconnect).
export async function streamRun(threadId, body, onEvent, signal) {
  const payload = {
    assistant_id: ASSISTANT,
    stream_mode: ["values", "custom"],
    on_disconnect: "continue",
    ...body,
  };
  const response = await fetch(`/threads/${enc(threadId)}/runs/stream`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream", ...authHeaders() },
    body: JSON.stringify(payload),
    signal,
  });
  if (!response.ok) {
    const text = await response.text();
    throw new ApiError(response.status, `run on ${threadId}: ${response.status} ${text.slice(0, 300)}`);
  }
  await readEvents(response.body, onEvent);
}

// Parse a text/event-stream body (event:/data: lines, blank line between events).
export async function readEvents(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      dispatchBlock(block, onEvent);
    }
  }
  if (buffer.trim()) dispatchBlock(buffer, onEvent);
}

function dispatchBlock(block, onEvent) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length && event === "message") return;
  onEvent(event, data.length ? safeJson(data.join("\n")) : null);
}
