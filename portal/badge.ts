import { makeBadge } from 'badge-maker';
import type { Build } from '../db/queries/builds';

/** What a badge says for each state, and its colour (shields.io's named colours). */
const LOOKS: Record<Build['state'], { message: string; color: string }> = {
  succeeded: { message: 'passing', color: 'brightgreen' },
  failed: { message: 'failing', color: 'red' },
  canceled: { message: 'canceled', color: 'lightgrey' },
  queued: { message: 'queued', color: 'blue' },
  running: { message: 'running', color: 'blue' },
};

/**
 * A status badge as SVG text (badge-maker, shields.io's flat style): `label` on the left, the
 * state's word ("passing", "failing", "canceled") on the right, or "unknown" when `state` is
 * undefined. badge-maker escapes the texts.
 */
export function statusBadge(label: string, state: Build['state'] | undefined): string {
  const look = state ? LOOKS[state] : { message: 'unknown', color: 'lightgrey' };
  return makeBadge({ label, message: look.message, color: look.color, style: 'flat' });
}
