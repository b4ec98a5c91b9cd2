/** OSC (titles, hyperlinks): ESC ] … ended by BEL or ESC \. */
const OSC_PATTERN = '\\u001b\\][^\\u0007\\u001b]*(?:\\u0007|\\u001b\\\\)';
/**
 * Terminal escape sequences: CSI (colours, cursor moves: ESC [ … final byte), OSC and the
 * two-byte escapes (ESC followed by @ to _). Built from strings so the control characters are
 * spelled out.
 */
const ANSI = new RegExp(
  [
    '\\u001b\\[[0-?]*[ -/]*[@-~]',
    OSC_PATTERN,
    '\\u009b[0-?]*[ -/]*[@-~]',
    '\\u001b[@-Z\\\\-_]',
  ].join('|'),
  'g',
);

/** `text` without ANSI escape sequences, and with CRLF line ends turned into LF. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, '').replace(/\r\n/g, '\n');
}

const OSC = new RegExp(OSC_PATTERN, 'g');

/** `text` without OSC sequences (window titles, OSC 8 hyperlinks' targets); their text stays. */
export function stripOsc(text: string): string {
  return text.replace(OSC, '');
}
