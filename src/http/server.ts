// The edge server: one request in, one endpoint handler, every failure turned
// into an OCI error body by respond.ts.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Socket } from 'node:net'
import { BodyTooLarge, readRequestBounded } from '../io/read-bounded.ts'
import { OciError, Unsupported } from '../oci/errors.ts'
import type { Logger } from '../observe/logger.ts'
import { handleBlob, handleCatalog, handleRegionPeerFill, handleManifest, handleReferrers, handleTags, readOnly, routingNs, type Access, type Call, type Services } from './handlers.ts'
import { handleDelete, handleManifestPut, handleUpload } from './push.ts'
import { sendBody, sendError, toOciError } from './respond.ts'
import { serveMetrics } from './metrics-endpoint.ts'
import { matchEndpoint, type Endpoint } from './routes.ts'
import { requester } from '../upstream/miss-budget.ts'
import { parseName } from '../oci/reference.ts'
import { DeniedTo, LoginFailed } from '../auth/gate.ts'
import { LoginThrottled } from '../auth/login-limits.ts'
import type { AuditLog } from '../observe/audit.ts'
import { QuotaExceeded } from '../content/quotas.ts'

export interface ConnectionLimits {
  readonly idleTimeoutMs: number
  readonly headersTimeoutMs: number
  readonly connections: number
  readonly connectionsPerClient: number
}

export function createEdgeServer (services: Services, log: Logger, limits: ConnectionLimits, tls?: { cert: Buffer, key: Buffer }): Server {
  // keep-alive below the idle timeout, so an idle kept-alive connection is closed politely first
  // headersTimeout is enforced when Node checks its connections: every second, not every 30 s
  const options = { keepAliveTimeout: Math.min(65_000, limits.idleTimeoutMs), headersTimeout: limits.headersTimeoutMs, requestTimeout: 0, connectionsCheckingInterval: 1000 }
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => { void handle(services, log, req, res) }
  const server = tls === undefined ? createServer(options, onRequest) : createHttpsServer({ ...options, ...tls }, onRequest)
  // no byte either way for idleTimeout: a client that never sends a request, or stops reading its answer (Node destroys the socket)
  server.timeout = limits.idleTimeoutMs
  server.maxConnections = limits.connections
  limitPerClient(server, limits.connectionsPerClient, log)
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    log.debug({ err: err.message, code: err.code }, 'client error')
    if (!socket.writable) { socket.destroy(); return }
    // what the HTTP parser refused, or a request that never came whole, still gets an OCI error body; then the connection goes
    const [status, message] = err.code === 'HPE_HEADER_OVERFLOW'
      ? ['431 Request Header Fields Too Large', 'request headers too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? ['408 Request Timeout', 'the request did not arrive in time'] : ['400 Bad Request', 'malformed HTTP request']
    const body = JSON.stringify({ errors: [{ code: 'UNSUPPORTED', message, detail: null }] })
    socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
    // a client that does not read the answer does not keep the connection either
    setTimeout(() => socket.destroy(), 1000).unref()
  })
  return server
}

/** At most `max` open connections per client address; the next ones are closed as they arrive. */
function limitPerClient (server: Server, max: number, log: Logger): void {
  const open = new Map<string, number>()
  let warned = 0
  // the TCP connection, before any TLS handshake or HTTP parsing
  server.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? ''
    const n = (open.get(address) ?? 0) + 1
    if (n > max) {
      if (Date.now() - warned > 10_000) { warned = Date.now(); log.warn({ client: address, max }, 'too many connections from one client; closing the new ones') }
      socket.destroy()
      return
    }
    open.set(address, n)
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1
      if (left <= 0) open.delete(address); else open.set(address, left)
    })
  })
}

function audit (log: AuditLog, c: Call, e: Endpoint, status: number): void {
  if (e.kind === 'token') { auditToken(log, c, status); return }
  if (e.kind === 'console-api') {
    // the console's writes and logins; its reads are not access decisions on repositories
    if (c.consoleAction === undefined) return
    log.record({
      who: c.principal?.name ?? 'anonymous',
      kind: c.principal?.kind ?? 'anonymous',
      client: c.client,
      action: `console:${c.consoleAction.action}`,
      repository: undefined,
      reference: c.consoleAction.reference,
      digest: undefined,
      decision: status < 400 ? 'allow' : 'deny',
      status,
      bytes: 0,
    })
    return
  }
  const access = c.access ?? accessOf(e, c.req.method)
  if (access === undefined) return
  const reference = e.kind === 'manifest' ? e.reference : e.kind === 'blob' ? e.digest : undefined
  log.record({
    who: c.principal?.name ?? 'anonymous',
    kind: c.principal?.kind ?? 'anonymous',
    client: c.client,
    action: access.action,
    repository: access.repository,
    reference,
    digest: c.served?.digest,
    // refused by the access check (or its login limit); an allowed request may still fail (404, 502)
    decision: c.denied === true || status === 401 || (status === 429 && c.principal === undefined) ? 'deny' : 'allow',
    status,
    bytes: c.served?.bytes ?? 0,
  })
}

