/** Query-string helpers for credentials carried in the query (API keys): read and remove by name. */

function keyOf(pair: string): string {
  const eq = pair.indexOf('=');
  const raw = eq === -1 ? pair : pair.slice(0, eq);
  try {
    return decodeURIComponent(raw.replaceAll('+', ' '));
  } catch {
    return raw;
  }
}

/** Every value of `name` in `query` ('' or '?a=b&…'), decoded. */
export function queryValues(query: string, name: string): string[] {
  if (query.length < 2) return [];
  const out: string[] = [];
  for (const pair of query.slice(1).split('&')) {
    if (keyOf(pair) !== name) continue;
    const eq = pair.indexOf('=');
    const raw = eq === -1 ? '' : pair.slice(eq + 1);
    try {
      out.push(decodeURIComponent(raw.replaceAll('+', ' ')));
    } catch {
      out.push(raw);
    }
  }
  return out;
}

/** `query` without any `name=…` pair; other pairs keep their exact encoding. */
export function withoutQueryParam(query: string, name: string): string {
  if (query.length < 2) return query;
  const kept = query
    .slice(1)
    .split('&')
    .filter((pair) => pair !== '' && keyOf(pair) !== name);
  return kept.length === 0 ? '' : `?${kept.join('&')}`;
}
