// Every request's access decision, and the token endpoint of the Docker
// token flow. Without a token service, clients send Basic credentials on
// every request; with one, they trade them (or nothing, for anonymous
// access) at /token for a short-lived JWT. Not authenticated: 401 with the
// challenge a client needs; authenticated but not allowed: 403 DENIED.
import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { Denied, OciError, Unauthorized } from '../oci/errors.ts'
import type { AccessPolicy, Action } from './access.ts'
import type { Identity, IdentitySource } from './identity.ts'
import { AuthBusy } from './bcrypt-pool.ts'
import { decodeBasic, sameSecret } from './credentials.ts'
import { LoginThrottled, type LoginLimits } from './login-limits.ts'
import { ROBOT_PREFIX } from './robots.ts'
import { parseScopes, type Access, type TokenService } from './tokens.ts'
import { boundedCache } from '../common/bounded-cache.ts'

/** What a decision tells the logs: who, never how they proved it. */
export interface Principal { readonly name: string, readonly kind: Identity['kind'] | 'anonymous' }

/** Who a request proved to be, and the scopes its token grants (undefined without a token). */
export interface Authenticated {
  readonly principal: Principal
  readonly who: Identity | undefined
  readonly granted: readonly Access[] | undefined
}

const ANONYMOUS: Principal = { name: 'anonymous', kind: 'anonymous' }
const REPLICATOR: Identity = { kind: 'replicator', name: 'replicator', groups: [] }
/** What a Host header may be to go into a challenge's realm: a name or an address, and a port. */
const SAFE_HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/

/** A login that failed, with the name that was tried (for the audit log). */
export class LoginFailed extends Unauthorized {
  readonly tried: string
  constructor (tried: string, headers: Record<string, string>) {
    super('invalid username or password', headers)
    this.tried = tried
  }
}

/** What a token request asked for and what it got, for the audit log. */
export interface TokenGrant {
  readonly token: { token: string, access_token: string, expires_in: number, issued_at: string }
  readonly principal: Principal
  readonly requested: readonly { name: string, actions: readonly Action[] }[]
  readonly granted: readonly Access[]
}

export class Gate {
  private readonly identities: IdentitySource
  private readonly policy: AccessPolicy
  private readonly tokens: TokenService | undefined
  private readonly realm: string | undefined
  private readonly replicationSecret: () => string | undefined
  private readonly limits: LoginLimits
  private readonly scheme: 'http' | 'https'
  /** Credentials verified in the last minute, by a hash of them (never the password itself). */
  private readonly verified = boundedCache<string, Identity>(10_000, { ttl: 60_000 })
  /** Checks running, by the same hash: concurrent requests with the same credentials share one. */
  private readonly checking = new Map<string, Promise<Identity | undefined>>()

  constructor (opts: { identities: IdentitySource, policy: AccessPolicy, tokens?: TokenService, realm?: string, replicationSecret: () => string | undefined, limits: LoginLimits, tls: boolean }) {
    this.limits = opts.limits
    this.scheme = opts.tls ? 'https' : 'http'
    this.identities = opts.identities
    this.policy = opts.policy
    this.tokens = opts.tokens
    this.realm = opts.realm
    this.replicationSecret = opts.replicationSecret
  }