/** A token request: a line per scope asked for, granted or not; a refused login, one line. */
function auditToken (log: AuditLog, c: Call, status: number): void {
  const base = { client: c.client, reference: undefined, digest: undefined, status, bytes: 0 }
  const grant = c.tokenGrant
  if (grant === undefined) {
    log.record({ ...base, who: c.principal?.name ?? 'anonymous', kind: c.principal?.kind ?? 'anonymous', action: 'token', repository: undefined, decision: 'deny' })
    return
  }
  for (const r of grant.requested) {
    const got = grant.granted.find(g => g.name === r.name)?.actions ?? []
    for (const action of r.actions) {
      log.record({ ...base, who: grant.principal.name, kind: grant.principal.kind, action: `token:${action}`, repository: r.name, decision: got.includes(action) ? 'allow' : 'deny' })
    }
  }
}

async function readForm (c: Call): Promise<string> {
  try {
    return (await readRequestBounded(c.req, c.res, 64 * 1024)).toString('utf8')
  } catch (err) {
    throw err instanceof BodyTooLarge ? new OciError('UNSUPPORTED', 413, 'token request too large') : err
  }
}

/** Most requests have no query; they share this one (never written to). */
const NO_QUERY: URLSearchParams = new URLSearchParams()

async function handle (s: Services, log: Logger, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const started = performance.now()
  const url = req.url ?? '/'
  const q = url.indexOf('?')
  const path = q === -1 ? url : url.slice(0, q)
  const endpoint = matchEndpoint(path)
  const call: Call = { req, res, query: q === -1 ? NO_QUERY : new URLSearchParams(url.slice(q + 1)), head: req.method === 'HEAD', log, client: req.socket.remoteAddress ?? '' }
  res.on('close', () => {
    const ms = performance.now() - started
    const status = res.headersSent ? res.statusCode : 499
    if (s.audit !== undefined) audit(s.audit, call, endpoint, status)
    s.metrics.requests.observe({ route: endpoint.kind, method: req.method ?? '', status: String(status) }, ms / 1000)
    // the hot path: build the line only when it will be written
    if (log.isLevelEnabled('info')) log.info({ method: req.method, path, ns: call.query.get('ns') ?? undefined, status, ...(call.principal !== undefined ? { who: call.principal.name } : {}), ms: Math.round(ms * 10) / 10, complete: res.writableFinished, ua: req.headers['user-agent'] }, 'request')
  })
  // upstream fetches this request causes are counted against who asked (upstream/miss-budget.ts)
  const asking = { who: call.client }
  try {
    await requester.run(asking, () => dispatch(s, call, endpoint, asking))
  } catch (err) {
    if (err instanceof LoginFailed || err instanceof LoginThrottled) {
      // the audit log says whose password was tried
      if (err.tried !== '') call.principal = { name: err.tried, kind: 'user' }
      call.denied = true
      if (err instanceof LoginThrottled) s.metrics.loginsRefused.inc({ reason: err.busy ? 'busy' : 'throttled' })
    }
    if (err instanceof QuotaExceeded) s.webhooks?.emit('quota.exceeded', err.namespace, { namespace: err.namespace, quota: err.quota, repository: call.access?.repository, who: call.principal?.name ?? 'anonymous', message: err.message })
    const { error, expected } = toOciError(err)
    if (!expected) log.error({ err, path }, 'unexpected error')
    else if (error.status >= 500) log.warn({ path, code: error.code, status: error.status, err: (err as Error).message, detail: error.detail }, 'request failed')
    sendError(res, error, call.head)
  }
}

/** What a request does to which repository (as named in its path), for the access check; undefined: not checked. */
function accessOf (e: Endpoint, method: string | undefined): Access | undefined {
  const read = method === 'GET' || method === 'HEAD'
  switch (e.kind) {
    case 'base': return { repository: undefined, action: 'pull' }
    case 'manifest': case 'blob': return { repository: e.name, action: read ? 'pull' : method === 'DELETE' ? 'delete' : 'push' }
    case 'tags': case 'referrers': return { repository: e.name, action: 'pull' }
    case 'upload': return { repository: e.name, action: 'push' }
    case 'catalog': return { repository: undefined, action: 'pull' }
    default: return undefined
  }
}

