// Chat with a deployment's endpoint (OpenAI-compatible): model from /v1/models, streamed
// /v1/chat/completions, reasoning (before "</think>", or delta.reasoning_content) folded apart.
import { createSseParser } from './api.js';
import { h, replace, clear, errMsg, browserUrl } from './ui.js';

// Splits a DeepSeek-R1 style content into {reasoning, answer, closed}.
// expectReasoning: the model thinks first (R1 chat templates open "<think>" in the prompt).
export function splitThink(content, { streaming = false, expectReasoning = false } = {}) {
  let text = content || '';
  const opened = /^\s*<think>/.test(text);
  if (opened) text = text.replace(/^\s*<think>\n?/, '');
  const i = text.indexOf('</think>');
  if (i >= 0) return { reasoning: text.slice(0, i).trim(), answer: text.slice(i + 8).replace(/^\s+/, ''), closed: true };
  if (streaming && (expectReasoning || opened)) return { reasoning: text, answer: '', closed: false };
  if (opened) return { reasoning: text.trim(), answer: '', closed: false };
  return { reasoning: '', answer: text, closed: false };
}

function joinUrl(base, path) {
  return `${base.endsWith('/') ? base : `${base}/`}${path}`;
}

async function errorText(res) {
  const t = await res.text().catch(() => '');
  try {
    const j = JSON.parse(t);
    if (j && j.error) return typeof j.error === 'string' ? j.error : j.error.message || JSON.stringify(j.error);
  } catch {
    /* not JSON */
  }
  return t.trim() || `${res.status} ${res.statusText}`;
}

