// An upstream that reports its rate limit as Docker Hub does: a small HTTP
// server in front of a real registry that forwards every request and, on
// manifest answers, adds RateLimit-Limit and RateLimit-Remaining
// ("100;w=21600"), one fewer remaining per manifest GET (HEADs are free, as
// on Docker Hub). With `enforce`, a manifest GET past the limit is answered
// 429 with Retry-After instead of forwarded.
import { createServer, request, type Server } from 'node:http'

export interface RateReporting {
  readonly url: string
  /** Manifest GETs counted so far. */
  readonly counted: () => number
  /** Manifest HEADs and GETs seen, by path. */
  readonly seen: (method: 'GET' | 'HEAD', path: string) => number
  /** Start the window again with this many left. */
  setRemaining (n: number): void
  stop (): Promise<void>
}

export async function startRateReporting (upstream: string, limit: number, windowS: number, enforce = false): Promise<RateReporting> {
  const target = new URL(upstream)
  let counted = 0
  let base = 0
  const requests = new Map<string, number>()
  const server: Server = createServer((req, res) => {
    const isManifest = /\/manifests\//.test(req.url ?? '')
    if (isManifest) requests.set(`${req.method} ${req.url}`, (requests.get(`${req.method} ${req.url}`) ?? 0) + 1)
    const manifest = isManifest && req.method === 'GET'
    if (manifest && enforce && counted - base >= limit) {
      res.writeHead(429, { 'retry-after': '3600', 'ratelimit-limit': `${limit};w=${windowS}`, 'ratelimit-remaining': `0;w=${windowS}`, 'content-type': 'application/json' })
      res.end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'rate limit reached' }] }))
      return
    }
    if (manifest) counted++
    const out = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } }, up => {
      const headers = { ...up.headers }
      if (isManifest) {
        headers['ratelimit-limit'] = `${limit};w=${windowS}`
        headers['ratelimit-remaining'] = `${Math.max(0, limit - (counted - base))};w=${windowS}`
      }
      res.writeHead(up.statusCode ?? 502, headers)
      up.pipe(res)
    })
    out.on('error', () => { res.destroy() })
    req.pipe(out)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    counted: () => counted,
    seen: (method, path) => requests.get(`${method} ${path}`) ?? 0,
    setRemaining (n) { base = counted - (limit - n) },
    stop: async () => { await new Promise<void>(resolve => { server.close(() => resolve()); server.closeAllConnections() }) },
  }
}
