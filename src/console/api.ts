// The console's JSON API, /_ferry/api/v1/...: thin handlers over the
// content views, traffic, upstream health, replication lag, the audit log
// and robots. The same credentials and rules as the registry API (Basic,
// a token-flow token, or a console session cookie); a caller sees only the
// repositories the rules let it pull; robots and the audit log need an
// admin (access.ts, `administers`). Described in openapi.ts.
import type { Authenticated, Gate } from '../auth/gate.ts'
import { createRobot, revokeRobot, ROBOT_NAME, ROBOT_PREFIX } from '../auth/robots.ts'
import type { Upstream } from '../upstream/upstream.ts'
import { readRequestBounded, BodyTooLarge } from '../io/read-bounded.ts'
import { Denied, NameUnknown, OciError, Unauthorized } from '../oci/errors.ts'
import { parseDigest, parseName } from '../oci/reference.ts'
import { searchAudit } from '../observe/audit-read.ts'
import type { Metrics } from '../observe/metrics.ts'
import { lagOf } from '../replicate/lag.ts'
import type { RegionState, RobotRecord } from '../state/region-state.ts'
import type { Call } from '../http/handlers.ts'
import { sendBody } from '../http/respond.ts'
import type { ContentViews } from './content-views.ts'
import { openApiDocument } from './openapi.ts'
import { CSRF_HEADER, type Sessions } from './session.ts'
import type { Traffic } from './traffic.ts'
import type { ProxyRoll } from './figure-stores.ts'
import type { OidcSignIn } from './oidc-signin.ts'

import { API_PREFIX } from './paths.ts'

export interface ConsoleDeps {
  readonly region: string
  readonly gate: Gate | undefined
  readonly sessions: Sessions
  readonly views: ContentViews
  readonly traffic: Traffic
  /** The region's proxies that are alive. */
  readonly proxies: ProxyRoll
  readonly upstreams: readonly Upstream[]
  readonly state: RegionState
  readonly metrics: Metrics
  readonly cacheMaxBytes: number
  readonly peers: readonly string[]
  readonly auditFile: string | undefined
  /** Sign-in through an OpenID provider, and how to tell its source the user is known. */
  readonly oidc?: { readonly signIn: OidcSignIn, readonly remember: (user: string, untilMs: number) => void }
}

const ANONYMOUS: Authenticated = { principal: { name: 'anonymous', kind: 'anonymous' }, who: undefined, granted: undefined }

/** Who asks, and whether the answer may change something (a session's write shows its CSRF token). */
interface Caller { readonly auth: Authenticated, readonly viaSession: boolean, readonly csrf: string | undefined }

export class ConsoleApi {
  private readonly d: ConsoleDeps

  constructor (deps: ConsoleDeps) { this.d = deps }

