// A small body read whole (a manifest, an error document, a token, a list, a
// form): at most `limit` bytes are taken; past them the source is destroyed
// and BodyTooLarge is thrown, so a peer cannot make ferry hold more. A
// client's request is not destroyed (that would cut the socket before the
// client reads why): readRequestBounded stops reading, and the answer closes
// the connection.
import type { IncomingMessage, ServerResponse } from 'node:http'

export class BodyTooLarge extends Error {
  readonly code = 'BODY_TOO_LARGE'
  readonly limit: number
  constructor (limit: number) {
    super(`body larger than ${limit} bytes`)
    this.limit = limit
  }
}

export async function readBounded (body: AsyncIterable<Buffer | string> & { destroy?: (err?: Error) => void }, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    size += b.length
    if (size > limit) {
      const err = new BodyTooLarge(limit)
      body.destroy?.(err)
      throw err
    }
    chunks.push(b)
  }
  return Buffer.concat(chunks, size)
}

/** The same, as text: an error document or a token answer, where a cut text is better than none. */
export async function readText (body: AsyncIterable<Buffer | string> & { destroy?: (err?: Error) => void }, limit: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    if (size + b.length > limit) {
      chunks.push(b.subarray(0, limit - size))
      body.destroy?.()
      break
    }
    size += b.length
    chunks.push(b)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** A request body read whole, at most `limit` bytes; past them BodyTooLarge, the rest left unread and the connection closed after the answer. */
export async function readRequestBounded (req: IncomingMessage, res: ServerResponse, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) {
      res.setHeader('connection', 'close')
      req.pause()
      throw new BodyTooLarge(limit)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks, size)
}
