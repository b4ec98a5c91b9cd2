/**
 * Terminal escape sequences: CSI (colours, cursor moves: ESC [ … final byte), OSC (titles,
 * hyperlinks: ESC ] … BEL or ESC \) and the two-byte escapes (ESC followed by @ to _).
 * Built from a string so the control characters are spelled out.
 */
const ANSI = new RegExp(
  [
    '\\u001b\\[[0-?]*[ -/]*[@-~]',
    '\\u001b\\][^\\u0007\\u001b]*(?:\\u0007|\\u001b\\\\)',
    '\\u009b[0-?]*[ -/]*[@-~]',
    '\\u001b[@-Z\\\\-_]',
  ].join('|'),
  'g',
);

/** `text` without ANSI escape sequences, and with CRLF line ends turned into LF. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, '').replace(/\r\n/g, '\n');
}
