/**
 * A connection's management API nodes, written as one URL or several separated by commas (in a
 * connection Secret's `uri`, or in `RABBITMQ_URL`): `http://rabbit-0:15672,http://rabbit-1:15672`.
 */

/** The entries of a node list: trimmed, empty ones dropped, duplicates removed (order kept). */
export function splitNodeList(text: string): string[] {
  return [...new Set(text.split(',').map((s) => s.trim()).filter(Boolean))];
}

/**
 * Checks every entry: a URL of one of `protocols` (http(s) for management nodes). Returns the
 * problems (empty when the list is fine), each naming the entry by its position and host only: a
 * URL may carry credentials.
 */
export function nodeListProblems(
  entries: readonly string[],
  protocols: readonly string[] = ['http:', 'https:'],
  expected = 'one management API URL, or several separated by commas',
): string[] {
  if (entries.length === 0) return [`no node listed (${expected})`];
  const problems: string[] = [];
  entries.forEach((entry, i) => {
    let url: URL;
    try {
      url = new URL(entry);
    } catch {
      problems.push(`entry ${i + 1} is not a URL`);
      return;
    }
    if (!protocols.includes(url.protocol)) problems.push(`entry ${i + 1} (${url.host}) is not ${protocols.map((p) => `${p}//`).join(' or ')}`);
  });
  return problems;
}
