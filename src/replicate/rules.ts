// Which peers an event goes to: the first rule whose repository and tag
// patterns match names them.
import { globMatcher } from '../common/glob.ts'
import type { ReplicationRule } from '../config/region-config.ts'

export class Rules {
  private readonly compiled: { repositories: (name: string) => boolean, tags: (tag: string) => boolean, peers: readonly string[] }[]

  constructor (rules: readonly ReplicationRule[]) {
    this.compiled = rules.map(r => ({ repositories: globMatcher(r.repositories), tags: globMatcher(r.tags), peers: r.peers }))
  }

  /** Peers for a repository (and a tag, for tag events; manifests by digest match on the repository alone). */
  peersFor (name: string, tag: string | undefined): readonly string[] {
    for (const r of this.compiled) {
      if (!r.repositories(name)) continue
      if (tag !== undefined && !r.tags(tag)) continue
      return r.peers
    }
    return []
  }
}