  async handle (c: Call, path: string): Promise<void> {
    const route = path.slice(API_PREFIX.length)
    const method = c.req.method ?? 'GET'
    if (route === 'openapi.json') return this.json(c, 200, openApiDocument())
    if (route === 'session') {
      if (method === 'POST') return await this.login(c)
      if (method === 'DELETE') return this.logout(c)
    }
    if (route === 'session/oidc' || route === 'session/oidc/callback') {
      if (this.d.oidc === undefined) throw new OciError('UNSUPPORTED', 404, 'no sign-in through an OpenID provider is configured')
      if (method !== 'GET') throw new OciError('UNSUPPORTED', 405, 'GET only')
      if (route === 'session/oidc') {
        const { location, cookie } = await this.d.oidc.signIn.begin()
        c.res.writeHead(302, { location, 'set-cookie': cookie, 'cache-control': 'no-store', 'content-length': 0 })
        c.res.end()
        return
      }
      c.consoleAction = { action: 'login', reference: 'oidc' }
      const { who, expiresAt, clearCookie } = await this.d.oidc.signIn.finish(c.query, c.req.headers.cookie)
      c.principal = { name: who.name, kind: who.kind }
      this.d.oidc.remember(who.name, expiresAt)
      const { cookies } = await this.d.sessions.start(who)
      c.res.writeHead(302, { location: '/ui/#/', 'set-cookie': [...cookies, clearCookie], 'cache-control': 'no-store', 'content-length': 0 })
      c.res.end()
      return
    }
    const caller = await this.caller(c)
    if (method !== 'GET' && method !== 'HEAD') this.checkWrite(c, caller)
    switch (route) {
      case 'session':
        return this.json(c, 200, this.whoami(caller))
      case 'overview': return this.json(c, 200, await this.overview(this.signedIn(caller)))
      case 'repositories': {
        const q = c.query
        return this.json(c, 200, await this.d.views.repositories(r => this.visible(caller.auth, r), { q: q.get('q') ?? undefined, n: count(q.get('n'), 50), last: q.get('last') ?? undefined }))
      }
      case 'tags': {
        const repo = this.readable(caller.auth, c.query.get('repository'))
        return this.json(c, 200, { repository: repo, tags: await this.d.views.tags(repo) })
      }
      case 'image': {
        const repo = this.readable(caller.auth, c.query.get('repository'))
        const reference = c.query.get('reference') ?? ''
        if (reference.includes(':')) parseDigest(reference)
        return this.json(c, 200, await this.d.views.image(repo, reference))
      }
      case 'audit': {
        this.admin(caller)
        return this.json(c, 200, await this.audit(c.query))
      }
      case 'robots':
        this.admin(caller)
        if (method === 'POST') return await this.createRobot(c)
        return this.json(c, 200, { robots: (await this.d.state.robots.list()).map(robotView) })
    }
    if (route.startsWith('robots/') && method === 'DELETE') {
      this.admin(caller)
      const name = decodeURIComponent(route.slice('robots/'.length))
      c.consoleAction = { action: 'robot-revoke', reference: name }
      if (!ROBOT_NAME.test(name) || !await revokeRobot(this.d.state, name)) throw new OciError('NAME_UNKNOWN', 404, 'no such robot', { name })
      return this.json(c, 200, { revoked: name })
    }
    throw new OciError('UNSUPPORTED', 404, 'no such endpoint')
  }

