// A proxy in front of a real registry that the test can make misbehave:
// answer a status of its choosing, or pass requests through untouched.
import { createServer, request, type IncomingMessage, type Server } from 'node:http'

export interface Fault {
  readonly status: number
  readonly headers?: Record<string, string>
  readonly body?: string
}

export interface Faulty {
  readonly url: string
  readonly host: string
  /** Decide per request; undefined passes it through. */
  fault: ((req: IncomingMessage) => Fault | undefined) | undefined
  readonly seen: { method: string, path: string }[]
  close (): Promise<void>
}

export async function startFaulty (target: string): Promise<Faulty> {
  const to = new URL(target)
  const state: Faulty = {
    url: '', host: '', fault: undefined, seen: [],
    close: async () => {},
  }
  const server: Server = createServer((req, res) => {
    state.seen.push({ method: req.method ?? '', path: req.url ?? '' })
    const f = state.fault?.(req)
    if (f !== undefined) {
      res.writeHead(f.status, { 'content-type': 'application/json', ...f.headers })
      res.end(f.body ?? JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `injected ${f.status}` }] }))
      return
    }
    const up = request({ host: to.hostname, port: to.port, path: req.url, method: req.method, headers: { ...req.headers, host: to.host } }, upRes => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers)
      upRes.pipe(res)
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.address() as { port: number }).port
  Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    close: () => new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => resolve()) }),
  })
  return state
}
