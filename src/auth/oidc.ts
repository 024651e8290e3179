// Users of an OpenID provider, for `docker login`: the password is a token
// the provider issued (an ID token, or a JWT access token) for this ferry
// (its audience), checked with jose against the provider's published keys
// (found through its discovery document, refreshed as the provider rotates
// them). The user name given must be the token's user (usernameClaim), so
// a token cannot be replayed under another name; groups come from
// groupsClaim. A user counts as known until their latest token expires.
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose'
import { OciError } from '../oci/errors.ts'
import type { Logger } from '../observe/logger.ts'
import { boundedCache } from '../common/bounded-cache.ts'
import type { Identity, IdentitySource } from './identity.ts'

export interface OidcConfig {
  readonly issuer: string
  /** The audience tokens must be for (the client id ferry is registered as). */
  readonly audience: string
  readonly usernameClaim: string
  readonly groupsClaim: string
  /** The console's sign-in through the provider: both set, or it is off. */
  readonly clientSecretEnv: string | undefined
  readonly redirectUri: string | undefined
}

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

export class OidcSource implements IdentitySource {
  private readonly c: OidcConfig
  private readonly log: Logger
  private keys: ReturnType<typeof createRemoteJWKSet> | undefined
  /** user -> when their latest verified token expires (ms). */
  private readonly until = boundedCache<string, number>(100_000)

  constructor (config: OidcConfig, log: Logger) {
    this.c = config
    this.log = log
  }

  private async jwks (): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.keys !== undefined) return this.keys
    const url = `${this.c.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`
    let doc: { issuer?: unknown, jwks_uri?: unknown }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) })
      if (!res.ok) throw new Error(`${url} answered ${res.status}`)
      doc = await res.json() as typeof doc
    } catch (err) {
      this.log.error({ err: (err as Error).message, issuer: this.c.issuer }, 'OpenID discovery failed')
      throw new OciError('UNAVAILABLE', 503, 'the OpenID provider is unavailable', { issuer: this.c.issuer })
    }
    if (doc.issuer !== this.c.issuer || typeof doc.jwks_uri !== 'string') throw new OciError('UNAVAILABLE', 503, 'the OpenID provider\'s discovery document does not match its issuer', { issuer: this.c.issuer })
    this.keys = createRemoteJWKSet(new URL(doc.jwks_uri), { timeoutDuration: 5000 })
    return this.keys
  }

  async verify (user: string, password: string): Promise<Identity | undefined> {
    if (!JWT.test(password)) return undefined
    const keys = await this.jwks()
    let claims: JWTPayload
    try {
      ({ payload: claims } = await jwtVerify(password, keys, { issuer: this.c.issuer, audience: this.c.audience }))
    } catch (err) {
      this.log.info({ err: (err as Error).message }, 'a token from the OpenID provider did not verify')
      return undefined
    }
    const name = claims[this.c.usernameClaim] ?? claims.sub
    if (typeof name !== 'string' || name !== user) return undefined
    const raw = claims[this.c.groupsClaim]
    const groups = Array.isArray(raw) ? raw.filter((g): g is string => typeof g === 'string') : []
    const exp = typeof claims.exp === 'number' ? claims.exp * 1000 : Date.now()
    this.until.set(user, Math.max(exp, this.until.get(user) ?? 0))
    return { kind: 'user', name, groups }
  }

  /** A user the console signed in through the provider, known until their ID token expires. */
  remember (user: string, untilMs: number): void {
    this.until.set(user, Math.max(untilMs, this.until.get(user) ?? 0))
  }

  async knows (user: string): Promise<boolean> {
    return (this.until.get(user) ?? 0) > Date.now()
  }
}
