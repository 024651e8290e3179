// Which peers an event goes to: the first rule whose repository and tag
// patterns match names them. Deletes go only where that rule says
// `deletes: true`.
import { globMatcher } from '../common/glob.ts'
import type { ReplicationRule } from '../config/region-config.ts'

export class Rules {
  private readonly compiled: { repositories: (name: string) => boolean, tags: (tag: string) => boolean, peers: readonly string[], deletes: boolean }[]

  constructor (rules: readonly ReplicationRule[]) {
    this.compiled = rules.map(r => ({ repositories: globMatcher(r.repositories), tags: globMatcher(r.tags), peers: r.peers, deletes: r.deletes }))
  }

  private first (name: string, tag: string | undefined): { peers: readonly string[], deletes: boolean } | undefined {
    for (const r of this.compiled) {
      if (!r.repositories(name)) continue
      if (tag !== undefined && !r.tags(tag)) continue
      return r
    }
    return undefined
  }

  /** Peers for a repository (and a tag, for tag events; manifests by digest match on the repository alone). */
  peersFor (name: string, tag: string | undefined): readonly string[] {
    return this.first(name, tag)?.peers ?? []
  }

  /** Peers a delete of this tag (or of a manifest, by digest) goes to. */
  deletesFor (name: string, tag: string | undefined): readonly string[] {
    const rule = this.first(name, tag)
    return rule?.deletes === true ? rule.peers : []
  }
}
