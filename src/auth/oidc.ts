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

/** An OpenID provider as its discovery document describes it (fetched once): its endpoints and its keys. */
export interface ProviderEndpoints {
  readonly authorizationEndpoint: string | undefined
  readonly tokenEndpoint: string | undefined
  readonly keys: ReturnType<typeof createRemoteJWKSet>
}

export class OidcProvider {
  readonly issuer: string
  private readonly log: Logger
  private found: ProviderEndpoints | undefined

  constructor (issuer: string, log: Logger) {
    this.issuer = issuer
    this.log = log
  }

  /** The provider's endpoints and keys; 503 while its discovery document cannot be read or does not match its issuer. */
  async endpoints (): Promise<ProviderEndpoints> {
    if (this.found !== undefined) return this.found
    const url = `${this.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`
    let doc: { issuer?: unknown, jwks_uri?: unknown, authorization_endpoint?: unknown, token_endpoint?: unknown }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) })
      if (!res.ok) throw new Error(`${url} answered ${res.status}`)
      doc = await res.json() as typeof doc
    } catch (err) {
      this.log.error({ err: (err as Error).message, issuer: this.issuer }, 'OpenID discovery failed')
      throw new OciError('UNAVAILABLE', 503, 'the OpenID provider is unavailable', { issuer: this.issuer })
    }
    if (doc.issuer !== this.issuer || typeof doc.jwks_uri !== 'string') throw new OciError('UNAVAILABLE', 503, 'the OpenID provider\'s discovery document does not match its issuer', { issuer: this.issuer })
    this.found = {
      authorizationEndpoint: typeof doc.authorization_endpoint === 'string' ? doc.authorization_endpoint : undefined,
      tokenEndpoint: typeof doc.token_endpoint === 'string' ? doc.token_endpoint : undefined,
      keys: createRemoteJWKSet(new URL(doc.jwks_uri), { timeoutDuration: 5000 }),
    }
    return this.found
  }
}

export class OidcSource implements IdentitySource {
  private readonly c: OidcConfig
  private readonly log: Logger
  /** The provider, shared with the console's sign-in (one discovery, one key set). */
  readonly provider: OidcProvider
  /** user -> when their latest verified token expires (ms). */
  private readonly until = boundedCache<string, number>(100_000)

  constructor (config: OidcConfig, log: Logger) {
    this.c = config
    this.log = log
    this.provider = new OidcProvider(config.issuer, log)
  }

  async verify (user: string, password: string): Promise<Identity | undefined> {
    if (!JWT.test(password)) return undefined
    const { keys } = await this.provider.endpoints()
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
