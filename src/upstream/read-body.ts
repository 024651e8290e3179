/**
 * A small upstream body (an error document, a token, a list) as text: at most
 * `limit` bytes are kept; past them the body is dropped and the text is cut.
 */
export async function readLimited (body: AsyncIterable<Buffer>, limit: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > limit) break
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}
