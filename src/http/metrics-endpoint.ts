// /metrics, on the proxy's port or on its own address (metrics.listen), open
// or behind a bearer token (metrics.tokenEnv).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { sameSecret } from '../auth/credentials.ts'
import { sendBody } from './respond.ts'

type MetricsText = () => Promise<{ text: string, contentType: string }>

export async function serveMetrics (req: IncomingMessage, res: ServerResponse, text: MetricsText, token: () => string | undefined): Promise<void> {
  const wanted = token()
  const auth = req.headers.authorization
  if (wanted !== undefined && (auth === undefined || !/^bearer /i.test(auth) || !sameSecret(auth.slice(7).trim(), wanted))) {
    sendBody(res, 401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer realm="ferry metrics"' }, 'metrics need the metrics token\n', req.method === 'HEAD')
    return
  }
  const { text: body, contentType } = await text()
  sendBody(res, 200, { 'content-type': contentType }, body, req.method === 'HEAD')
}

/** A server for /metrics alone. */
export function createMetricsServer (text: MetricsText, token: () => string | undefined): Server {
  return createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      sendBody(res, 404, { 'content-type': 'text/plain' }, 'not found\n', req.method === 'HEAD')
      return
    }
    serveMetrics(req, res, text, token).catch(() => { if (!res.headersSent) sendBody(res, 500, { 'content-type': 'text/plain' }, 'metrics failed\n', false); else res.destroy() })
  })
}