/**
 * The access with its repository as routed: the name it has in every path,
 * `<upstream prefix>/<upstream repository>`, whether the request reached it
 * by that prefix, by containerd's `?ns=` or as the default upstream. The
 * handlers route with the same name and `ns`, so what is judged is what is
 * served. A name that does not parse or route is judged as given (the
 * handler then refuses it).
 */
function routedAccess (s: Services, c: Call, access: Access): Access {
  if (access.repository === undefined) return access
  let name: string
  try { name = parseName(access.repository) } catch { return access }
  try {
    // uploads (push, also their status GET) route by path alone, as push.ts does
    return { repository: s.targets.resolve(name, access.action === 'pull' ? routingNs(c) : undefined).name, action: access.action }
  } catch {
    return access
  }
}

async function dispatch (s: Services, c: Call, e: Endpoint, asking: { who: string }): Promise<void> {
  if (s.gate !== undefined || s.audit !== undefined) {
    const given = accessOf(e, c.req.method)
    if (given !== undefined) c.access = routedAccess(s, c, given)
  }
  if (s.gate !== undefined) {
    const access = c.access
    if (access !== undefined) {
      try {
        c.auth = await s.gate.check(c.req.headers, c.client, access.repository, access.action)
        c.principal = c.auth.principal
        if (c.principal.kind !== 'anonymous') asking.who = `${c.principal.kind}:${c.principal.name}`
      } catch (err) {
        if (err instanceof DeniedTo) { c.principal = err.principal; c.denied = true }
        throw err
      }
    }
  }
  switch (e.kind) {
    case 'token': {
      if (s.gate === undefined) throw new OciError('UNSUPPORTED', 404, 'no token service is configured')
      const form = new URLSearchParams(c.query)
      if (c.req.method === 'POST') for (const [k, v] of new URLSearchParams(await readForm(c))) form.append(k, v)
      c.tokenGrant = await s.gate.token(c.req.headers, c.client, form)
      sendBody(c.res, 200, { 'content-type': 'application/json', 'cache-control': 'no-store' }, JSON.stringify(c.tokenGrant.token), c.head)
      return
    }
    case 'base':
      sendBody(c.res, 200, { 'content-type': 'application/json' }, '{}', c.head)
      return
    case 'manifest':
      if (c.req.method === 'PUT') return await handleManifestPut(s, c, e.name, e.reference)
      if (c.req.method === 'DELETE') return await handleDelete(s, c, 'manifest', e.name, e.reference)
      return await handleManifest(s, c, e.name, e.reference)
    case 'blob': return c.req.method === 'DELETE' ? await handleDelete(s, c, 'blob', e.name, e.digest) : await handleBlob(s, c, e.name, e.digest)
    case 'region-peer-fill': return await handleRegionPeerFill(s, c, e.digest)
    case 'tags': return await handleTags(s, c, e.name)
    case 'referrers': return await handleReferrers(s, c, e.name, e.digest)
    case 'upload': return await handleUpload(s, c, e.name, e.session)
    case 'catalog': return await handleCatalog(s, c)
    case 'metrics':
      if (!s.metricsAccess.here) throw new OciError('UNSUPPORTED', 404, 'no such endpoint')
      await serveMetrics(c.req, c.res, s.metricsText, s.metricsAccess.token)
      return
    case 'health':
      sendBody(c.res, 200, { 'content-type': 'text/plain' }, 'ok\n', c.head)
      return
    case 'ready': {
      const failing = await s.readiness.failing()
      sendBody(c.res, failing.length === 0 ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }, JSON.stringify({ ready: failing.length === 0, failing }), c.head)
      return
    }
    case 'console-api':
      if (s.console === undefined) throw new OciError('UNSUPPORTED', 404, 'the console is off here')
      return await s.console.api.handle(c, e.path)
    case 'console-ui':
      readOnly(c.req.method)
      if (s.console === undefined || !s.console.files.serve(e.path, c.req.headers['if-none-match'], c.res, c.head)) throw new OciError('UNSUPPORTED', 404, 'no such page')
      return
    case 'unknown':
      throw new OciError('UNSUPPORTED', 404, 'no such endpoint')
  }
}
