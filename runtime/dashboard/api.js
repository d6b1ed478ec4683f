// The API client of the dashboard: the token, JSON requests, and the live WebSocket.

const TOKEN_KEY = "dtnlab.session";

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code || "error";
  }
}

export function session() {
  try { return JSON.parse(sessionStorage.getItem(TOKEN_KEY)); } catch { return null; }
}

export function forget() { sessionStorage.removeItem(TOKEN_KEY); }

export async function login(username, password) {
  const body = new URLSearchParams({ username, password, grant_type: "password" });
  const res = await fetch("/auth/token", { method: "POST", body });
  const doc = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, doc);
  const s = { token: doc.access_token, user: doc.user, role: doc.role,
              expires: Date.now() / 1000 + doc.expires_in };
  sessionStorage.setItem(TOKEN_KEY, JSON.stringify(s));
  return s;
}

export async function api(path, { method = "GET", json } = {}) {
  const s = session();
  const headers = { Authorization: `Bearer ${s?.token || ""}` };
  const init = { method, headers };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  const res = await fetch(path, init);
  const doc = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, doc);
  return doc;
}

// One WebSocket that reconnects with backoff; the token goes in a subprotocol, not the URL.
export class LiveStream {
  constructor(onMessage, onStatus) {
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.backoff = 500;
    this.closed = false;
    this.ws = null;
  }

  open() {
    const s = session();
    if (!s || this.closed) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws`, ["dtnlab.v1", `bearer.${s.token}`]);
    this.ws = ws;
    ws.onopen = () => { this.backoff = 500; this.onStatus(true); };
    ws.onmessage = (ev) => {
      try { this.onMessage(JSON.parse(ev.data)); } catch (err) { console.error(err); }
    };
    ws.onclose = (ev) => {
      this.onStatus(false, ev.code);
      if (this.closed || ev.code === 4401) return;
      setTimeout(() => this.open(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close();
  }
}
