// Who is asking: identity sources behind one interface. The htpasswd file
// is the one built in (bcrypt hashes only); LDAP or OIDC would each be one
// more file implementing IdentitySource.
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import type { Logger } from '../observe/logger.ts'
import { bcryptCompare } from './bcrypt-pool.ts'
import { boundedCache } from '../common/bounded-cache.ts'

export interface Identity {
  readonly kind: 'user' | 'robot' | 'replicator'
  readonly name: string
  readonly groups: readonly string[]
  /** A robot's own scope: it may do exactly this, whatever the access rules say. */
  readonly scopes?: readonly { readonly repositories: readonly string[], readonly role: 'reader' | 'writer' | 'admin' }[]
}

export interface IdentitySource {
  /** The identity these credentials prove, or undefined. Never throws on bad input (AuthBusy when too many checks wait). */
  verify (user: string, password: string): Promise<Identity | undefined>
  /** Whether `user` still exists here (a token issued to a user removed since stops working). */
  knows (user: string): Promise<boolean>
}

/**
 * Users with bcrypt hashes, and their groups. A verified pair is remembered
 * for a minute (by a hash of it, never the password): bcrypt costs tens of
 * milliseconds, and Basic auth repeats the credentials on every request.
 * Comparisons run off the event loop (bcrypt-pool.ts); the gate makes sure
 * one credential is checked once at a time however many requests carry it.
 */
class BcryptUsers implements IdentitySource {
  protected users = new Map<string, string>()
  private readonly groups: ReadonlyMap<string, readonly string[]>
  protected readonly verified = boundedCache<string, Identity>(10_000, { ttl: 60_000 })

  constructor (groups: Readonly<Record<string, readonly string[]>>) {
    const byUser = new Map<string, string[]>()
    for (const [group, members] of Object.entries(groups)) for (const m of members) byUser.set(m, [...(byUser.get(m) ?? []), group])
    this.groups = byUser
  }

  protected refresh (): void {}

  async verify (user: string, password: string): Promise<Identity | undefined> {
    this.refresh()
    const key = createHash('sha256').update(`${user}\u0000${password}`).digest('hex')
    const known = this.verified.get(key)
    if (known !== undefined) return known
    const hash = this.users.get(user)
    if (hash === undefined || !await bcryptCompare(password, hash)) return undefined
    const identity: Identity = { kind: 'user', name: user, groups: this.groups.get(user) ?? [] }
    this.verified.set(key, identity)
    return identity
  }

  async knows (user: string): Promise<boolean> {
    this.refresh()
    return this.users.has(user)
  }
}

const BCRYPT = /^\$2[aby]\$\d\d\$/

/** Users written in the region file (`auth.users`: name -> bcrypt hash). */
export class StaticUsers extends BcryptUsers {
  constructor (users: Readonly<Record<string, string>>, groups: Readonly<Record<string, readonly string[]>>) {
    super(groups)
    for (const [name, hash] of Object.entries(users)) if (BCRYPT.test(hash)) this.users.set(name, hash)
  }
}

/** An htpasswd file of bcrypt entries, read again when it changes. */
export class HtpasswdSource extends BcryptUsers {
  private readonly path: string
  private readonly log: Logger
  private mtime = -1
  private lookedAt = 0

  constructor (path: string, groups: Readonly<Record<string, readonly string[]>>, log: Logger) {
    super(groups)
    this.path = path
    this.log = log
    this.refresh()
  }

  protected override refresh (): void {
    // a stat at most once a second, however many requests ask
    const now = Date.now()
    if (now - this.lookedAt < 1000) return
    this.lookedAt = now
    let m: number
    try { m = statSync(this.path).mtimeMs } catch { return }
    if (m === this.mtime) return
    this.mtime = m
    const users = new Map<string, string>()
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      const i = line.indexOf(':')
      if (i <= 0) continue
      const name = line.slice(0, i).trim()
      const hash = line.slice(i + 1).trim()
      if (!BCRYPT.test(hash)) { this.log.warn({ user: name }, 'htpasswd entry is not bcrypt; ignored'); continue }
      users.set(name, hash)
    }
    this.users = users
    this.verified.clear()
  }
}
