// Markdown to safe DOM: marked renders, DOMPurify sanitizes, and code blocks
// get a language label and a Copy button.
//
// Two layers, so neither alone has to be perfect: raw HTML inside the
// markdown is shown as text (a model quoting `<script>` means the text, as
// in ChatGPT), and whatever marked produces goes through DOMPurify before it
// touches the page (javascript: links, event handlers, <style>, forms are
// removed). The page's Content-Security-Policy is the third.

const { Marked } = globalThis.marked;
const DOMPurify = globalThis.DOMPurify;

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const marked = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    // Block and inline HTML alike: shown, never parsed.
    html({ text, block }) {
      return block ? `<p>${escapeHtml(text)}</p>` : escapeHtml(text);
    },
  },
});

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  // Links leave the app in a new tab that cannot reach back to this one.
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

const PURIFY_CONFIG = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'option', 'iframe'],
  FORBID_ATTR: ['style', 'id', 'name'],
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

// Wraps each <pre><code> of `root` in a block with the language and a Copy
// button (the click is handled by whoever owns the page: see copyCode()).
function decorateCodeBlocks(root) {
  for (const pre of root.querySelectorAll('pre')) {
    const code = pre.querySelector('code');
    const language = /(?:^|\s)language-([\w+#.-]{1,32})/.exec(code?.className ?? '')?.[1] ?? '';
    const block = document.createElement('div');
    block.className = 'code-block';
    const head = document.createElement('div');
    head.className = 'code-head';
    const label = document.createElement('span');
    label.textContent = language || 'code';
    const copy = document.createElement('button');
    copy.type = 'button';
    copy.className = 'copy-code';
    copy.textContent = 'Copy';
    copy.setAttribute('aria-label', `Copy ${language || 'code'} code`);
    head.append(label, copy);
    pre.replaceWith(block);
    block.append(head, pre);
  }
}

// Renders `markdown` into `element`, replacing what it held.
export function renderMarkdown(element, markdown) {
  const html = marked.parse(markdown ?? '');
  const fragment = DOMPurify.sanitize(html, PURIFY_CONFIG);
  decorateCodeBlocks(fragment);
  element.replaceChildren(fragment);
}

// Copies the code of the block whose Copy `button` was pressed; the button
// says "Copied" for a moment. Resolves to whether it worked.
export async function copyCode(button) {
  const code = button.closest('.code-block')?.querySelector('code');
  if (!code) return false;
  let ok = true;
  try {
    await navigator.clipboard.writeText(code.textContent);
  } catch {
    // No clipboard API (plain http off localhost): select and copy.
    const area = document.createElement('textarea');
    area.value = code.textContent;
    area.setAttribute('readonly', '');
    area.className = 'offscreen';
    document.body.append(area);
    area.select();
    ok = document.execCommand('copy');
    area.remove();
  }
  button.textContent = ok ? 'Copied' : 'Copy failed';
  setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  return ok;
}
