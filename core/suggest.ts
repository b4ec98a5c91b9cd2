/** Levenshtein edit distance between two strings (insertions, deletions, substitutions, each 1). */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * The candidate closest to `input`, if it is within `maxDistance` edits (default 2; a
 * transposition, as in "arm46" for "arm64", counts as 1); otherwise undefined.
 */
export function closestMatch(
  input: string,
  candidates: readonly string[],
  maxDistance = 2,
): string | undefined {
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const sameLetters = [...input].sort().join('') === [...candidate].sort().join('');
    const distance = sameLetters ? 1 : editDistance(input, candidate);
    if (distance <= maxDistance && (!best || distance < best.distance))
      best = { candidate, distance };
  }
  return best?.candidate;
}
