// The portal's only script, a progressive enhancement: every page works without it.
// - A live log page's <pre id="log" data-events="URL"> follows the job through Server-Sent
//   Events (portal/live-log.ts): new lines are appended, the job's state is updated in place.
// - Buttons with data-copy="TEXT" (shown only when this script runs) copy TEXT to the clipboard.
/* global document, window, EventSource, navigator */
'use strict';

function followLog(pre) {
  const source = new EventSource(pre.dataset.events);
  const banner = document.getElementById('live');
  const showState = (state) => {
    for (const element of document.querySelectorAll('[data-job-state]')) {
      element.textContent = state.replace('_', ' ');
      element.className = `state state-${state}`;
    }
  };
  source.addEventListener('lines', (event) => {
    const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    pre.insertAdjacentHTML('beforeend', `${pre.childElementCount > 0 ? '\n' : ''}${event.data}`);
    pre.hidden = false;
    const empty = document.getElementById('log-empty');
    if (empty) empty.remove();
    if (atBottom) window.scrollTo(0, document.body.scrollHeight);
  });
  source.addEventListener('state', (event) => showState(event.data));
  source.addEventListener('done', (event) => {
    source.close();
    showState(event.data);
    if (banner) banner.textContent = `finished: ${event.data.replace('_', ' ')}`;
  });
  if (banner) banner.textContent = 'live — new lines appear as the job writes them';
}

function enableCopyButtons() {
  for (const button of document.querySelectorAll('button[data-copy]')) {
    button.hidden = false;
    button.addEventListener('click', async () => {
      const label = button.textContent;
      try {
        await navigator.clipboard.writeText(button.dataset.copy);
        button.textContent = 'Copied';
      } catch {
        button.textContent = 'Copy failed';
      }
      window.setTimeout(() => {
        button.textContent = label;
      }, 1500);
    });
  }
}

const log = document.getElementById('log');
if (log && log.dataset.events) followLog(log);
enableCopyButtons();
