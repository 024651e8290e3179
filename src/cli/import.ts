// ferry import: a bundle into this region, verified before anything is visible.
import { loadRegion } from '../config/load.ts'
import { defineCommand, requireConfig, UsageError } from './command.ts'

const usage = `usage: ferry import --config FILE [--prune [--yes]] DIR

Import the bundle in DIR (made by ferry export) into this region's hosted
namespaces, under the names clients use on the connected side. Every
part's sha256 and every blob's digest are checked before anything becomes
visible; tags are written last. A bundle that does not verify is refused,
naming the part or the digest, and nothing is published. Safe to run again
(after a kill, it continues; twice, it changes nothing). Prints a JSON report.

  --config FILE       the region file (air-gapped side)
  --prune             also list the tags of the bundle's repositories that the bundle
                      does not name (they would be removed); nothing is removed
  --yes               with --prune: remove them (their bytes go with garbage collection)`

export const importCommand = defineCommand({
  name: 'import',
  summary: 'import a bundle into the region\'s hosted namespaces, verified first',
  usage,
  options: { config: { type: 'string', short: 'c' }, prune: { type: 'boolean' }, yes: { type: 'boolean' } },
  async run (values, positionals) {
    const config = await loadRegion(requireConfig(values.config, 'import', usage))
    if (positionals.length !== 1) throw new UsageError('ferry import: one bundle folder', usage)
    if (values.yes === true && values.prune !== true) throw new UsageError('ferry import: --yes goes with --prune', usage)
    const { serveForCommand } = await import('../serve.ts')
    const { importBundle } = await import('../airgap/import.ts')
    const { BundleError } = await import('../airgap/bundle.ts')
    const { progressFor } = await import('../airgap/progress.ts')
    const edge = await serveForCommand(config)
    const progress = progressFor(process.stderr, 'images')
    try {
      const report = await importBundle({ dir: positionals[0]!, data: config.data, view: edge.view, progress, ...(values.prune === true ? { prune: values.yes === true ? 'yes' as const : 'show' as const } : {}) })
      progress.stop()
      process.stdout.write(JSON.stringify(report, null, 2) + '\n')
      return 0
    } catch (err) {
      progress.stop()
      if (!(err instanceof BundleError)) throw err
      console.error(`ferry import: refused, nothing published: ${err.message}`)
      return 1
    } finally {
      await edge.close()
    }
  },
})
