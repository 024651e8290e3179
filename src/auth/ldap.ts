// Users from an LDAP directory or Active Directory (ldapts): bind with the
// service account, find the user (exactly one entry under userBase), bind
// as that entry with the password, and read its groups from memberOf or a
// group search. The name a user types is escaped for the filter (RFC 4515)
// and an empty password is refused before the directory is asked (an LDAP
// bind with a DN and no password is an unauthenticated bind that succeeds).
// TLS: ldaps:// URLs, or StartTLS, verified against caFile. Results are
// kept for cacheTTL; a directory that does not answer is a 503, never a
// wrong password.
import { readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import { Client, InvalidCredentialsError } from 'ldapts'
import { OciError } from '../oci/errors.ts'
import type { Logger } from '../observe/logger.ts'
import { boundedCache } from '../common/bounded-cache.ts'
import type { Identity, IdentitySource } from './identity.ts'

export interface LdapConfig {
  readonly url: string
  readonly startTLS: boolean
  readonly caFile: string | undefined
  readonly bindDN: string
  readonly bindPasswordEnv: string
  readonly userBase: string
  /** `{user}` is replaced by the escaped user name. */
  readonly userFilter: string
  /** Groups from this attribute of the user's entry (DNs; the group is its first RDN's value). */
  readonly groupAttribute: string | undefined
  /** Or from a search: entries under `base` matching `filter` (`{dn}` the user's DN, `{user}` the name), named by `nameAttribute`. */
  readonly groupSearch: { readonly base: string, readonly filter: string, readonly nameAttribute: string } | undefined
  readonly cacheTTLMs: number
  readonly timeoutMs: number
}

/** RFC 4515: the characters a filter value must escape. */
export function escapeFilter (value: string): string {
  return value.replace(/[\\*()\u0000]/g, c => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}

/** The value of a DN's first RDN: "cn=team-a,ou=groups,dc=x" -> "team-a". */
function firstRdnValue (dn: string): string {
  const m = /^[^=]+=((?:\\.|[^,\\])*)/.exec(dn)
  return m === null ? dn : m[1]!.replace(/\\(.)/g, '$1')
}

const directoryDown = (err: unknown): OciError => new OciError('UNAVAILABLE', 503, 'the user directory (LDAP) is unavailable', { cause: (err as Error).message.slice(0, 200) })

export class LdapSource implements IdentitySource {
  private readonly c: LdapConfig
  private readonly log: Logger
  private readonly tls: { ca: Buffer } | undefined
  private readonly verified: ReturnType<typeof boundedCache<string, Identity>>
  private readonly known: ReturnType<typeof boundedCache<string, boolean>>

  constructor (config: LdapConfig, log: Logger) {
    this.c = config
    this.log = log
    this.tls = config.caFile === undefined ? undefined : { ca: readFileSync(config.caFile) }
    this.verified = boundedCache<string, Identity>(10_000, { ttl: config.cacheTTLMs })
    this.known = boundedCache<string, boolean>(10_000, { ttl: config.cacheTTLMs })
  }

  private async client<T> (use: (c: Client) => Promise<T>): Promise<T> {
    const client = new Client({ url: this.c.url, timeout: this.c.timeoutMs, connectTimeout: this.c.timeoutMs, ...(this.tls !== undefined && this.c.url.startsWith('ldaps:') ? { tlsOptions: { ca: this.tls.ca } } : {}) })
    try {
      // the certificate is checked against the URL's host (Node would check "localhost" for an upgraded socket)
      const host = new URL(this.c.url).hostname.replace(/^\[|\]$/g, '')
      if (this.c.startTLS) await client.startTLS({ host, ...(isIP(host) === 0 ? { servername: host } : {}), ...(this.tls !== undefined ? { ca: this.tls.ca } : {}) })
      return await use(client)
    } finally {
      await client.unbind().catch(() => {})
    }
  }

  /** The user's entry, found with the service account: undefined when none (or more than one) matches. */
  private async find (client: Client, user: string): Promise<{ dn: string, groups: string[] } | undefined> {
    const password = process.env[this.c.bindPasswordEnv] ?? ''
    await client.bind(this.c.bindDN, password)
    const filter = this.c.userFilter.replaceAll('{user}', escapeFilter(user))
    const attributes = this.c.groupAttribute !== undefined ? ['dn', this.c.groupAttribute] : ['dn']
    const { searchEntries } = await client.search(this.c.userBase, { scope: 'sub', filter, attributes, sizeLimit: 2 })
    if (searchEntries.length !== 1) return undefined
    const entry = searchEntries[0]!
    const raw = this.c.groupAttribute !== undefined ? entry[this.c.groupAttribute] : undefined
    const groups = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).map(v => firstRdnValue(String(v)))
    return { dn: entry.dn, groups }
  }

  async verify (user: string, password: string): Promise<Identity | undefined> {
    if (user === '' || password === '' || user.length > 256) return undefined
    const key = createHash('sha256').update(`${user}\u0000${password}`).digest('hex')
    const kept = this.verified.get(key)
    if (kept !== undefined) return kept
    let found: { dn: string, groups: string[] } | undefined
    try {
      found = await this.client(c => this.find(c, user))
    } catch (err) {
      this.log.error({ err: (err as Error).message, url: this.c.url }, 'LDAP search failed')
      throw directoryDown(err)
    }
    if (found === undefined) return undefined
    try {
      await this.client(async c => { await c.bind(found.dn, password) })
    } catch (err) {
      if (err instanceof InvalidCredentialsError) return undefined
      this.log.error({ err: (err as Error).message, url: this.c.url }, 'LDAP bind failed')
      throw directoryDown(err)
    }
    let groups = found.groups
    if (this.c.groupSearch !== undefined) {
      const gs = this.c.groupSearch
      try {
        groups = [...new Set([...groups, ...await this.client(async c => {
          await c.bind(this.c.bindDN, process.env[this.c.bindPasswordEnv] ?? '')
          const filter = gs.filter.replaceAll('{dn}', escapeFilter(found.dn)).replaceAll('{user}', escapeFilter(user))
          const { searchEntries } = await c.search(gs.base, { scope: 'sub', filter, attributes: [gs.nameAttribute] })
          return searchEntries.map(e => String(Array.isArray(e[gs.nameAttribute]) ? (e[gs.nameAttribute] as unknown[])[0] : e[gs.nameAttribute]))
        })])]
      } catch (err) {
        throw directoryDown(err)
      }
    }
    const identity: Identity = { kind: 'user', name: user, groups }
    this.verified.set(key, identity)
    this.known.set(user, true)
    return identity
  }

  async knows (user: string): Promise<boolean> {
    if (user === '' || user.startsWith('robot$')) return false
    const kept = this.known.get(user)
    if (kept !== undefined) return kept
    try {
      const found = await this.client(c => this.find(c, user)) !== undefined
      this.known.set(user, found)
      return found
    } catch (err) {
      this.log.error({ err: (err as Error).message, url: this.c.url }, 'LDAP search failed')
      // unknown while the directory is down: a token or session is not honoured blind
      return false
    }
  }
}
