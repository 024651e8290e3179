// Every request's access decision, and the token endpoint of the Docker
// token flow. Without a token service, clients send Basic credentials on
// every request; with one, they trade them (or nothing, for anonymous
// access) at /token for a short-lived JWT. Not authenticated: 401 with the
// challenge a client needs; authenticated but not allowed: 403 DENIED.
import type { IncomingHttpHeaders } from 'node:http'
import { LRUCache } from 'lru-cache'
import { Denied, OciError, TooManyRequests, Unauthorized } from '../oci/errors.ts'
import type { AccessPolicy, Action } from './access.ts'
import type { Identity, IdentitySource } from './identity.ts'
import { decodeBasic, sameSecret } from './credentials.ts'
import { ROBOT_PREFIX } from './robots.ts'
import { parseScopes, type Access, type TokenService } from './tokens.ts'

/** What a decision tells the logs: who, never how they proved it. */
export interface Principal { readonly name: string, readonly kind: Identity['kind'] | 'anonymous' }

/** Who a request proved to be, and the scopes its token grants (undefined without a token). */
export interface Authenticated {
  readonly principal: Principal
  readonly who: Identity | undefined
  readonly granted: readonly Access[] | undefined
}

const ANONYMOUS: Principal = { name: 'anonymous', kind: 'anonymous' }
/** Failed logins allowed per client address, and per user name, in a window; then 429 until it passes. */
const FAILURES_ALLOWED = 10
const FAILURE_WINDOW_MS = 60_000
const REPLICATOR: Identity = { kind: 'replicator', name: 'replicator', groups: [] }

export class Gate {
  private readonly identities: IdentitySource
  private readonly policy: AccessPolicy
  private readonly tokens: TokenService | undefined
  private readonly realm: string | undefined
  private readonly replicationSecret: () => string | undefined
  /** A robot named in a token must still be valid (not revoked, not expired) when the token is used. */
  private readonly robotValid: ((user: string) => Promise<boolean>) | undefined
  private readonly failures = new LRUCache<string, { count: number, since: number }>({ max: 100_000, ttl: FAILURE_WINDOW_MS })

  constructor (opts: { identities: IdentitySource, policy: AccessPolicy, tokens?: TokenService, realm?: string, replicationSecret: () => string | undefined, robotValid?: (user: string) => Promise<boolean> }) {
    this.robotValid = opts.robotValid
    this.identities = opts.identities
    this.policy = opts.policy
    this.tokens = opts.tokens
    this.realm = opts.realm
    this.replicationSecret = opts.replicationSecret
  }

  private challenge (host: string | undefined, repository: string | undefined, action: Action): Record<string, string> {
    if (this.tokens === undefined) return { 'www-authenticate': 'Basic realm="ferry"' }
    const realm = this.realm ?? `http://${host ?? 'localhost'}/token`
    const scope = repository === undefined ? '' : `,scope="repository:${repository}:${action}"`
    return { 'www-authenticate': `Bearer realm="${realm}",service="${this.tokens.service}"${scope}` }
  }

  /** Basic credentials: the replication secret, or an identity source's user; throws on wrong ones. */
  private async basic (header: string, host: string | undefined, client: string): Promise<Identity> {
    const { user, password } = decodeBasic(header)
    const secret = this.replicationSecret()
    if (secret !== undefined && sameSecret(password, secret)) return REPLICATOR
    return await this.login(user, password, host, client)
  }

  /** An identity source's verdict, behind a limit on failed attempts per client address and per user. */
  private async login (user: string, password: string, host: string | undefined, client: string): Promise<Identity> {
    const keys = [`addr ${client}`, `user ${user}`]
    for (const k of keys) {
      const f = this.failures.get(k)
      if (f !== undefined && f.count >= FAILURES_ALLOWED) {
        const retryAfter = Math.max(1, Math.ceil((f.since + FAILURE_WINDOW_MS - Date.now()) / 1000))
        throw new TooManyRequests(String(retryAfter), { reason: 'too many failed logins' })
      }
    }
    const who = await this.identities.verify(user, password)
    if (who === undefined) {
      for (const k of keys) {
        const f = this.failures.get(k)
        this.failures.set(k, f === undefined ? { count: 1, since: Date.now() } : { count: f.count + 1, since: f.since }, { noUpdateTTL: f !== undefined })
      }
      throw new Unauthorized('invalid username or password', this.challenge(host, undefined, 'pull'))
    }
    return who
  }

