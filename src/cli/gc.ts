// ferry gc: one garbage collection of the region's hosted repositories, now.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { loadRegion } from '../config/load.ts'
import { createLogger } from '../observe/logger.ts'
import { defineCommand, requireConfig } from './command.ts'

const usage = `usage: ferry gc --config FILE [--dry-run]

Collect the garbage of the region's hosted repositories once: what no tag
reaches (directly, through an index, or as a referrer of what is kept) and
is older than gc.grace leaves the repositories, and the bytes nothing holds
any more leave the store. The proxies also do this every gc.interval.
Prints one JSON line per removal, then a summary.

  --config FILE       the region file
  --dry-run           say what would go, and how many bytes, and change nothing`

export const gcCommand = defineCommand({
  name: 'gc',
  summary: 'collect the garbage of hosted repositories (or --dry-run: say what would go)',
  usage,
  options: { config: { type: 'string', short: 'c' }, 'dry-run': { type: 'boolean' } },
  async run (values) {
    const config = await loadRegion(requireConfig(values.config, 'gc', usage))
    const log = createLogger('silent')
    const { openState } = await import('../state/open-state.ts')
    const { openBlobStore } = await import('../store/open-store.ts')
    const { ManifestStore } = await import('../cache/manifest-store.ts')
    const { Collector } = await import('../content/gc.ts')
    const opened = await openState(config, log)
    const store = await openBlobStore(config.store)
    try {
      const staging = join(config.data, 'tmp')
      await mkdir(staging, { recursive: true })
      const manifests = new ManifestStore({ store, state: opened.state, staging, memoryBytes: 16 * 1024 * 1024 })
      const collector = new Collector({ state: opened.state, store, manifests, hostedPrefixes: config.hosted.map(h => h.prefix), graceMs: config.gc.graceMs, log })
      const report = await collector.run(values['dry-run'] === true)
      for (const u of report.unlinked) console.log(JSON.stringify({ unlinked: u }))
      for (const d of report.deleted) console.log(JSON.stringify({ deleted: d }))
      console.log(JSON.stringify({ repositories: report.repositories, unlinked: report.unlinked.length, deleted: report.deleted.length, bytes: report.bytes, dryRun: report.dryRun, ms: report.ms }))
      return 0
    } finally {
      store.close?.()
      await opened.close()
    }
  },
})
