// The console's login session: a cookie holding a short JWT (jose, HS256)
// that names who logged in, and a CSRF token the page must echo in a header
// on every write. The cookie is HttpOnly, SameSite=Strict, and Secure when
// ferry serves HTTPS; a write also needs a JSON body, which no cross-site
// form can send. The signing key is the region's: derived from the region
// secret in Redis (every proxy of a region accepts the others' sessions), or
// a random key kept in the data folder (every worker, and a restart, keep
// the sessions).
import { createHmac, randomBytes } from 'node:crypto'
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { jwtVerify, SignJWT } from 'jose'
import type { Identity } from '../auth/identity.ts'

export const SESSION_COOKIE = 'ferry_session'
export const CSRF_COOKIE = 'ferry_csrf'
export const CSRF_HEADER = 'x-ferry-csrf'
const AUDIENCE = 'ferry-console'
export const SESSION_SECONDS = 8 * 3600

export interface Session {
  readonly who: Identity
  readonly csrf: string
}

/** Where the signing key comes from: the region secret (Redis), else a file. */
export type SessionKeySource = { readonly regionSecret: () => Promise<string | undefined> } | { readonly file: string }

export class Sessions {
  private readonly source: SessionKeySource
  private key: Uint8Array | undefined
  private readonly secure: boolean

  constructor (source: SessionKeySource, opts: { secure: boolean }) {
    this.source = source
    this.secure = opts.secure
  }

  private async signingKey (): Promise<Uint8Array> {
    if (this.key !== undefined) return this.key
    if ('regionSecret' in this.source) {
      const secret = await this.source.regionSecret()
      if (secret === undefined) throw new Error('the region secret is not readable yet')
      this.key = createHmac('sha256', secret).update('ferry console sessions').digest()
    } else {
      this.key = await fileKey(this.source.file)
    }
    return this.key
  }

  /** A new session for `who`: the cookies to set, and the CSRF token for the page. */
  async start (who: Identity): Promise<{ cookies: string[], csrf: string }> {
    const csrf = randomBytes(24).toString('base64url')
    const jwt = await new SignJWT({ kind: who.kind, groups: who.groups, csrf })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(who.name)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(`${SESSION_SECONDS}s`)
      .sign(await this.signingKey())
    return { cookies: [this.cookie(SESSION_COOKIE, jwt, true, SESSION_SECONDS), this.cookie(CSRF_COOKIE, csrf, false, SESSION_SECONDS)], csrf }
  }

  /** A short-lived signed value for `audience` (the OpenID sign-in's state), with the session key. */
  async seal (claims: Record<string, string>, audience: string, seconds: number): Promise<string> {
    return await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setAudience(audience).setIssuedAt().setExpirationTime(`${seconds}s`).sign(await this.signingKey())
  }

  /** What `seal` made, or undefined (forged, expired, for another audience). */
  async unseal (jwt: string, audience: string): Promise<Record<string, unknown> | undefined> {
    try {
      return (await jwtVerify(jwt, await this.signingKey(), { audience, algorithms: ['HS256'] })).payload
    } catch {
      return undefined
    }
  }

  /** A cookie for the sign-in's way to the provider and back: Lax, since the provider's redirect back is cross-site. */
  flowCookie (name: string, value: string, path: string, maxAge: number): string {
    return `${name}=${value}; Path=${path}; Max-Age=${maxAge}; SameSite=Lax; HttpOnly${this.secure ? '; Secure' : ''}`
  }

  /** Cookies that end the session in the browser. */
  end (): string[] {
    return [this.cookie(SESSION_COOKIE, '', true, 0), this.cookie(CSRF_COOKIE, '', false, 0)]
  }

  /** The session a Cookie header carries, or undefined (none, forged, expired). Robots' scopes are not carried: robots use their own credentials. */
  async read (cookieHeader: string | undefined): Promise<Session | undefined> {
    const jwt = cookieValue(cookieHeader, SESSION_COOKIE)
    if (jwt === undefined || jwt === '') return undefined
    try {
      const { payload } = await jwtVerify(jwt, await this.signingKey(), { audience: AUDIENCE, algorithms: ['HS256'] })
      const kind = payload.kind
      if (typeof payload.sub !== 'string' || (kind !== 'user' && kind !== 'robot') || typeof payload.csrf !== 'string') return undefined
      const groups = Array.isArray(payload.groups) ? payload.groups.filter((g): g is string => typeof g === 'string') : []
      return { who: { kind, name: payload.sub, groups }, csrf: payload.csrf }
    } catch {
      return undefined
    }
  }

  private cookie (name: string, value: string, httpOnly: boolean, maxAge: number): string {
    return `${name}=${value}; Path=/; Max-Age=${maxAge}; SameSite=Strict${httpOnly ? '; HttpOnly' : ''}${this.secure ? '; Secure' : ''}`
  }
}

/** One cookie's value from a Cookie header. */
export function cookieValue (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

/** The key in `file`, made (32 random bytes, mode 0600) by whichever process gets there first; never seen half-written. */
async function fileKey (file: string): Promise<Uint8Array> {
  try {
    return await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  await mkdir(dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`
  await writeFile(tmp, randomBytes(32), { mode: 0o600 })
  try {
    await link(tmp, file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  } finally {
    await unlink(tmp).catch(() => {})
  }
  return await readFile(file)
}
