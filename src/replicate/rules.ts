// Which peers an event goes to: the first rule whose repository and tag
// patterns match names them. Patterns are globs: `*` within one path
// segment, `**` across segments.
import type { ReplicationRule } from '../config/schema.ts'

export function globToRegExp (glob: string): RegExp {
  let re = ''
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!
    if (ch === '*') {
      if (glob[i + 1] === '*') { re += '.*'; i++ } else re += '[^/]*'
    } else {
      re += /[.+?^${}()|[\]\\]/.test(ch) ? `\\${ch}` : ch
    }
  }
  return new RegExp(`^${re}$`)
}

export class Rules {
  private readonly compiled: { repositories: RegExp[], tags: RegExp[], peers: readonly string[] }[]

  constructor (rules: readonly ReplicationRule[]) {
    this.compiled = rules.map(r => ({ repositories: r.repositories.map(globToRegExp), tags: r.tags.map(globToRegExp), peers: r.peers }))
  }

  /** Peers for a repository (and a tag, for tag events; manifests by digest match on the repository alone). */
  peersFor (name: string, tag: string | undefined): readonly string[] {
    for (const r of this.compiled) {
      if (!r.repositories.some(p => p.test(name))) continue
      if (tag !== undefined && !r.tags.some(p => p.test(tag))) continue
      return r.peers
    }
    return []
  }
}