  private json (c: Call, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
    sendBody(c.res, status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }, JSON.stringify(body), c.head)
  }

  /** Who the request is: a session cookie, else the registry's credentials, else anonymous. */
  private async caller (c: Call): Promise<Caller> {
    const gate = this.d.gate
    if (gate === undefined) return { auth: ANONYMOUS, viaSession: false, csrf: undefined }
    const session = await this.d.sessions.read(c.req.headers.cookie)
    if (session !== undefined && c.req.headers.authorization === undefined) {
      const auth = await gate.resumed(session.who)
      if (auth === undefined) throw new Unauthorized('this account no longer exists; log in again')
      c.principal = auth.principal
      return { auth, viaSession: true, csrf: session.csrf }
    }
    if (c.req.headers.authorization === undefined) return { auth: ANONYMOUS, viaSession: false, csrf: undefined }
    const auth = await gate.identify(c.req.headers, c.client)
    c.principal = auth.principal
    return { auth, viaSession: false, csrf: undefined }
  }

  /** A write: a JSON body or none, and from a session, its CSRF token in a header (a cookie alone is ambient). */
  private checkWrite (c: Call, caller: Caller): void {
    const type = c.req.headers['content-type']
    if (c.req.method === 'POST' && (type === undefined || !/^application\/json\b/i.test(type))) throw new OciError('UNSUPPORTED', 415, 'a write takes a JSON body (content-type: application/json)')
    if (caller.viaSession && c.req.headers[CSRF_HEADER] !== caller.csrf) throw new Denied(`a write from a console session needs its ${CSRF_HEADER} header`)
  }

  private signedIn (caller: Caller): Caller {
    if (this.d.gate !== undefined && caller.auth.who === undefined) throw new Unauthorized('log in to see the overview')
    return caller
  }

  private admin (caller: Caller): void {
    if (this.d.gate === undefined) throw new Denied('robots and the audit log need auth configured, and an admin')
    if (caller.auth.who === undefined) throw new Unauthorized('log in as an admin')
    if (!this.d.gate.isAdmin(caller.auth)) throw new Denied(`${caller.auth.principal.name} is not an admin (the rule for "**" must make them admin)`)
  }

  private visible (auth: Authenticated, repo: string): boolean {
    return this.d.gate === undefined || this.d.gate.ruleAllows(auth, repo, 'pull')
  }

  /** A repository named in the query that the caller may pull; one it may not is as unknown as one that does not exist. */
  private readable (auth: Authenticated, raw: string | null): string {
    const name = parseName(raw ?? '')
    if (!this.visible(auth, name)) throw new NameUnknown(name)
    return name
  }

  private whoami (caller: Caller): unknown {
    return {
      user: caller.auth.principal.name,
      kind: caller.auth.principal.kind,
      admin: this.d.gate !== undefined && caller.auth.who !== undefined && this.d.gate.isAdmin(caller.auth),
      authRequired: this.d.gate !== undefined,
      oidc: this.d.oidc !== undefined,
      csrf: caller.csrf,
    }
  }

  private async login (c: Call): Promise<void> {
    c.consoleAction = { action: 'login', reference: undefined }
    const gate = this.d.gate
    if (gate === undefined) throw new OciError('UNSUPPORTED', 404, 'no login: this ferry has no auth configured')
    if (!/^application\/json\b/i.test(c.req.headers['content-type'] ?? '')) throw new OciError('UNSUPPORTED', 415, 'log in with a JSON body (content-type: application/json)')
    const body = await readJson(c, 16 * 1024) as { username?: unknown, password?: unknown }
    if (typeof body.username !== 'string' || typeof body.password !== 'string' || body.username === '') throw new OciError('UNSUPPORTED', 400, 'username and password are required')
    c.principal = { name: body.username, kind: 'user' }
    const who = await gate.verifyLogin(body.username, body.password, c.client)
    if (who.kind === 'replicator') throw new Denied('the replication credential has no console')
    c.principal = { name: who.name, kind: who.kind }
    const auth: Authenticated = { principal: c.principal, who, granted: undefined }
    const { cookies, csrf } = await this.d.sessions.start(who)
    this.json(c, 200, { user: who.name, kind: who.kind, admin: gate.isAdmin(auth), authRequired: true, oidc: this.d.oidc !== undefined, csrf }, { 'set-cookie': cookies })
  }

  private logout (c: Call): void {
    this.json(c, 200, { loggedOut: true }, { 'set-cookie': this.d.sessions.end() })
  }

  private async overview (_caller: Caller): Promise<unknown> {
    const { windows, series } = await this.d.traffic.summary(24 * 3600_000)
    const gauge = async (g: { get: () => Promise<{ values: { value: number }[] }> }): Promise<number> => (await g.get()).values.reduce((n, v) => n + v.value, 0)
    const replication = await Promise.all(this.d.peers.map(async peer => {
      try {
        const lag = await lagOf(this.d.state, peer)
        return { peer, eventsBehind: lag.events, bytesBehind: lag.bytes, oldestMs: lag.oldestMs ?? null, deadLetters: lag.deadLetters }
      } catch {
        return { peer, eventsBehind: null, bytesBehind: null, oldestMs: null, deadLetters: null }
      }
    }))
    return {
      region: this.d.region,
      proxies: await this.d.proxies.seen().catch(() => []),
      cache: { bytes: await gauge(this.d.metrics.cacheBytes), blobs: await gauge(this.d.metrics.cacheBlobs), maxBytes: this.d.cacheMaxBytes },
      windows: Object.fromEntries(Object.entries(windows).map(([name, w]) => [name, { ...w.total, hitRatio: ratio(w.total.hits, w.total.misses), byUpstream: Object.fromEntries(Object.entries(w.byUpstream).map(([u, x]) => [u, { ...x, hitRatio: ratio(x.hits, x.misses) }])) }])),
      series,
      upstreams: this.d.upstreams.map(u => {
        const h = u.health.view()
        return { name: u.name, url: u.config.url.origin, prefix: u.config.prefix ?? null, ...nullable(h), rateLimit: h.rateLimit === undefined ? null : nullable(h.rateLimit) }
      }),
      replication,
    }
  }

  private async audit (q: URLSearchParams): Promise<unknown> {
    if (this.d.auditFile === undefined) return { records: [], total: 0, note: 'no audit file is configured (audit.file)' }
    const decision = q.get('decision') ?? undefined
    if (decision !== undefined && decision !== 'allow' && decision !== 'deny') throw new OciError('UNSUPPORTED', 400, 'decision is allow or deny')
    const time = (v: string | null): number | undefined => {
      if (v === null || v === '') return undefined
      const t = Date.parse(v)
      if (Number.isNaN(t)) throw new OciError('UNSUPPORTED', 400, `not a time: ${v.slice(0, 40)}`)
      return t
    }
    return await searchAudit(this.d.auditFile, {
      user: q.get('user') || undefined,
      repository: q.get('repository') || undefined,
      decision,
      fromMs: time(q.get('from')),
      toMs: time(q.get('to')),
    }, { offset: count(q.get('offset'), 0, 10_000), n: count(q.get('n'), 50) })
  }

  private async createRobot (c: Call): Promise<void> {
    const body = await readJson(c, 16 * 1024) as { name?: unknown, scopes?: unknown, expiresInDays?: unknown }
    const name = typeof body.name === 'string' ? body.name : ''
    c.consoleAction = { action: 'robot-create', reference: name }
    if (!ROBOT_NAME.test(name)) throw new OciError('UNSUPPORTED', 400, 'a robot name is 1 to 63 of [a-z0-9._-], starting with a letter or digit')
    if (!Array.isArray(body.scopes) || body.scopes.length === 0 || body.scopes.length > 20) throw new OciError('UNSUPPORTED', 400, 'scopes: 1 to 20 of {repositories: [pattern, ...], role: reader|writer|admin}')
    const scopes = body.scopes.map((sc: unknown) => {
      const { repositories, role } = (sc ?? {}) as { repositories?: unknown, role?: unknown }
      if (!Array.isArray(repositories) || repositories.length === 0 || !repositories.every(p => typeof p === 'string' && p.length > 0 && p.length <= 255)) throw new OciError('UNSUPPORTED', 400, 'a scope\'s repositories are 1 or more patterns')
      if (role !== 'reader' && role !== 'writer' && role !== 'admin') throw new OciError('UNSUPPORTED', 400, 'a scope\'s role is reader, writer or admin')
      return { repositories: repositories as string[], role: role as 'reader' | 'writer' | 'admin' }
    })
    const days = body.expiresInDays
    if (days !== undefined && days !== null && (typeof days !== 'number' || !(days > 0) || days > 3650)) throw new OciError('UNSUPPORTED', 400, 'expiresInDays is a number of days up to 3650')
    if ((await this.d.state.robots.list()).some(r => r.name === name && r.revokedAt === undefined)) throw new OciError('UNSUPPORTED', 409, `robot ${name} exists; revoke it first`)
    const made = await createRobot(this.d.state, name, scopes, typeof days === 'number' ? Date.now() + days * 86_400_000 : undefined)
    this.json(c, 201, { name, user: made.user, secret: made.secret, scopes })
  }
}

