/**
 * Read a remote reply body (an undici body or a fetch Response body) up to `max` bytes: the whole
 * body, or undefined as soon as it grows past `max`. Leaving the loop early destroys (undici) or
 * cancels (WHATWG stream) the body, so an oversized reply is never read to its end.
 */
export async function readCapped(body: AsyncIterable<Uint8Array>, max: number): Promise<Buffer | undefined> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.byteLength;
    if (total > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}