// createChat({getEndpoint: () => url|null, expectReasoning: bool, signal}) → {el, activate()}
export function createChat({ getEndpoint, expectReasoning = false, signal }) {
  const turns = []; // {role:'user'|'assistant', content, reasoning, answer, el…}
  let models = [];
  let modelsLoaded = false;
  let streaming = null; // AbortController

  const endpointInfo = h('p', { class: 'muted small chat-endpoint', testid: 'chat-endpoint' });
  const modelSel = h('select', { id: 'chat-model', testid: 'chat-model' });
  const modelStatus = h('span', { class: 'muted small', testid: 'chat-model-status', role: 'status' });
  const retryBtn = h('button', { type: 'button', class: 'btn btn-small btn-ghost', testid: 'chat-retry-models', hidden: true }, 'Retry');
  const tempInput = h('input', { id: 'chat-temperature', testid: 'chat-temperature', type: 'number', min: '0', max: '2', step: '0.1', placeholder: 'default', class: 'input-small' });
  const maxInput = h('input', { id: 'chat-max-tokens', testid: 'chat-max-tokens', type: 'number', min: '1', step: '1', placeholder: 'default', class: 'input-small' });
  const messages = h('div', { class: 'chat-messages', testid: 'chat-messages', role: 'log', 'aria-live': 'off', 'aria-label': 'Conversation', tabindex: '0' },
    h('p', { class: 'muted chat-empty' }, 'Send a message to talk to the model behind this endpoint.'));
  const input = h('textarea', { id: 'chat-input', testid: 'chat-input', rows: '3', placeholder: 'Ask something… (Enter sends, Shift+Enter adds a line)' });
  const sendBtn = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'chat-send' }, 'Send');
  const stopBtn = h('button', { type: 'button', class: 'btn', testid: 'chat-stop', hidden: true }, 'Stop');
  const clearBtn = h('button', { type: 'button', class: 'btn btn-ghost', testid: 'chat-clear' }, 'Clear conversation');
  const errorEl = h('p', { class: 'form-error', role: 'alert', testid: 'chat-error', hidden: true });
  const announce = h('span', { class: 'sr-only', role: 'status', 'aria-live': 'polite' });

  const form = h('form', { class: 'chat-form', novalidate: true },
    h('label', { for: 'chat-input', class: 'sr-only' }, 'Message'),
    input,
    h('div', { class: 'chat-buttons' }, sendBtn, stopBtn, clearBtn));

  const el = h('div', { class: 'chat', testid: 'chat' },
    endpointInfo,
    h('div', { class: 'toolbar' },
      h('label', { for: 'chat-model', class: 'inline-label' }, 'Model'), modelSel, modelStatus, retryBtn,
      h('label', { for: 'chat-temperature', class: 'inline-label' }, 'Temperature'), tempInput,
      h('label', { for: 'chat-max-tokens', class: 'inline-label' }, 'Max tokens'), maxInput),
    messages, errorEl, form, announce);

  retryBtn.addEventListener('click', () => loadModels());
  clearBtn.addEventListener('click', () => {
    if (streaming) streaming.abort();
    turns.length = 0;
    replace(messages, h('p', { class: 'muted chat-empty' }, 'Conversation cleared.'));
    errorEl.hidden = true;
    input.focus();
  });
  stopBtn.addEventListener('click', () => streaming && streaming.abort());
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    send();
  });

  function endpoint() {
    const u = getEndpoint();
    return u ? browserUrl(u) : null;
  }

  async function loadModels() {
    const url = endpoint();
    retryBtn.hidden = true;
    if (!url) {
      modelStatus.textContent = 'This deployment has no endpoint.';
      return;
    }
    endpointInfo.textContent = `Endpoint: ${url}`;
    modelStatus.textContent = 'Loading models…';
    try {
      const res = await fetch(joinUrl(url, 'v1/models'), { signal, headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error(await errorText(res));
      const j = await res.json();
      models = ((j && j.data) || []).map((m) => m.id).filter(Boolean);
      modelsLoaded = true;
      replace(modelSel, models.map((m) => h('option', { value: m }, m)));
      modelStatus.textContent = models.length ? '' : 'The server lists no model.';
    } catch (e) {
      if (e.name === 'AbortError') return;
      modelStatus.textContent = `Models unavailable: ${errMsg(e)}`;
      retryBtn.hidden = false;
    }
  }

  function turnEl(role) {
    if (messages.querySelector('.chat-empty')) clear(messages);
    if (role === 'user') {
      const body = h('div', { class: 'bubble-text', testid: 'chat-user-text' });
      const el2 = h('div', { class: 'bubble bubble-user', testid: 'chat-user' }, h('div', { class: 'bubble-role' }, 'You'), body);
      messages.appendChild(el2);
      return { el: el2, body };
    }
    const reasoningText = h('div', { class: 'reasoning-text' });
    const summary = h('summary', null, 'Reasoning');
    const details = h('details', { class: 'reasoning', testid: 'chat-reasoning', hidden: true }, summary, reasoningText);
    const answer = h('div', { class: 'bubble-text', testid: 'chat-answer', 'aria-busy': 'true' });
    const meta = h('div', { class: 'bubble-meta muted small' });
    const el2 = h('div', { class: 'bubble bubble-assistant', testid: 'chat-assistant' }, h('div', { class: 'bubble-role' }, 'Assistant'), details, answer, meta);
    messages.appendChild(el2);
    return { el: el2, details, summary, reasoningText, answer, meta };
  }

  function scrollDown() {
    messages.scrollTop = messages.scrollHeight;
  }

  async function send() {
    const text = input.value.trim();
    if (!text || streaming) return;
    const url = endpoint();
    errorEl.hidden = true;
    if (!url) {
      errorEl.hidden = false;
      errorEl.textContent = 'This deployment has no endpoint to chat with.';
      return;
    }
    if (!modelsLoaded) await loadModels();
    input.value = '';
    const u = turnEl('user');
    u.body.textContent = text;
    turns.push({ role: 'user', content: text });
    const a = turnEl('assistant');
    const turn = { role: 'assistant', content: '', answer: '', reasoning: '' };
    scrollDown();

    const history = turns.map((t) => ({ role: t.role, content: t.role === 'assistant' ? t.answer : t.content }));
    const body = { messages: history, stream: true };
    if (modelSel.value) body.model = modelSel.value;
    if (tempInput.value !== '') body.temperature = Number(tempInput.value);
    if (maxInput.value !== '') body.max_tokens = Number(maxInput.value);

    streaming = new AbortController();
    const abortOnLeave = () => streaming && streaming.abort();
    signal && signal.addEventListener('abort', abortOnLeave);
    sendBtn.disabled = true;
    sendBtn.textContent = 'Sending…';
    stopBtn.hidden = false;
    let content = '';
    let reasoningContent = '';
    let finish = null;
    let usage = null;
    const expect = expectReasoning || /deepseek-r1|\br1\b/i.test(modelSel.value || '');
    const started = performance.now();

    const paint = (final) => {
      const sp = splitThink(content, { streaming: !final, expectReasoning: expect });
      let reasoning = [reasoningContent.trim(), sp.reasoning].filter(Boolean).join('\n\n');
      let answer = sp.answer;
      if (final && !sp.closed && expect && !reasoningContent && finish !== 'length' && !/^\s*<think>/.test(content)) {
        // No "</think>" came: the model did not reason after all; all of it is the answer.
        reasoning = reasoningContent.trim();
        answer = content;
      }
      turn.reasoning = reasoning;
      turn.answer = answer;
      a.details.hidden = !reasoning;
      a.reasoningText.textContent = reasoning;
      a.summary.textContent = final ? `Reasoning (${reasoning.split(/\s+/).filter(Boolean).length} words)` : sp.closed || answer ? 'Reasoning' : 'Reasoning… (thinking)';
      a.answer.textContent = answer || (final ? '' : '');
      if (!answer && !final) a.answer.classList.add('pending');
      else a.answer.classList.remove('pending');
      scrollDown();
    };

    try {
      const res = await fetch(joinUrl(url, 'v1/chat/completions'), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
        body: JSON.stringify(body),
        signal: streaming.signal,
      });
      if (!res.ok) throw new Error(await errorText(res));
      const ctype = res.headers.get('content-type') || '';
      if (!ctype.includes('text/event-stream')) {
        const j = await res.json();
        const msg = j && j.choices && j.choices[0] && j.choices[0].message;
        content = (msg && msg.content) || '';
        reasoningContent = (msg && (msg.reasoning_content || msg.reasoning)) || '';
        finish = j && j.choices && j.choices[0] && j.choices[0].finish_reason;
        usage = j && j.usage;
      } else {
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let done = false;
        let streamError = null;
        const parser = createSseParser((m) => {
          if (m.data === '[DONE]') {
            done = true;
            return;
          }
          let j;
          try {
            j = JSON.parse(m.data);
          } catch {
            return;
          }
          if (j.error) {
            streamError = typeof j.error === 'string' ? j.error : j.error.message || JSON.stringify(j.error);
            return;
          }
          const c = j.choices && j.choices[0];
          if (c) {
            const d = c.delta || c.message || {};
            if (typeof d.content === 'string') content += d.content;
            if (typeof d.reasoning_content === 'string') reasoningContent += d.reasoning_content;
            else if (typeof d.reasoning === 'string') reasoningContent += d.reasoning;
            if (c.finish_reason) finish = c.finish_reason;
          }
          if (j.usage) usage = j.usage;
        });
        let last = 0;
        while (!done) {
          const { value, done: eof } = await reader.read();
          if (eof) break;
          parser.push(dec.decode(value, { stream: true }));
          const now = performance.now();
          if (now - last > 50) {
            paint(false);
            last = now;
          }
        }
        parser.end();
        if (done) reader.cancel().catch(() => {});
        if (streamError) throw new Error(streamError);
      }
      paint(true);
      const secs = ((performance.now() - started) / 1000).toFixed(1);
      a.meta.textContent = [`${secs} s`, usage && usage.completion_tokens ? `${usage.completion_tokens} tokens` : null, finish && finish !== 'stop' ? `finish: ${finish}` : null].filter(Boolean).join(' · ');
      announce.textContent = 'Answer complete.';
    } catch (e) {
      const aborted = e.name === 'AbortError';
      paint(true);
      if (aborted) {
        a.meta.textContent = 'Stopped.';
      } else {
        errorEl.hidden = false;
        errorEl.textContent = errMsg(e);
        if (!turn.answer && !turn.reasoning) a.el.remove();
      }
    } finally {
      a.answer.removeAttribute('aria-busy');
      turn.content = content;
      if (turn.answer || turn.reasoning) turns.push(turn);
      else turns.pop(); // the user turn got no answer: drop it from the history sent next time
      signal && signal.removeEventListener('abort', abortOnLeave);
      streaming = null;
      sendBtn.disabled = false;
      sendBtn.textContent = 'Send';
      stopBtn.hidden = true;
      input.focus();
    }
  }

  return {
    el,
    activate() {
      if (!modelsLoaded) loadModels();
      setTimeout(() => input.focus(), 0);
    },
  };
}
