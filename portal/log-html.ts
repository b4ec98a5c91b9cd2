import { AnsiUp } from 'ansi_up';
import { stripOsc } from '../core/ansi';

/**
 * Turns a job's log, fed in pieces as it is written, into HTML lines: ANSI SGR colours and
 * styles become `<span style="…">` (ansi_up, which escapes every character of the text that
 * HTML gives meaning to: & < > " '), other escape sequences are dropped, CRLF ends a line and a
 * lone CR starts the line over (as a terminal shows a progress bar). Each line is
 * `<span class="line" id="L<n>"><a class="ln" href="#L<n>">n</a>…</span>` so that `#L12` links
 * to line 12 (numbered from 1). Colours carry over from line to line as in a terminal.
 * OSC sequences are dropped, so OSC 8 hyperlinks show as their text, never as links: log text
 * is the build's, not ours.
 */
export class LogHtml {
  private readonly ansi = new AnsiUp();
  /** Text after the last line end fed so far. */
  private partial = '';
  /** Lines made so far. */
  lines = 0;

  constructor() {
    this.ansi.url_allowlist = {};
  }

  /** Feeds `text`; returns the HTML of each line it completed. */
  push(text: string): string[] {
    const pieces = (this.partial + text).split('\n');
    this.partial = pieces.pop()!;
    return pieces.map((line) => this.line(line));
  }

  /** Ends the log: returns the HTML of its last line if that had no line end, else nothing. */
  flush(): string[] {
    if (this.partial === '') return [];
    const last = this.partial;
    this.partial = '';
    return [this.line(last)];
  }

  private line(text: string): string {
    this.lines += 1;
    const n = this.lines;
    const shown = text.endsWith('\r') ? text.slice(0, -1) : text;
    // A lone CR returns to the start of the line: what follows the last one is what stays.
    const visible = shown.slice(shown.lastIndexOf('\r') + 1);
    return `<span class="line" id="L${n}"><a class="ln" href="#L${n}">${n}</a>${this.ansi.ansi_to_html(stripOsc(visible))}</span>`;
  }
}

/**
 * The whole of a log as HTML lines (LogHtml): with `complete` the last line is included even
 * without a line end (the log is finished); without it, it is held back, as the live stream will
 * send it once it is complete.
 */
export function logToHtml(text: string, complete: boolean): string[] {
  const renderer = new LogHtml();
  const html = renderer.push(text);
  if (complete) html.push(...renderer.flush());
  return html;
}
