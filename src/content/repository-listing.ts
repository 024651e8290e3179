// The repositories the catalog and the console list. Both may answer
// anonymous callers, and the embedded state walks every repository folder to
// answer (150-280 ms and 10,000 thread-pool reads for 10,000 repositories):
// 16 clients asking for /v2/_catalog without pause, one walk after another,
// took a warm 256 MiB pull beside them from 2,500 MB/s to 12
// (npm run bench -- --catalog-flood). So callers that ask while a walk is
// under way share it, and a finished walk is kept while this process has
// made no repository folder, for twenty times what it took (one to thirty
// seconds): repeated listings cost no walk, and a repository another
// process (a worker, `ferry import`) adds shows within that time. Not for
// gc or quotas, which must read afresh.
import type { Links } from '../state/region-state.ts'

const KEEP_PER_WALK_MS = 20
const KEEP_MIN_MS = 1_000
const KEEP_MAX_MS = 30_000

interface Walk { readonly changes: number | undefined, readonly repositories: Promise<string[]> }

export class RepositoryListing {
  private readonly links: Pick<Links, 'repositories' | 'repositoryChanges'>
  private readonly onWalk: () => void
  private running: Walk | undefined
  private kept: { readonly changes: number, readonly repositories: string[], readonly until: number } | undefined

  /** `onWalk` hears each walk of the state (a metric). */
  constructor (links: Pick<Links, 'repositories' | 'repositoryChanges'>, onWalk: () => void = () => {}) {
    this.links = links
    this.onWalk = onWalk
  }

  /** Every repository the region state holds, sorted; shared with other callers, not to be changed. */
  async all (): Promise<readonly string[]> {
    for (;;) {
      const changes = this.links.repositoryChanges?.()
      const kept = this.kept
      if (kept !== undefined && kept.changes === changes && Date.now() < kept.until) return kept.repositories
      this.running ??= this.walk(changes)
      const walk = this.running
      const repositories = await walk.repositories
      // a walk that began before a repository this caller knows of was made may have missed it: walk again
      if (walk.changes === changes) return repositories
    }
  }

  private walk (changes: number | undefined): Walk {
    this.onWalk()
    const started = Date.now()
    const repositories = this.links.repositories().then(list => {
      if (changes !== undefined) {
        const keepMs = Math.min(KEEP_MAX_MS, Math.max(KEEP_MIN_MS, KEEP_PER_WALK_MS * (Date.now() - started)))
        this.kept = { changes, repositories: list, until: Date.now() + keepMs }
      }
      return list
    }).finally(() => { this.running = undefined })
    return { changes, repositories }
  }
}
