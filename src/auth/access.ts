// Who may do what where: roles bound to users, groups and anonymous per
// repository pattern. Deny by default; the first rule whose pattern matches
// the repository decides.
import { globToRegExp } from '../common/glob.ts'
import type { Identity } from './identity.ts'

export type Action = 'pull' | 'push' | 'delete'
export type Role = 'reader' | 'writer' | 'admin'

export interface AccessRule {
  readonly repositories: readonly string[]
  /** "user:<name>", "group:<name>", "robot:<name>", "anonymous" or "replicator" (the replication credential) -> role. */
  readonly allow: Readonly<Record<string, Role>>
}

const GRANTS: Record<Role, readonly Action[]> = { reader: ['pull'], writer: ['pull', 'push'], admin: ['pull', 'push', 'delete'] }

export class AccessPolicy {
  private readonly rules: { patterns: RegExp[], allow: Readonly<Record<string, Role>> }[]

  private readonly sources: readonly AccessRule[]

  constructor (rules: readonly AccessRule[]) {
    this.sources = rules
    this.rules = rules.map(r => ({ patterns: r.repositories.map(globToRegExp), allow: r.allow }))
    this.replicatorBound = rules.some(r => r.allow.replicator !== undefined)
  }

  /** Some rule names the replication credential: then it may do what the rules say, no more. */
  private readonly replicatorBound: boolean

  /**
   * Whether `who` administers this ferry as a whole: a robot scoped `admin`
   * on `**`, or an identity the first rule naming `**` makes `admin`. An
   * admin of some repositories is not one: robots and the audit log span
   * all of them.
   */
  administers (who: Identity | undefined): boolean {
    if (who === undefined || who.kind === 'replicator') return false
    if (who.scopes !== undefined) return who.scopes.some(sc => sc.role === 'admin' && sc.repositories.includes('**'))
    const rule = this.sources.find(r => r.repositories.includes('**'))
    if (rule === undefined) return false
    const keys = [`${who.kind}:${who.name}`, ...who.groups.map(g => `group:${g}`)]
    return keys.some(k => rule.allow[k] === 'admin')
  }

  /** The actions `who` (undefined: anonymous) may take on `repository`. */
  actions (who: Identity | undefined, repository: string): Action[] {
    // the replication credential pulls and pushes everywhere unless a rule binds "replicator"
    if (who?.kind === 'replicator' && !this.replicatorBound) return ['pull', 'push', 'delete']
    if (who?.scopes !== undefined) {
      const scope = who.scopes.find(sc => sc.repositories.some(p => globToRegExp(p).test(repository)))
      return scope === undefined ? [] : [...GRANTS[scope.role]]
    }
    const rule = this.rules.find(r => r.patterns.some(p => p.test(repository)))
    if (rule === undefined) return []
    const keys = who === undefined ? ['anonymous'] : who.kind === 'replicator' ? ['replicator'] : [`${who.kind}:${who.name}`, ...who.groups.map(g => `group:${g}`), 'anonymous']
    const out = new Set<Action>()
    for (const k of keys) {
      const role = rule.allow[k]
      if (role !== undefined) for (const a of GRANTS[role]) out.add(a)
    }
    return [...out]
  }
}
