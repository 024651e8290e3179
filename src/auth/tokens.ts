// The Docker token flow's issuer and verifier: short-lived JWTs (jose) whose
// `access` claim lists, per repository, the actions the policy granted when
// the token was issued. The key is a PKCS#8 PEM file (EC P-256 or RSA).
import { createPrivateKey, createPublicKey, randomUUID, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { jwtVerify, SignJWT } from 'jose'
import type { Action } from './access.ts'

export interface Access { readonly type: 'repository', readonly name: string, readonly actions: readonly Action[] }

export interface TokenClaims { readonly subject: string | undefined, readonly access: readonly Access[] }

export class TokenService {
  readonly service: string
  private readonly ttlSeconds: number
  private readonly privateKey: KeyObject
  private readonly publicKey: KeyObject
  private readonly alg: string

  constructor (opts: { keyFile: string, service: string, ttlSeconds: number }) {
    this.service = opts.service
    this.ttlSeconds = opts.ttlSeconds
    this.privateKey = createPrivateKey(readFileSync(opts.keyFile))
    this.publicKey = createPublicKey(this.privateKey)
    this.alg = this.privateKey.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256'
  }

  get expiresIn (): number { return this.ttlSeconds }

  async issue (subject: string | undefined, access: readonly Access[]): Promise<string> {
    const jwt = new SignJWT({ access })
      .setProtectedHeader({ alg: this.alg, typ: 'JWT' })
      .setIssuer(this.service)
      .setAudience(this.service)
      .setIssuedAt()
      .setNotBefore('0s')
      .setExpirationTime(`${this.ttlSeconds}s`)
      .setJti(randomUUID())
    if (subject !== undefined) jwt.setSubject(subject)
    return await jwt.sign(this.privateKey)
  }

  /** The token's claims, or undefined when it is not one of ours, or expired. */
  async verify (token: string): Promise<TokenClaims | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.publicKey, { issuer: this.service, audience: this.service, algorithms: [this.alg] })
      const access = Array.isArray(payload.access) ? payload.access as Access[] : []
      return { subject: payload.sub, access }
    } catch {
      return undefined
    }
  }
}

/** `repository:<name>:<actions>` scopes from a token request. */
export function parseScopes (scopes: readonly string[]): { name: string, actions: Action[] }[] {
  const out: { name: string, actions: Action[] }[] = []
  for (const s of scopes) {
    for (const one of s.split(' ')) {
      const m = /^repository:([^:]+):([a-z*,]+)$/.exec(one)
      if (m === null) continue
      const asked = m[2]!.split(',')
      // "*" asks for everything the policy allows
      const actions = (asked.includes('*') ? ['pull', 'push', 'delete'] : asked).filter((a): a is Action => a === 'pull' || a === 'push' || a === 'delete')
      out.push({ name: m[1]!, actions })
    }
  }
  return out
}