  /**
   * May this request take `action` on `repository` (undefined: the /v2/
   * base check)? Resolves with who asked (kept for further checks of the same
   * request, such as the source of a mount); throws Unauthorized or Denied.
   */
  async check (headers: IncomingHttpHeaders, client: string, repository: string | undefined, action: Action): Promise<Authenticated> {
    const auth = await this.authenticate(headers, client, repository, action)
    const host = headers.host
    const { who, granted, principal } = auth
    if (repository === undefined) {
      // the base check tells clients how to authenticate: a client that sent nothing gets the challenge
      // (it then sends credentials, or none: anonymous requests are judged per repository)
      if (who !== undefined || granted !== undefined || headers.authorization !== undefined) return auth
      throw new Unauthorized('authentication required', this.challenge(host, undefined, action))
    }
    if (this.permits(auth, repository, action)) return auth
    // a token without this scope: a new token may carry it, if the policy allows; otherwise a plain no
    if (who !== undefined) throw denied(principal, action, repository)
    throw new Unauthorized('authentication required', this.challenge(host, repository, action))
  }

  /** Whether the rules let who asked take `action` on `repository`, whatever their token names (the catalog's filter). */
  ruleAllows (auth: Authenticated, repository: string, action: Action): boolean {
    return this.policy.actions(auth.who, repository).includes(action)
  }

  /** Whether who asked (as `check` found them) may take `action` on `repository`. */
  permits (auth: Authenticated, repository: string, action: Action): boolean {
    if (auth.granted !== undefined) return auth.granted.some(a => a.name === repository && a.actions.includes(action))
    // with a token service, rights come in tokens; without one, anonymous is judged by the rules
    if (this.tokens !== undefined && auth.who === undefined) return false
    return this.policy.actions(auth.who, repository).includes(action)
  }

  /** Who the credentials prove (none: anonymous), and the scopes of a token; throws on credentials that prove nothing. */
  private async authenticate (headers: IncomingHttpHeaders, client: string, repository: string | undefined, action: Action): Promise<Authenticated> {
    const host = headers.host
    const auth = headers.authorization
    let who: Identity | undefined
    let granted: readonly Access[] | undefined
    if (auth !== undefined && /^basic /i.test(auth)) {
      // "Basic :" (no user, no password) is what some clients send when they have no credentials: anonymous
      who = emptyBasic(auth) ? undefined : await this.basic(auth, host, client)
    } else if (auth !== undefined && /^bearer /i.test(auth)) {
      const token = auth.slice(7).trim()
      const secret = this.replicationSecret()
      if (secret !== undefined && sameSecret(token, secret)) {
        who = REPLICATOR
      } else {
        const claims = this.tokens === undefined ? undefined : await this.tokens.verify(token)
        if (claims === undefined) throw new Unauthorized('invalid or expired token', this.challenge(host, repository, action))
        granted = claims.access
        const robot = claims.subject?.startsWith(ROBOT_PREFIX) === true
        if (robot && this.robotValid !== undefined && !await this.robotValid(claims.subject!)) {
          throw new Unauthorized('this robot account is revoked or expired', this.challenge(host, repository, action))
        }
        who = claims.subject === undefined ? undefined : { kind: robot ? 'robot' : 'user', name: claims.subject, groups: [] }
      }
    } else if (auth !== undefined) {
      throw new Unauthorized('unsupported authorization scheme', this.challenge(host, repository, action))
    }
    return { principal: who === undefined ? ANONYMOUS : { name: who.name, kind: who.kind }, who, granted }
  }

  /**
   * The token endpoint: credentials (Basic, or a password grant's form) or
   * none for anonymous; each requested scope is granted as far as the policy
   * allows this identity.
   */
  async token (headers: IncomingHttpHeaders, client: string, form: URLSearchParams): Promise<{ token: string, access_token: string, expires_in: number, issued_at: string }> {
    if (this.tokens === undefined) throw new OciError('UNSUPPORTED', 404, 'no token service is configured')
    let who: Identity | undefined
    const auth = headers.authorization
    if (auth !== undefined && /^basic /i.test(auth) && !emptyBasic(auth)) {
      who = await this.basic(auth, headers.host, client)
    } else if (form.get('grant_type') === 'password') {
      who = await this.login(form.get('username') ?? '', form.get('password') ?? '', headers.host, client)
    }
    const access: Access[] = []
    for (const s of parseScopes(form.getAll('scope'))) {
      const allowed = this.policy.actions(who, s.name)
      const actions = s.actions.filter(a => allowed.includes(a))
      if (actions.length > 0) access.push({ type: 'repository', name: s.name, actions })
    }
    const token = await this.tokens.issue(who?.name, access)
    return { token, access_token: token, expires_in: this.tokens.expiresIn, issued_at: new Date().toISOString() }
  }
}

/** A refusal that still says who was refused (for the audit log). */
export class DeniedTo extends Denied {
  readonly principal: Principal
  constructor (principal: Principal, message: string) {
    super(message)
    this.principal = principal
  }
}

function denied (principal: Principal, action: Action, repository: string): DeniedTo {
  return new DeniedTo(principal, `${principal.name} may not ${action} ${repository}`)
}

function emptyBasic (header: string): boolean {
  return decodeBasic(header).raw === ':'
}
