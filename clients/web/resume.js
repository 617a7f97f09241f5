// A page reload mid-answer picks the answer up again. While an answer
// streams, the session and the user's message are kept in sessionStorage
// (per tab, gone with it); a page that opens that session and finds them
// there asks the server for the session's latest answer from its start
// (ChatClient.resumeStream: the answer ran on while the page was away) and
// shows it as it arrives. The entry is dropped once the answer is settled.

const KEY = 'chatd.streaming';

function read() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) ?? 'null');
  } catch {
    return null;
  }
}

// An answer to `message` starts streaming in `sessionId`.
export function rememberStream(sessionId, message) {
  try {
    sessionStorage.setItem(KEY, JSON.stringify({ sessionId, message }));
  } catch {
    // Storage full or disabled: a reload then just shows the history.
  }
}

// The answer of `sessionId` is settled (done, stopped or failed).
export function forgetStream(sessionId) {
  const pending = read();
  if (pending && pending.sessionId === sessionId) sessionStorage.removeItem(KEY);
}

// {sessionId, message} of an answer a reload interrupted in `sessionId`;
// null if none.
export function pendingStream(sessionId) {
  const pending = read();
  return pending && pending.sessionId === sessionId && typeof pending.message === 'string'
    ? pending : null;
}