function robotView (r: RobotRecord): unknown {
  const now = Date.now()
  return {
    name: r.name,
    user: `${ROBOT_PREFIX}${r.name}`,
    scopes: r.scopes,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt ?? null,
    revokedAt: r.revokedAt ?? null,
    active: r.revokedAt === undefined && (r.expiresAt === undefined || r.expiresAt > now),
  }
}

function ratio (hits: number, misses: number): number | null {
  return hits + misses === 0 ? null : hits / (hits + misses)
}

function nullable<T extends object> (o: T): { [K in keyof T]: Exclude<T[K], undefined> | null } {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v ?? null])) as { [K in keyof T]: Exclude<T[K], undefined> | null }
}

/** A count from the query: absent, the default; otherwise a whole number from 0 to `max`. */
function count (raw: string | null, fallback: number, max = 500): number {
  if (raw === null || raw === '') return fallback
  if (!/^\d{1,7}$/.test(raw) || Number(raw) > max) throw new OciError('PAGINATION_NUMBER_INVALID', 400, `a count from 0 to ${max}`, { value: raw.slice(0, 20) })
  return Number(raw)
}

async function readJson (c: Call, limit: number): Promise<unknown> {
  let raw: Buffer
  try {
    raw = await readRequestBounded(c.req, c.res, limit)
  } catch (err) {
    throw err instanceof BodyTooLarge ? new OciError('UNSUPPORTED', 413, 'request body too large') : err
  }
  try {
    const v = JSON.parse(raw.toString('utf8')) as unknown
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object')
    return v
  } catch {
    throw new OciError('UNSUPPORTED', 400, 'the body is not a JSON object')
  }
}
