// What the app keeps in this browser (localStorage), and nothing else: the
// API key, the open session, each session's title and settings, and the
// usage of turns streamed here (the server's history has no per-turn usage).
// Everything read back is treated as untrusted text: another tab, an
// extension or a user may have written it.

const PREFIX = 'chatd.';

function read(name, fallback) {
  try {
    const raw = localStorage.getItem(PREFIX + name);
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

function write(name, value) {
  try {
    if (value === undefined) localStorage.removeItem(PREFIX + name);
    else localStorage.setItem(PREFIX + name, JSON.stringify(value));
  } catch {
    // Storage full or disabled (private mode): the app still works, it
    // just forgets on reload.
  }
}

// The server's rule for session ids (docs/API.md, Limits).
export const SESSION_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

export function apiKey() {
  const key = read('apiKey', '');
  return typeof key === 'string' ? key : '';
}
export function setApiKey(key) { write('apiKey', key ? String(key) : undefined); }

export function currentSession() {
  const id = read('session', '');
  return typeof id === 'string' && SESSION_ID.test(id) ? id : '';
}
export function setCurrentSession(id) { write('session', id || undefined); }

// Per-session record: {title, model, temperature, turns: {N: {model,
// usage, cost_usd}}}. Bounded: the oldest records go past MAX_SESSIONS.
const MAX_SESSIONS = 500;

function records() {
  const all = read('sessions', {});
  return all && typeof all === 'object' && !Array.isArray(all) ? all : {};
}

export function sessionRecord(id) {
  const record = records()[id];
  return record && typeof record === 'object' ? record : {};
}

export function updateSessionRecord(id, change) {
  const all = records();
  const record = { ...(all[id] ?? {}), ...change, touched: Date.now() };
  delete all[id];
  all[id] = record;
  const ids = Object.keys(all);
  if (ids.length > MAX_SESSIONS) {
    ids.sort((a, b) => (all[a].touched ?? 0) - (all[b].touched ?? 0));
    for (const old of ids.slice(0, ids.length - MAX_SESSIONS)) delete all[old];
  }
  write('sessions', all);
  return record;
}

export function forgetSession(id) {
  const all = records();
  delete all[id];
  write('sessions', all);
}

// The settings last used for a new chat, offered for the next one.
export function newChatDefaults() {
  const d = read('newChat', {});
  return d && typeof d === 'object' ? d : {};
}
export function setNewChatDefaults(d) { write('newChat', d); }

// A chat's title: its first message's first line, shortened.
export function titleFrom(message) {
  const line = String(message ?? '').trim().split('\n')[0].trim();
  return line.length > 60 ? `${line.slice(0, 57)}…` : line;
}
