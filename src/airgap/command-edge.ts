// What mirror and export both run on: the command's own edge, a client of
// it, and progress on stderr that also tells of the upstream's rate limit
// (paced before a 429, waited out after one).
import type { RegionConfig } from '../config/region-config.ts'
import { serveForCommand, type LocalView } from '../serve.ts'
import { EdgeClient } from './edge-client.ts'
import { progressFor, type Progress } from './progress.ts'

export interface CommandEdge {
  readonly view: LocalView
  readonly client: EdgeClient
  readonly progress: Progress
  close (): Promise<void>
}

export async function openCommandEdge (config: RegionConfig): Promise<CommandEdge> {
  const progress = progressFor(process.stderr, 'images')
  const edge = await serveForCommand(config, (upstream, p) => { progress.log({ upstream, remaining: p.remaining, waitMs: p.waitMs }, 'the upstream\'s rate limit is nearly spent; pacing requests') })
  const client = new EdgeClient(edge.address)
  client.onSlowDown = ms => { progress.log({ waitMs: ms }, 'the upstream asked to slow down; waiting') }
  return {
    view: edge.view,
    client,
    progress,
    async close () {
      await client.close()
      await edge.close()
    },
  }
}
