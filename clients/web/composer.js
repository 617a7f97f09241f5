// The message box: Enter sends, Shift+Enter adds a line (as in ChatGPT),
// the box grows with its text up to a limit, and Send turns into Stop while
// a reply streams.

export class Composer {
  // `onSend(text)` when the user sends; `onStop()` for the Stop button.
  constructor({ form, input, send, stop, onSend, onStop }) {
    this.form = form;
    this.input = input;
    this.send = send;
    this.stop = stop;
    this.busy = false;
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
    input.addEventListener('keydown', (event) => {
      // isComposing: Enter that confirms an IME candidate is not a send.
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing
          && !event.altKey && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        this.submit();
      }
    });
    input.addEventListener('input', () => this.resize());
    stop.addEventListener('click', () => onStop());
    this.onSend = onSend;
  }

  submit() {
    const text = this.input.value;
    if (this.busy || !text.trim()) return;
    this.input.value = '';
    this.resize();
    this.onSend(text);
  }

  resize() {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, 200)}px`;
  }

  // While busy, Stop replaces Send; focus follows so a keyboard user can
  // press it at once, and comes back to the box afterwards.
  setBusy(busy) {
    this.busy = busy;
    const hadFocus = document.activeElement === this.send || document.activeElement === this.stop;
    this.send.hidden = busy;
    this.stop.hidden = !busy;
    if (hadFocus) (busy ? this.stop : this.input).focus();
  }

  focus() {
    this.input.focus();
  }
}
