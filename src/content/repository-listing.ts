// The repositories the catalog and the console list. The embedded state
// walks every repository folder to answer (170 ms and thousands of thread-
// pool reads for 10,000 repositories, queued ahead of fills' writes), and
// both endpoints may answer anonymous callers: callers that ask while a
// listing is under way share it, so a flood of them costs one walk at a
// time, not one each. Not for gc or quotas, which must read afresh.
import type { Links } from '../state/region-state.ts'

export class RepositoryListing {
  private readonly links: Pick<Links, 'repositories'>
  private readonly onWalk: () => void
  private running: Promise<string[]> | undefined

  /** `onWalk` hears each walk of the state (a metric). */
  constructor (links: Pick<Links, 'repositories'>, onWalk: () => void = () => {}) {
    this.links = links
    this.onWalk = onWalk
  }

  /** Every repository the region state holds, sorted; a copy the caller may change. */
  async all (): Promise<string[]> {
    this.running ??= this.walk()
    return [...await this.running]
  }

  private async walk (): Promise<string[]> {
    this.onWalk()
    try {
      return await this.links.repositories()
    } finally {
      this.running = undefined
    }
  }
}
