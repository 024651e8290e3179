// A proxy in front of a real registry that the test can make misbehave:
// answer a status of its choosing, corrupt, cut, stall or trickle a body,
// lie in Content-Length, or pass requests through untouched.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

export interface Fault {
  /** Answer this status with `body` instead of asking the registry. */
  readonly status?: number
  readonly headers?: Record<string, string>
  readonly body?: string
  /** Flip the byte at this offset of the response body. */
  readonly corruptAt?: number
  /** Cut the connection after this many body bytes. */
  readonly dropAfter?: number
  /** After this many body bytes, send nothing for stallMs (or for ever). */
  readonly stallAfter?: number
  readonly stallMs?: number
  /** Declare this Content-Length whatever the body is. */
  readonly contentLength?: number
  /** Send at most this many bytes per second. */
  readonly bytesPerSecond?: number
  /** Headers added to the registry's own answer. */
  readonly addHeaders?: Record<string, string>
}

export interface Faulty {
  readonly url: string
  readonly host: string
  /** Decide per request; undefined passes it through. */
  fault: ((req: IncomingMessage) => Fault | undefined) | undefined
  readonly seen: { method: string, path: string, range: string | undefined }[]
  count (method: string, pathPart: string): number
  close (): Promise<void>
}

export async function startFaulty (target: string): Promise<Faulty> {
  const to = new URL(target)
  const sockets = new Set<Socket>()
  const state: Faulty = {
    url: '', host: '', fault: undefined, seen: [],
    count (method, pathPart) { return state.seen.filter(r => r.method === method && r.path.includes(pathPart)).length },
    close: async () => {},
  }
  const server: Server = createServer((req, res) => {
    state.seen.push({ method: req.method ?? '', path: req.url ?? '', range: req.headers.range })
    const f = state.fault?.(req)
    if (f?.status !== undefined) {
      res.writeHead(f.status, { 'content-type': 'application/json', ...f.headers })
      res.end(f.body ?? JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `injected ${f.status}` }] }))
      return
    }
    const up = request({ host: to.hostname, port: to.port, path: req.url, method: req.method, headers: { ...req.headers, host: to.host } }, upRes => {
      const headers = { ...upRes.headers }
      if (f?.contentLength !== undefined) headers['content-length'] = String(f.contentLength)
      if (f?.addHeaders !== undefined) Object.assign(headers, f.addHeaders)
      res.writeHead(upRes.statusCode ?? 502, headers)
      if (f === undefined) { upRes.pipe(res); return }
      void relay(upRes, res, f)
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  server.on('connection', s => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.address() as { port: number }).port
  Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    close: () => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) }),
  })
  return state
}

async function relay (from: IncomingMessage, to: ServerResponse, f: Fault): Promise<void> {
  let sent = 0
  const started = performance.now()
  // resolves once the bytes are handed to the kernel, so a cut after it loses none of them
  const write = (chunk: Buffer): Promise<void> => new Promise((resolve, reject) => to.write(chunk, err => err ? reject(err) : resolve()))
  to.flushHeaders()
  try {
    for await (const raw of from as AsyncIterable<Buffer>) {
      let chunk = Buffer.from(raw)
      if (f.corruptAt !== undefined && f.corruptAt >= sent && f.corruptAt < sent + chunk.length) chunk[f.corruptAt - sent] ^= 0xff
      while (chunk.length > 0) {
        let n = chunk.length
        for (const limit of [f.dropAfter, f.stallAfter]) if (limit !== undefined && sent < limit) n = Math.min(n, limit - sent)
        if (f.bytesPerSecond !== undefined) n = Math.min(n, Math.max(1, Math.floor(f.bytesPerSecond / 20)))
        await write(chunk.subarray(0, n))
        sent += n
        chunk = chunk.subarray(n)
        if (f.dropAfter !== undefined && sent >= f.dropAfter) { to.socket?.destroy(); from.destroy(); return }
        if (f.stallAfter !== undefined && sent === f.stallAfter) {
          if (f.stallMs === undefined) return // for ever: the client must give up
          await new Promise(resolve => setTimeout(resolve, f.stallMs))
        }
        if (f.bytesPerSecond !== undefined) {
          // pace to the rate over the whole transfer, not per chunk
          const ahead = sent / f.bytesPerSecond * 1000 - (performance.now() - started)
          if (ahead > 1) await new Promise(resolve => setTimeout(resolve, ahead))
        }
      }
    }
    to.end()
  } catch {
    to.destroy()
  }
}
