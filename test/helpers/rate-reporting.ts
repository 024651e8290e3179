// An upstream that reports its rate limit as Docker Hub does: a small HTTP
// server in front of a real registry that forwards every request and, on
// manifest answers, adds RateLimit-Limit and RateLimit-Remaining
// ("100;w=21600"), one fewer remaining per manifest GET.
import { createServer, request, type Server } from 'node:http'

export interface RateReporting {
  readonly url: string
  /** Manifest GETs forwarded so far. */
  readonly counted: () => number
  stop (): Promise<void>
}

export async function startRateReporting (upstream: string, limit: number, windowS: number): Promise<RateReporting> {
  const target = new URL(upstream)
  let counted = 0
  const server: Server = createServer((req, res) => {
    const manifest = /\/manifests\//.test(req.url ?? '') && req.method === 'GET'
    if (manifest) counted++
    const out = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } }, up => {
      const headers = { ...up.headers }
      if (manifest) {
        headers['ratelimit-limit'] = `${limit};w=${windowS}`
        headers['ratelimit-remaining'] = `${Math.max(0, limit - counted)};w=${windowS}`
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
    stop: async () => { await new Promise<void>(resolve => { server.close(() => resolve()); server.closeAllConnections() }) },
  }
}