  private challenge (host: string | undefined, repository: string | undefined, action: Action): Record<string, string> {
    if (this.tokens === undefined) return { 'www-authenticate': 'Basic realm="ferry"' }
    // the client's own Host, only when it is a plain host (a quote in it would rewrite the challenge)
    const realm = this.realm ?? `${this.scheme}://${host !== undefined && SAFE_HOST.test(host) ? host : 'localhost'}/token`
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

  /**
   * An identity source's verdict. Credentials verified in the last minute
   * (and whose account still exists) pass at once; a check already running
   * for the same credentials is joined; only a new check passes the login
   * limits (login-limits.ts), so a client sending one good password on many
   * requests at once is never taken for a guesser.
   */
  private async login (user: string, password: string, host: string | undefined, client: string): Promise<Identity> {
    const key = createHash('sha256').update(`${user}\u0000${password}`).digest('base64')
    const remembered = this.verified.get(key)
    if (remembered !== undefined && await this.identities.knows(user)) return remembered
    let check = this.checking.get(key)
    if (check === undefined) {
      const settle = this.limits.admit(user, client)
      check = this.identities.verify(user, password).then(who => {
        settle(who === undefined ? 'failed' : 'ok')
        if (who !== undefined) this.verified.set(key, who)
        return who
      }, (err: unknown) => {
        settle('uncounted')
        throw err instanceof AuthBusy ? new LoginThrottled(user, 1, 'too many password checks waiting', true) : err
      }).finally(() => this.checking.delete(key))
      this.checking.set(key, check)
    }
    const who = await check
    if (who === undefined) throw new LoginFailed(user, this.challenge(host, undefined, 'pull'))
    return who
  }

  /** A token's account still exists (not revoked, not expired, not removed from its source): checked on every use. */
  private async known (subject: string): Promise<boolean> {
    return await this.identities.knows(subject)
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

  /**
   * Who the request's credentials prove, with no repository in question
   * (the console's API); throws Unauthorized on credentials that prove
   * nothing. No challenge header: a browser must never be led to prompt for
   * and then resend Basic credentials on its own (that would make them as
   * ambient as a cookie).
   */
  async identify (headers: IncomingHttpHeaders, client: string): Promise<Authenticated> {
    try {
      return await this.authenticate(headers, client, undefined, 'pull')
    } catch (err) {
      if (err instanceof Unauthorized && !(err instanceof LoginFailed)) throw new Unauthorized(err.message, {})
      if (err instanceof LoginFailed) throw new LoginFailed(err.tried, {})
      throw err
    }
  }

  /** A user name and password from a login form (the console's): limited as any login; undefined when wrong. */
  async verifyLogin (user: string, password: string, client: string): Promise<Identity> {
    try {
      return await this.login(user, password, undefined, client)
    } catch (err) {
      if (err instanceof LoginFailed) throw new LoginFailed(err.tried, {})
      throw err
    }
  }

  /** An identity carried by a console session: still known to its source (a removed user or revoked robot loses it at once). */
  async resumed (who: Identity): Promise<Authenticated | undefined> {
    if (!await this.identities.knows(who.name)) return undefined
    return { principal: { name: who.name, kind: who.kind }, who, granted: undefined }
  }

  /** Whether who asked administers this ferry (robots, the audit log): the rules give them `admin` on `**`. */
  isAdmin (auth: Authenticated): boolean {
    return this.policy.administers(auth.who)
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
        // a token that is not ours, or expired: cheap to check, but counted against the address (secret and token guessing)
        const settle = this.limits.admitCheap(client, 'token')
        const claims = this.tokens === undefined ? undefined : await this.tokens.verify(token)
        settle(claims === undefined ? 'failed' : 'ok')
        if (claims === undefined) throw new Unauthorized('invalid or expired token', this.challenge(host, repository, action))
        granted = claims.access
        const robot = claims.subject?.startsWith(ROBOT_PREFIX) === true
        if (claims.subject !== undefined && !await this.known(claims.subject)) {
          throw new Unauthorized(robot ? 'this robot account is revoked or expired' : 'this user no longer exists', this.challenge(host, repository, action))
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
  async token (headers: IncomingHttpHeaders, client: string, form: URLSearchParams): Promise<TokenGrant> {
    if (this.tokens === undefined) throw new OciError('UNSUPPORTED', 404, 'no token service is configured')
    let who: Identity | undefined
    const auth = headers.authorization
    if (auth !== undefined && /^basic /i.test(auth) && !emptyBasic(auth)) {
      who = await this.basic(auth, headers.host, client)
    } else if (form.get('grant_type') === 'password') {
      who = await this.login(form.get('username') ?? '', form.get('password') ?? '', headers.host, client)
    }
    const access: Access[] = []
    const requested = parseScopes(form.getAll('scope'))
    for (const s of requested) {
      const allowed = this.policy.actions(who, s.name)
      const actions = s.actions.filter(a => allowed.includes(a))
      if (actions.length > 0) access.push({ type: 'repository', name: s.name, actions })
    }
    const token = await this.tokens.issue(who?.name, access)
    return {
      token: { token, access_token: token, expires_in: this.tokens.expiresIn, issued_at: new Date().toISOString() },
      principal: who === undefined ? ANONYMOUS : { name: who.name, kind: who.kind },
      requested,
      granted: access,
    }
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
